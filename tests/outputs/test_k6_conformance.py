"""Our summary export, NDJSON, CSV and summary text against real k6's, for the same
samples: k6's raw samples (its `--out json`) are replayed into our Registry, with our
JSON and CSV outputs attached, and every artefact is compared with k6's own.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from indigo_loadtest.metrics import Registry, tagset
from indigo_loadtest.metrics.summary import render_summary
from indigo_loadtest.metrics.thresholds import ThresholdResult, parse_thresholds
from indigo_loadtest.outputs.base import RunInfo
from indigo_loadtest.outputs.csv_output import COLUMNS, CsvOutput
from indigo_loadtest.outputs.json_output import JsonOutput
from indigo_loadtest.outputs.summary_export import build_summary_export

from .conftest import K6_ITERATIONS, K6_THRESHOLDS, K6Run


@dataclass
class Replay:
    registry: Registry
    results: list[ThresholdResult]
    elapsed: float
    ndjson: Path
    csv: Path
    k6_export: dict[str, Any]


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def replay_k6_samples(k6: K6Run, out_dir: Path) -> Replay:
    k6_export = json.loads(k6.export.read_text())
    iterations = k6_export["metrics"]["iterations"]
    elapsed = iterations["count"] / iterations["rate"]  # k6's test duration
    thresholds = parse_thresholds(K6_THRESHOLDS)
    registry = Registry()
    json_out = JsonOutput(out_dir / "ours.ndjson", thresholds)
    csv_out = CsvOutput(out_dir / "ours.csv")
    run = RunInfo(testid="t", test_case="conformance")
    await json_out.start(registry, run)
    await csv_out.start(registry, run)
    for line in read_ndjson(k6.ndjson):
        data = line["data"]
        if line["type"] == "Metric":
            registry.metric(data["name"], data["type"], data["contains"] == "time")
        else:
            registry.record(registry.metrics[line["metric"]], float(data["value"]),
                            tagset(data["tags"]))
    await json_out.stop()
    await csv_out.stop()
    thresholds.validate(registry)
    results = thresholds.evaluate(registry, elapsed)
    return Replay(registry, results, elapsed, json_out.path, csv_out.path, k6_export)


@pytest.fixture(scope="module")
def replay(k6_run: K6Run, tmp_path_factory: pytest.TempPathFactory) -> Replay:
    return asyncio.run(replay_k6_samples(k6_run, tmp_path_factory.mktemp("replay")))


def test_k6_run_failed_its_thresholds(k6_run: K6Run) -> None:
    # The reference run crosses the checks and http_req_failed thresholds on purpose.
    assert k6_run.returncode == 99, k6_run.stdout


def test_summary_export_has_k6_metric_keys_and_stat_keys(replay: Replay) -> None:
    ours = build_summary_export(replay.registry, replay.results, replay.elapsed)
    theirs = replay.k6_export
    assert set(ours) == set(theirs) == {"root_group", "metrics"}
    assert set(ours["metrics"]) == set(theirs["metrics"])
    for name, k6_stats in theirs["metrics"].items():
        assert set(ours["metrics"][name]) == set(k6_stats), name


def test_summary_export_values_match_k6(replay: Replay) -> None:
    ours = build_summary_export(replay.registry, replay.results, replay.elapsed)["metrics"]
    for name, k6_stats in replay.k6_export["metrics"].items():
        for key, expected in k6_stats.items():
            got = ours[name][key]
            if key == "thresholds":
                # true = crossed (failed), in both
                assert got == expected, name
            else:
                # Percentiles come from a sketch with 0.1% relative accuracy.
                assert math.isclose(got, expected, rel_tol=2.5e-3, abs_tol=1e-9), (
                    name, key, got, expected)
            if isinstance(expected, int) and not isinstance(expected, bool):
                assert isinstance(got, int), (name, key, got)


def test_summary_export_threshold_flags_are_true_when_failed(replay: Replay) -> None:
    metrics = build_summary_export(replay.registry, replay.results, replay.elapsed)["metrics"]
    assert metrics["checks"]["thresholds"] == {"rate>0.9": True}
    assert metrics["http_req_failed"]["thresholds"] == {"rate<0.01": True}
    assert metrics["tokens"]["thresholds"] == {"count>5": False, "rate>1": False}
    assert metrics["http_req_duration{name:okreq}"]["thresholds"] == {"p(99.9)<8000": False}


def test_summary_export_root_group_equals_k6(replay: Replay) -> None:
    ours = build_summary_export(replay.registry, replay.results, replay.elapsed)
    assert ours["root_group"] == replay.k6_export["root_group"]
    inner = ours["root_group"]["groups"]["main"]["groups"]["inner"]
    assert inner["checks"]["bad is 200"]["fails"] == K6_ITERATIONS


def test_ndjson_matches_k6_line_by_line(replay: Replay, k6_run: K6Run) -> None:
    theirs, ours = read_ndjson(k6_run.ndjson), read_ndjson(replay.ndjson)
    assert len(ours) == len(theirs)
    for mine, ref in zip(ours, theirs, strict=True):
        assert set(mine) == set(ref) and mine["type"] == ref["type"]
        assert mine["metric"] == ref["metric"]
        if ref["type"] == "Metric":
            mine_subs = sorted(mine["data"].pop("submetrics") or [], key=lambda s: s["name"])
            ref_subs = sorted(ref["data"].pop("submetrics") or [], key=lambda s: s["name"])
            assert mine_subs == ref_subs, ref["metric"]
            assert mine["data"] == ref["data"]
        else:
            assert set(mine["data"]) == set(ref["data"]) == {"time", "value", "tags"}
            assert mine["data"]["tags"] == ref["data"]["tags"]
            assert mine["data"]["value"] == ref["data"]["value"]
            assert mine["data"]["time"].endswith("Z")
            datetime.fromisoformat(mine["data"]["time"])  # RFC 3339


def test_csv_matches_k6_rows(replay: Replay, k6_run: K6Run) -> None:
    with k6_run.csv.open(newline="") as f:
        theirs = list(csv.reader(f))
    with replay.csv.open(newline="") as f:
        ours = list(csv.reader(f))
    assert ours[0] == theirs[0] == list(COLUMNS)
    ts, extra = COLUMNS.index("timestamp"), COLUMNS.index("extra_tags")

    def without_time(rows: list[list[str]]) -> list[tuple[Any, ...]]:
        # k6 writes extra_tags in no fixed order: compare them as sets of pairs.
        return sorted(
            (*r[:ts], *r[ts + 1 : extra], tuple(sorted(r[extra].split("&"))), r[extra + 1])
            for r in rows[1:]
        )

    assert without_time(ours) == without_time(theirs)
    assert all(re.fullmatch(r"\d{10}", r[ts]) for r in ours[1:])
    assert {r[extra] for r in ours[1:]} >= {"test_case=conformance"}


def _normalize(line: str) -> str:
    """A summary line without its dot leaders and repeated spaces."""
    return re.sub(r"\s+", " ", re.sub(r"\.{3,}:", ":", line)).strip()


def test_summary_text_agrees_with_k6(replay: Replay, k6_run: K6Run) -> None:
    text = render_summary(replay.registry, replay.results, None, replay.elapsed, color=False)
    ours = {_normalize(line) for line in text.splitlines()}
    theirs = {_normalize(line) for line in k6_run.stdout.splitlines()}
    # Lines whose values are exact (counts, rates, constant trends) must be identical.
    expected = {
        "✗ 'rate>0.9' rate=75.00%",
        "✗ 'rate<0.01' rate=50.00%",
        "✓ 'count>5' count=70",
        "✓ 'value<100' value=1",
        "✓ 'rate>0.5' rate=100.00%",
        "checks_succeeded: 75.00% 30 out of 40",
        "checks_failed: 25.00% 10 out of 40",
        "✓ status is 200",
        "✓ has ok",
        "✗ bad is 200",
        "↳ 0% — ✓ 0 / ✗ 10",
        "✓ top level",
        "good: 50.00% 10 out of 20",
        "{ kind:x }: 100.00% 10 out of 10",
        "http_req_failed: 50.00% 10 out of 20",
        "queue: 1 min=1 max=3",
        "ttft: avg=12.5ms min=12.5ms med=12.5ms max=12.5ms p(90)=12.5ms p(95)=12.5ms",
        "http_req_duration",
        "{name:okreq}",
        "good{kind:x}",
    }
    assert expected <= theirs, expected - theirs  # the reference really says so
    assert expected <= ours, expected - ours
    # Every metric k6 lists in its TOTAL RESULTS, we list too (we also show group_duration).
    names = re.compile(r"^\s{4}(\w+)\.{3,}:", re.M)
    total = k6_run.stdout.split("TOTAL RESULTS")[1].split("GROUP:")[0]
    assert set(names.findall(total)) <= set(names.findall(text))
