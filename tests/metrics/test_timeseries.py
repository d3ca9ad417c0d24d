"""The run's time series: per-interval sketches by subtraction, exact totals, bounded size."""

from __future__ import annotations

import gzip
import json
import random

import pytest

from indigo_loadtest.llm.stream_metrics import TIME_TRENDS, VALUE_TRENDS
from indigo_loadtest.metrics.registry import Registry
from indigo_loadtest.metrics.sinks import TrendSink
from indigo_loadtest.metrics.tags import tagset
from indigo_loadtest.metrics.timeseries import (
    MAX_POINTS,
    MAX_TAG_VALUES,
    OTHER,
    Recorder,
    open_ended_width,
    point_width,
)
from indigo_loadtest.report.html import render_report
from indigo_loadtest.report.record import build_record, write_record


def _http(reg: Registry, name: str, ms: float, status: str = "200") -> None:
    tags = tagset({"name": name, "method": "GET", "status": status, "scenario": "default"})
    reg.builtin.http_reqs.sink(tags).add(1)
    reg.builtin.http_req_duration.sink(tags).add(ms)
    reg.builtin.http_req_failed.sink(tags).add(status != "200")


def _copy(reg: Registry) -> Registry:
    """What `Engine.live_registry()` returns with workers: a merged copy."""
    live = Registry()
    live.merge_state(reg.state())
    return live


def test_each_interval_has_the_percentiles_of_its_own_samples() -> None:
    reg, rec, rnd = Registry(), Recorder(), random.Random(7)
    phases = [[rnd.uniform(5, 50) for _ in range(300)],
              [rnd.uniform(200, 900) for _ in range(120)],
              [rnd.lognormvariate(3, 1) for _ in range(500)]]
    for k, phase in enumerate(phases):
        for ms in phase:
            _http(reg, "chat", ms)
        rec.sample(_copy(reg) if k < 2 else reg, float(k + 1))
    cols = rec.series.series["http_req_duration"]["cols"]
    for k, phase in enumerate(phases):
        alone = TrendSink()
        for ms in phase:
            alone.add(ms)
        assert cols["count"][k] == len(phase)
        for p in (50, 95, 99):
            assert abs(cols[f"p{p}"][k] - alone.percentile(p)) <= 1e-5 * alone.percentile(p)
        assert abs(cols["avg"][k] - alone.avg) <= 1e-5 * alone.avg
    # The sub-metric by endpoint is the same series here, and the counts add up.
    assert rec.series.series["http_req_duration{name:chat}"]["cols"]["count"] == [300, 120, 500]
    assert sum(rec.series.series["http_reqs"]["cols"]["value"]) == 920


def test_an_interval_without_samples_has_no_statistics_not_zeros() -> None:
    reg, rec = Registry(), Recorder()
    _http(reg, "a", 10.0)
    rec.sample(reg, 1.0)
    rec.sample(reg, 2.0)  # nothing new
    cols = rec.series.series["http_req_duration"]["cols"]
    assert cols["count"] == [1, 0] and cols["p95"][1] is None and cols["avg"][1] is None
    assert rec.series.series["http_reqs"]["cols"]["value"] == [1, 0]


def test_a_trend_that_starts_over_has_an_empty_point_not_an_error() -> None:
    # A reading that counts fewer samples than the one before (see the next test): no
    # gain, no crash.
    reg, rec = Registry(), Recorder()
    for ms in (10.0, 20.0, 30.0):
        _http(reg, "a", ms)
    rec.sample(reg, 1.0)
    fewer = Registry()
    _http(fewer, "a", 15.0)
    rec.sample(fewer, 2.0)
    cols = rec.series.series["http_req_duration"]["cols"]
    assert cols["count"] == [3, 0] and cols["p50"][1] is None and cols["max"][1] is None


