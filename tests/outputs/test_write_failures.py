"""A raw-sample output that cannot write never raises into the code that records (the
HTTP client); it detaches and says why, and the other outputs miss nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from indigo_loadtest.metrics import Registry, tagset
from indigo_loadtest.outputs.base import RunInfo
from indigo_loadtest.outputs.csv_output import CsvOutput
from indigo_loadtest.outputs.json_output import JsonOutput

RUN = RunInfo(testid="t1", test_case="unit")
TAGS = tagset({"method": "GET", "status": "200"})


def record_batches(reg: Registry, batches: int, size: int) -> None:
    for _ in range(batches * size):
        reg.builtin.record_http(TAGS, 0.1, 0.0, 0.0, 0.2, 3.0, 0.5, False, 100, 2048)


def samples_per_request() -> int:
    reg, seen = Registry(), []
    reg.add_listener(lambda *sample: seen.append(sample))
    record_batches(reg, 1, 1)
    return len(seen)


def test_a_full_device_detaches_the_output_and_keeps_the_other(tmp_path: Path) -> None:
    async def scenario(tmp: Path) -> tuple[JsonOutput, CsvOutput, Registry, list[str]]:
        reg = Registry()
        told: list[str] = []
        full = JsonOutput("/dev/full")
        full.on_failure = told.append
        other = CsvOutput(tmp / "ok.csv")
        for out in (full, other):
            await out.start(reg, RUN)
        record_batches(reg, 3, JsonOutput.batch_lines)  # several full batches
        for out in (full, other):
            await out.stop()
        return full, other, reg, told

    full, other, reg, told = asyncio.run(scenario(tmp_path))
    assert full.failure is not None and told == [full.failure]
    assert full.failure.startswith("the json output cannot write /dev/full: No space left")
    assert full.on_sample not in reg.listeners
    rows = (tmp_path / "ok.csv").read_text().splitlines()
    recorded = int(reg.builtin.http_reqs.aggregate().value)
    assert other.failure is None and len(rows) - 1 == recorded * samples_per_request()
