import asyncio
import gzip
import json
import time
from datetime import datetime
from pathlib import Path

from indigo_loadtest.metrics import Registry, tagset
from indigo_loadtest.metrics.thresholds import parse_thresholds
from indigo_loadtest.outputs.base import RunInfo
from indigo_loadtest.outputs.json_output import JsonOutput

RUN = RunInfo(testid="t1", test_case="unit")


def lines(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


async def record_some(path: Path, **kw) -> tuple[JsonOutput, Registry, float]:
    reg = Registry()
    out = JsonOutput(path, **kw)
    await out.start(reg, RUN)
    ttft = reg.metric("llm_ttft", "trend", True)
    before = time.time()
    tags = tagset({"scenario": "stream", "group": "::chat", "Authorization": "Bearer sk-1"})
    reg.record(ttft, 12.5, tags)
    reg.record(ttft, 7.0, tags)
    reg.builtin.record_http(tagset({"method": "GET", "status": "200", "name": "x"}),
                            0.1, 0.0, 0.0, 0.2, 3.0, 0.5, False, 100, 2048)
    await out.stop()
    return out, reg, before


def test_declarations_points_and_tags(tmp_path: Path) -> None:
    thresholds = parse_thresholds({
        "llm_ttft": ["p(95)<500", {"threshold": "avg<300", "abortOnFail": True}],
        "llm_ttft{scenario:stream}": ["max<1000"],
    })
    out, _, before = asyncio.run(record_some(tmp_path / "out.ndjson", thresholds=thresholds))
    rows = lines(tmp_path / "out.ndjson")
    decl = [r for r in rows if r["type"] == "Metric"]
    points = [r for r in rows if r["type"] == "Point"]
    # One declaration per metric, before its first point.
    assert len(decl) == len({r["metric"] for r in decl}) == 12
    first_seen: dict[str, int] = {}
    for i, r in enumerate(rows):
        first_seen.setdefault(r["metric"], i)
        if r["type"] == "Metric":
            assert first_seen[r["metric"]] == i
    ttft = next(r for r in decl if r["metric"] == "llm_ttft")
    assert ttft["data"] == {
        "name": "llm_ttft", "type": "trend", "contains": "time",
        "thresholds": ["p(95)<500", "avg<300"],
        "submetrics": [{"name": "llm_ttft{scenario:stream}", "suffix": "scenario:stream",
                        "tags": {"scenario": "stream"}}],
    }
    by_name = {r["metric"]: r["data"] for r in decl}
    assert by_name["data_received"]["contains"] == "data"
    assert by_name["http_reqs"] == {"name": "http_reqs", "type": "counter",
                                    "contains": "default", "thresholds": [],
                                    "submetrics": None}
    assert by_name["http_req_duration"]["submetrics"][0]["suffix"] == "expected_response:true"
    ttft_points = [p["data"] for p in points if p["metric"] == "llm_ttft"]
    assert [p["value"] for p in ttft_points] == [12.5, 7]
    assert ttft_points[0]["tags"] == {"scenario": "stream", "group": "::chat"}  # no secret
    received = next(p["data"] for p in points if p["metric"] == "data_received")
    assert received["value"] == 2048 and isinstance(received["value"], int)
    stamp = datetime.fromisoformat(ttft_points[0]["time"]).timestamp()
    assert before - 1 <= stamp <= time.time() + 1
    assert "sk-1" not in (tmp_path / "out.ndjson").read_text()
    assert out.samples_written == len(points) == 13


def test_stop_is_idempotent_and_detaches(tmp_path: Path) -> None:
    async def scenario() -> tuple[str, str]:
        out, reg, _ = await record_some(tmp_path / "a.ndjson")
        text = (tmp_path / "a.ndjson").read_text()
        await out.stop()
        reg.record(reg.builtin.iterations, 1.0, tagset({}))  # after stop: not written
        assert out.on_sample not in reg.listeners
        return text, (tmp_path / "a.ndjson").read_text()

    first, second = asyncio.run(scenario())
    assert first == second and first.endswith("\n")


def test_batches_are_written_during_the_run(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "b.ndjson"

    async def scenario() -> tuple[int, int, int]:
        reg = Registry()
        out = JsonOutput(path)
        out.batch_lines = 100
        out.flush_interval = 0.05
        await out.start(reg, RUN)
        counter = reg.metric("tokens", "counter")
        for i in range(250):
            reg.record(counter, float(i), tagset({"scenario": "s"}))
        by_batch = len(path.read_text().splitlines())  # two full batches flushed
        reg.record(counter, 1.0, tagset({"scenario": "s"}))
        for _ in range(100):  # the periodic flush writes the rest (bounded wait)
            await asyncio.sleep(0.02)
            if len(path.read_text().splitlines()) == 252:
                break
        by_timer = len(path.read_text().splitlines())
        await out.stop()
        return by_batch, by_timer, len(path.read_text().splitlines())

    by_batch, by_timer, total = asyncio.run(scenario())
    assert by_batch == 201  # two batches of 100 entries; the first carries the declaration
    assert by_timer == total == 252  # 1 declaration + 251 points


def test_gzip_when_the_name_ends_in_gz(tmp_path: Path) -> None:
    asyncio.run(record_some(tmp_path / "out.ndjson.gz"))
    rows = lines(tmp_path / "out.ndjson.gz")
    assert sum(r["type"] == "Point" for r in rows) == 13