def test_a_reading_lower_than_the_last_never_makes_a_series_exceed_the_total() -> None:
    """A live reading missing a share it had shown (the live view must not, but the
    recorder must not trust it either) is ignored: the earlier reading stays the
    baseline, so when the share shows again it is not counted a second time."""
    tags = tagset({"name": "a", "method": "GET", "status": "200", "scenario": "default"})

    def run_of(n: int) -> Registry:  # the first n samples of one run, of every kind
        reg = Registry()
        for k in range(n):
            _http(reg, "a", 10.0 * (k + 1), status="500" if k % 3 == 0 else "200")
            reg.builtin.http_req_waiting.sink(tags).add(float(k))
        return reg

    rec = Recorder()
    for t, n in enumerate((6, 2, 9, 4), start=1):  # rises, dips, rises, dips
        rec.sample(run_of(n), float(t))
    final = run_of(12)
    rec.sample(final, 5.0)
    cols = {k: rec.series.series[k]["cols"] for k in
            ("http_reqs", "http_req_failed", "http_req_duration", "http_req_waiting")}
    assert cols["http_reqs"]["value"] == [6, 0, 3, 0, 3]
    assert cols["http_req_failed"]["total"] == [6, 0, 3, 0, 3]
    assert sum(cols["http_req_failed"]["trues"]) == 4  # samples 0, 3, 6, 9 of the 12
    assert cols["http_req_duration"]["count"] == [6, 0, 3, 0, 3]
    assert cols["http_req_duration"]["max"][2] == pytest.approx(90, rel=1e-3)  # samples 7-9
    assert cols["http_req_duration"]["p50"][4] == pytest.approx(110, rel=1e-3)  # 10-12
    assert cols["http_req_waiting"]["count"] == [6, 0, 3, 0, 3]
    assert sum(cols["http_req_waiting"]["avg"][i] * c  # type: ignore[operator]
               for i, c in enumerate(cols["http_req_waiting"]["count"]) if c) == sum(range(12))


def test_a_series_that_starts_later_is_padded_and_rates_count_trues() -> None:
    reg, rec = Registry(), Recorder()
    _http(reg, "a", 10.0)
    rec.sample(reg, 1.0)
    _http(reg, "a", 10.0, status="500")
    _http(reg, "a", 10.0)
    rec.sample(reg, 2.0)
    failed = rec.series.series["http_req_failed"]["cols"]
    assert failed == {"total": [1, 2], "trues": [0, 1]}
    assert rec.series.series["http_reqs{status:500}"]["cols"]["value"] == [0, 1]


def test_endpoint_names_are_capped_so_urls_cannot_blow_up_the_series() -> None:
    reg, rec = Registry(), Recorder()
    for i in range(MAX_TAG_VALUES + 30):
        _http(reg, f"/v1/conversations/{i}", 5.0)
    rec.sample(reg, 1.0)
    names = [k for k in rec.series.series if k.startswith("http_req_duration{name:")]
    assert len(names) == MAX_TAG_VALUES + 1
    other = rec.series.series[f"http_req_duration{{name:{OTHER}}}"]["cols"]["count"]
    assert other == [30]


def test_point_widths_keep_long_runs_small() -> None:
    assert point_width(60) == 1 and point_width(900) == 1
    assert 86400 / point_width(86400) <= MAX_POINTS
    assert point_width(None) is None
    t, points = 0.0, 0
    while t < 86400:
        t += open_ended_width(t)
        points += 1
    assert points < 1500


def synthetic_run(seconds: float, planned: float | None) -> tuple[Registry, Recorder]:
    """Five endpoints (one streamed, with every LLM metric), 429s among the 200s, 20
    requests per point."""
    reg, rec, rnd = Registry(), Recorder(planned), random.Random(1)
    llm = [reg.metric(n, "trend", True) for n in TIME_TRENDS]
    llm += [reg.metric(n, "trend") for n in VALUE_TRENDS]
    t = 0.0
    while t < seconds:
        for name in ("chat", "stream", "models", "login", "refresh"):
            for status in ("200", "200", "200", "429"):
                tags = tagset({"name": name, "method": "POST", "status": status,
                               "scenario": "stream" if name == "stream" else "plain"})
                ms = rnd.lognormvariate(5, 0.5)
                reg.builtin.record_http(tags, 0.01, 0, 0, 0.05, ms * 0.9, ms * 0.1,
                                        status != "200", 300, 2000)
                for metric in llm if name == "stream" else ():
                    reg.record(metric, rnd.lognormvariate(3, 0.8), tags)
        reg.record(reg.builtin.vus, 10, tagset({}))
        t += rec.width(t)
        rec.sample(reg, t)
    return reg, rec


