"""The live progress line: in place on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import asyncio
import io

import pytest

from indigo_loadtest.progress import ProgressLine, Snapshot, format_elapsed

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def snapshots(*items: Snapshot):
    it = iter(items)
    return lambda: next(it)


def test_plain_lines_report_rate_between_snapshots() -> None:
    out = io.StringIO()
    line = ProgressLine(snapshots(Snapshot(2.0, 3, 5, 10, 40), Snapshot(4.0, 5, 5, 30, 100, 2)),
                        out, total_duration=60)
    line.print_once()
    line.print_once()
    first, second = out.getvalue().splitlines()
    assert first == ("running (0m02s/1m00s), 3/5 VUs, 10 complete iterations, 40 reqs, "
                     "20.0 req/s")
    assert second == ("running (0m04s/1m00s), 5/5 VUs, 30 complete iterations, 100 reqs, "
                      "30.0 req/s, 2 dropped")


def test_terminal_line_is_rewritten_in_place_and_cleared() -> None:
    out = FakeTty()
    line = ProgressLine(snapshots(Snapshot(1.0, 1, 1, 1, 1), Snapshot(2.0, 1, 1, 2, 2)), out)
    assert line.tty and line.interval < 1
    line.print_once()
    line.print_once()
    line.clear()
    text = out.getvalue()
    assert "\n" not in text and text.count("\r") == 4 and text.endswith("\r")


def test_run_stops_when_cancelled() -> None:
    out = io.StringIO()
    calls = []

    def snap() -> Snapshot:
        calls.append(1)
        return Snapshot(float(len(calls)), 1, 1, len(calls), len(calls))

    async def scenario() -> None:
        task = asyncio.ensure_future(ProgressLine(snap, out, tty=False, plain_interval=0.01).run())
        await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert 1 <= len(out.getvalue().splitlines()) == len(calls) <= 12


def test_format_elapsed() -> None:
    assert format_elapsed(0) == "0m00s"
    assert format_elapsed(75.9) == "1m15s"
    assert format_elapsed(3725) == "1h02m05s"


PACED_SCENARIO = '''
"""Four VUs at a steady pace."""
from indigo_loadtest import env, http, sleep

options = {"vus": 4, "duration": "3s"}


async def default(vu):
    await http.get(env["BASE"] + "/v1/models")
    await sleep(0.25)
'''


def progress_lines_on_a_terminal(workdir, *args: str) -> list[str]:
    """The progress line as a terminal shows it: each rewrite of the line."""
    import os
    import pty
    import subprocess

    from cli_helpers import clean_env, cli_argv

    master, slave = pty.openpty()
    proc = subprocess.Popen(cli_argv(*args), cwd=workdir, env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    data = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = data.decode("utf-8", "replace").replace("\r", "\n")
    return [line.strip() for line in text.splitlines() if line.startswith("running")]


def test_progress_with_workers_shows_the_merged_rate_and_vus(workdir) -> None:
    """Two workers send their metrics once a second, out of step with the progress line
    (every 0.5 s): the line shows their summed rate, never a 0.0 between two snapshots,
    and the VUs from the first line on."""
    (workdir / "scenarios" / "paced.py").write_text(PACED_SCENARIO)
    lines = progress_lines_on_a_terminal(workdir, "run", "paced", "--workers", "2",
                                         "--no-report", "--no-summary")
    assert len(lines) >= 4, lines
    assert not any("/0 VUs" in line for line in lines), lines  # the planned VUs at least
    # From the first request on (the workers may take a moment to start on a busy machine):
    measuring = [line for line in lines if not line.endswith(" 0 reqs, 0.0 req/s")]
    assert len(measuring) >= 3, lines
    # Each worker's VUs count from its first snapshot on (one line or more may come
    # between the first worker's and the second's on a busy machine); from the line that
    # shows both, every line does: the merged view never drops one between snapshots.
    both = next(k for k, line in enumerate(measuring) if "4/4 VUs" in line)
    assert all("4/4 VUs" in line for line in measuring[both:]), lines
    assert both < len(measuring) - 1, lines
    rates = [float(line.rsplit(", ", 1)[1].split()[0]) for line in measuring]
    assert all(rate > 0 for rate in rates), lines
