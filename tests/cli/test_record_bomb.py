"""`report` and `compare` cap what a results file may inflate to (issue 22 §6): a small
gzip that inflates to 512 MiB is refused in one line, having inflated no more than the
cap (report/record.py MAX_RECORD_BYTES), its peak RSS measured against `report` of a real
record at the same time. The runs are held to an address-space limit, so a regression
fails with MemoryError rather than taking the shared machine's memory."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from cli_helpers import LocalServer, clean_env, run_cli, write_scenario
from rss_helpers import measured_cli

from indigo_loadtest.report.record import MAX_RECORD_BYTES

INFLATED = 512 * 1024 * 1024
MEMBER = 16 * 1024 * 1024
# The CLI's own virtual size (interpreter, libraries, thread stacks) plus the cap, with
# room: inflating the whole file (512 MiB, then its text) cannot fit.
ADDRESS_SPACE = 1536 * 1024 * 1024
# What refusing the bomb may add to the peak beyond the control: the capped read.
EXTRA_LIMIT = MAX_RECORD_BYTES + 64 * 1024 * 1024

SCENARIO = '''from indigo_loadtest import env
options = {"vus": 1, "iterations": 2}

async def default(vu):
    await vu.http.get(env["BASE"] + "/")
'''


def bomb(path: Path) -> Path:
    """Valid gzip (members one after the other, as gzip allows) of valid JSON text that
    inflates to INFLATED bytes; the file is ~0.5 MB."""
    pad = gzip.compress(b"a" * MEMBER, compresslevel=9, mtime=0)
    with path.open("wb") as f:
        f.write(gzip.compress(b'{"format": "indigo-loadtest.run/1", "pad": "', mtime=0))
        for _ in range(INFLATED // MEMBER):
            f.write(pad)
        f.write(gzip.compress(b'"}', mtime=0))
    return path


@pytest.fixture
def record(workdir: Path, local_server: LocalServer) -> Path:
    write_scenario(workdir, "small", SCENARIO)
    done = run_cli("run", "small", "-q", "--summary-export", "results/small.json",
                   cwd=workdir, env=clean_env(BASE=local_server.url))
    assert done.returncode == 0, done.stderr
    return workdir / "results" / "small.timeseries.json.gz"


def test_a_record_that_inflates_past_the_cap_is_refused_in_one_line(
        workdir: Path, record: Path) -> None:
    big = bomb(workdir / "results" / "big.timeseries.json.gz")
    assert big.stat().st_size < 2_000_000
    env = clean_env()
    control = measured_cli("report", str(record), "-o", str(workdir / "r.html"), cwd=workdir,
                           env=env, address_space=ADDRESS_SPACE)
    assert control.returncode == 0, control.stderr
    for args in (["report", str(big)], ["compare", str(record), str(big)],
                 ["compare", str(big), str(record)]):
        done = measured_cli(*args, cwd=workdir, env=env, address_space=ADDRESS_SPACE)
        assert done.returncode != 0, args
        assert done.peak - control.peak < EXTRA_LIMIT, (args, done.peak >> 20,
                                                        control.peak >> 20)
        lines = done.stderr.strip().splitlines()
        assert lines == [f"error: {big}: inflates to more than {MAX_RECORD_BYTES >> 20} MiB: "
                         "not a results file of indigo-loadtest (a record is far smaller)"], (
            args, done.stderr[-2000:])
