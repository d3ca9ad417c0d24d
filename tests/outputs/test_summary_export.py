import hashlib
import json
from pathlib import Path

import pytest

from indigo_loadtest.metrics import Registry, tagset
from indigo_loadtest.metrics.summary import DEFAULT_TREND_STATS
from indigo_loadtest.metrics.thresholds import parse_thresholds
from indigo_loadtest.outputs.summary_export import build_summary_export, write_summary_export


def md5(path: str) -> str:
    # k6's group and check ids (checked against real k6 in test_k6_conformance)
    return hashlib.md5(path.encode()).hexdigest()


def filled() -> Registry:
    reg = Registry()
    b = reg.builtin
    for i in range(10):
        tags = tagset({"scenario": "chat", "group": "::flow", "status": "200",
                       "expected_response": "true" if i else "false"})
        b.record_http(tags, 0.1, 0.0, 0.0, 0.1, 10.0 * (i + 1), 0.1, i == 0, 50, 500)
        reg.record(b.checks, i > 1, tagset({"group": "::flow", "check": "ok"}))
    reg.record(b.vus, 3.0, tagset({}))
    return reg


def test_layout_per_metric_type_and_inverted_threshold_flags() -> None:
    reg = filled()
    ts = parse_thresholds({
        "http_req_duration": ["p(95)<50", "avg<100"],
        "http_req_duration{scenario:chat}": ["max<1000"],
        "checks": ["rate>0.5"],
    })
    export = build_summary_export(reg, ts.evaluate(reg, 2.0), 2.0)
    metrics = export["metrics"]
    assert set(metrics["http_req_duration"]) == {*DEFAULT_TREND_STATS, "thresholds"}
    assert metrics["http_req_duration"]["thresholds"] == {"p(95)<50": True, "avg<100": False}
    assert metrics["http_req_duration{scenario:chat}"]["thresholds"] == {"max<1000": False}
    assert set(metrics["http_req_duration{expected_response:true}"]) == set(DEFAULT_TREND_STATS)
    assert metrics["http_req_duration{expected_response:true}"]["min"] == pytest.approx(20.2)
    assert metrics["http_reqs"] == {"count": 10, "rate": 5}
    assert metrics["vus"] == {"value": 3, "min": 3, "max": 3}
    assert metrics["http_req_failed"] == {"passes": 1, "fails": 9, "value": 0.1}
    assert metrics["checks"] == {"passes": 8, "fails": 2, "value": 0.8,
                                 "thresholds": {"rate>0.5": False}}
    assert "iterations" not in metrics  # never recorded
    assert export["root_group"] == {
        "name": "", "path": "", "id": md5(""), "checks": {},
        "groups": {"flow": {
            "name": "flow", "path": "::flow", "id": md5("::flow"),
            "groups": {},
            "checks": {"ok": {"name": "ok", "path": "::flow::ok",
                              "id": md5("::flow::ok"),
                              "passes": 8, "fails": 2}},
        }},
    }


def test_custom_trend_stats_and_file_writing(tmp_path: Path) -> None:
    reg = filled()
    target = tmp_path / "results" / "nested" / "summary.json"
    write_summary_export(target, reg, [], 2.0, summary_trend_stats=("p(99)", "count"))
    data = json.loads(target.read_text())
    assert data["metrics"]["http_req_duration"]["count"] == 10
    assert set(data["metrics"]["http_req_waiting"]) == {"p(99)", "count"}
    assert [p.name for p in target.parent.iterdir()] == ["summary.json"]  # no temp file left


def test_metrics_without_samples_are_null_not_zero() -> None:
    reg = Registry()
    reg.metric("models_time_ms", "trend", True)
    reg.metric("queue", "gauge")
    ts = parse_thresholds({"models_time_ms": ["p(95)<2000"], "queue": ["value<5"],
                           "http_req_failed": ["rate<0.1"], "iterations": ["count<1"]})
    metrics = build_summary_export(reg, ts.evaluate(reg, 1.0), 1.0)["metrics"]
    assert metrics["models_time_ms"] == {**dict.fromkeys(DEFAULT_TREND_STATS),
                                         "thresholds": {"p(95)<2000": False}}
    assert metrics["queue"] == {"value": None, "min": None, "max": None,
                                "thresholds": {"value<5": False}}
    assert metrics["http_req_failed"] == {"passes": 0, "fails": 0, "value": None,
                                          "thresholds": {"rate<0.1": False}}
    assert metrics["iterations"] == {"count": 0, "rate": 0, "thresholds": {"count<1": False}}
    ts.strict = True
    strict = build_summary_export(reg, ts.evaluate(reg, 1.0), 1.0)["metrics"]
    assert strict["models_time_ms"]["thresholds"] == {"p(95)<2000": True}
