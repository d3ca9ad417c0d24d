import asyncio
import csv
import time
from pathlib import Path

from indigo_loadtest.metrics import Registry, tagset
from indigo_loadtest.outputs.base import RunInfo
from indigo_loadtest.outputs.csv_output import COLUMNS, CsvOutput


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_rows_columns_and_extra_tags(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"

    async def scenario() -> CsvOutput:
        reg = Registry()
        out = CsvOutput(path)
        await out.start(reg, RunInfo("t", "unit"))
        reg.builtin.record_http(
            tagset({"method": "POST", "status": "200", "name": "chat, \"quoted\"",
                    "url": "http://127.0.0.1/x", "scenario": "s", "group": "::g",
                    "expected_response": "true", "test_case": "unit", "testid": "t",
                    "cookie": "session=secret"}),
            0.1, 0.0, 0.0, 0.2, 3.25, 0.5, False, 100, 2048)
        reg.record(reg.builtin.checks, True,
                   tagset({"check": "status is 200", "group": "::g", "scenario": "s"}))
        await out.stop()
        await out.stop()  # idempotent
        return out

    before = int(time.time())
    asyncio.run(scenario())
    with path.open(newline="") as f:
        assert next(csv.reader(f)) == list(COLUMNS)
    rows = read_rows(path)
    assert len(rows) == 12
    duration = next(r for r in rows if r["metric_name"] == "http_req_duration")
    assert duration["metric_value"] == "3.950000"
    assert duration["name"] == 'chat, "quoted"'  # quoted in the file, intact when read
    assert (duration["method"], duration["status"], duration["group"]) == ("POST", "200", "::g")
    assert duration["expected_response"] == "true" and duration["check"] == ""
    assert duration["extra_tags"] == "test_case=unit&testid=t"
    assert duration["metadata"] == ""
    assert before <= int(duration["timestamp"]) <= time.time() + 1
    check = rows[-1]
    assert (check["metric_name"], check["check"], check["metric_value"]) == (
        "checks", "status is 200", "1.000000")
    assert "secret" not in path.read_text()