def record_of(reg: Registry, rec: Recorder, seconds: float) -> dict:
    meta = {"scenario": "synthetic", "testid": "synthetic", "elapsed": seconds,
            "started_at": 1.0, "ended_at": 1.0 + seconds}
    return build_record(meta=meta, verdict={"exit_code": 0, "text": "passed"}, registry=reg,
                        results=[], elapsed=seconds, recorder=rec)


def test_a_24_hour_series_stays_bounded(tmp_path) -> None:
    """An open-ended 24 h run (iteration-based: the width grows with the elapsed time):
    the record stays well under 1 MB gzip."""
    reg, rec = synthetic_run(86400, None)
    path = write_record(tmp_path / "day.timeseries.json.gz", record_of(reg, rec, 86400))
    size, raw = path.stat().st_size, len(gzip.decompress(path.read_bytes()))
    assert len(rec.series.t) < 1500
    assert size < 1_000_000, size
    assert json.loads(gzip.decompress(path.read_bytes()))["series"]["t"][-1] >= 86400
    print(f"24 h record: {len(rec.series.t)} points, {len(rec.series.series)} series, "
          f"{size} bytes gzip ({raw} bytes JSON)")


def test_a_one_hour_report_is_small() -> None:
    reg, rec = synthetic_run(3600, 3600)
    record = record_of(reg, rec, 3600)
    html = render_report(record)
    assert len(rec.series.t) == 720  # 5 s points
    assert len(html) < 1_000_000, len(html)
    print(f"1 h report: {len(rec.series.series)} series, {len(html)} bytes HTML")


def test_a_reading_over_its_budget_widens_the_next_intervals(monkeypatch) -> None:
    import asyncio

    from indigo_loadtest.metrics import timeseries

    reg = Registry()
    _http(reg, "a", 10.0)
    roomy = Recorder()
    asyncio.run(roomy.sample_async(reg, 1.0))
    assert roomy.width(1.0) == 1 and roomy.read_seconds > 0
    monkeypatch.setattr(timeseries, "READ_BUDGET", 1e-9)  # every reading is over it
    tight = Recorder()
    asyncio.run(tight.sample_async(reg, 1.0))
    assert tight.width(1.0) >= 2 and tight.series.t == [1.0]


def test_a_snapshot_that_lost_a_share_is_an_interval_without_samples() -> None:
    """With workers, the live registry can count fewer samples than the last reading (a
    worker's share between its last snapshot and its final state): no gain, no crash."""
    reg, rec = Registry(), Recorder()
    for ms in (10.0, 20.0, 30.0):
        _http(reg, "a", ms)
    rec.sample(reg, 1.0)
    smaller = Registry()
    _http(smaller, "a", 10.0)
    rec.sample(smaller, 2.0)
    cols = rec.series.series["http_req_duration"]["cols"]
    assert cols["count"] == [3, 0] and cols["p95"][1] is None and cols["avg"][1] is None


def test_a_recording_stopped_mid_sample_loses_no_points() -> None:
    # `finish()` cancels the sampler wherever it is: between two metrics of a reading,
    # the point of that reading is never appended, so none of it may count as recorded
    # (else the final point misses what the first metrics had read; seen with --workers 2
    # as a series adding up to 20 requests out of 32). Every await point is tried.
    import asyncio

    from indigo_loadtest.report.record import LiveRecording

    async def stop_after(steps: int) -> LiveRecording:
        reg = Registry()
        for ms in (10.0, 20.0, 30.0):
            _http(reg, "chat", ms)
        rec = LiveRecording(lambda: reg, planned=10.0)
        rec._task = asyncio.ensure_future(rec.recorder.sample_async(reg, 0.5))
        for _ in range(steps):
            await asyncio.sleep(0)
        _http(reg, "chat", 40.0)
        await rec.finish(reg)
        return rec

    readings = len(list(Registry()))  # one await point per metric of a reading
    for steps in range(1, readings + 2):
        series = asyncio.run(stop_after(steps)).recorder.series.series
        assert sum(series["http_reqs"]["cols"]["value"]) == 4, steps
        assert sum(series["http_req_duration"]["cols"]["count"]) == 4, steps
        assert sum(series["http_req_failed"]["cols"]["total"]) == 4, steps
