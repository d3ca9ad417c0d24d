"""An output that cannot write (a full disk, a removed file, a read-only folder) is an
output failure (issue 9, case 6): one line naming the file and the OS error, the test goes
on to its planned end, the summary is printed, exit 112, and no temp file is left."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import LocalServer, clean_env, cli_argv, write_scenario
from test_interrupt import wait_for_requests

from indigo_loadtest.scenario.errors import ExitCode

# Each iteration's path carries its number: the last one shows how long the test ran.
PLANNED = '''"""Runs for its planned 3 s."""
from indigo_loadtest import env, sleep

options = {{"vus": 2, "duration": "3s"}}

async def default(vu):
    await vu.http.get(env["BASE"] + "/{tag}/" + str(vu.iteration))
    await sleep(0.02)
'''


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=10)


def mounted_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    try:
        mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {exc}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=10)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB filesystem: full after a few dozen requests."""
    yield from mounted_tmpfs(tmp_path / "tiny", "64k")


@pytest.fixture
def roomy_disk(tmp_path: Path) -> Iterator[Path]:
    """A filesystem of our own, to bind-mount a folder of it read-only."""
    yield from mounted_tmpfs(tmp_path / "roomy", "16m")


def run(workdir: Path, server: LocalServer, name: str, *args: str,
        during=None) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.Popen(cli_argv("run", name, "--quiet", "--workers", "1", *args),
                            cwd=workdir, env=clean_env(BASE=server.url), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if during is not None:
        during()
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), \
        time.monotonic() - started


def assert_output_failure(done: subprocess.CompletedProcess[str], took: float,
                          server: LocalServer, tag: str, line: str) -> None:
    assert done.returncode == ExitCode.OUTPUT_FAILED, done.stderr
    errors = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert any(line in x for x in errors), done.stderr
    assert "Traceback" not in done.stderr and "scenario 'default'" not in done.stderr
    assert "TOTAL RESULTS" in done.stdout
    # The test went on to its planned end: iterations ran well after the first write.
    assert took >= 3.0
    last = max(int(p.rsplit("/", 1)[1]) for p in server.paths(f"/{tag}/"))
    assert last >= 20, f"the VUs stopped after {last} iterations"


def test_a_stream_that_cannot_be_written_is_an_output_failure(
    workdir: Path, local_server: LocalServer
) -> None:
    write_scenario(workdir, "devfull", PLANNED.format(tag="devfull"))
    done, took = run(workdir, local_server, "devfull", "--out", "json=/dev/full")
    assert_output_failure(done, took, local_server, "devfull",
                          "the json output cannot write /dev/full: No space left on device")
    export = json.loads(next((workdir / "results").glob("devfull_*.json")).read_text())
    assert export["metrics"]["http_reqs"]["count"] == len(local_server.paths("/devfull/"))


def test_a_full_disk_fails_the_raw_output_and_the_export_without_temp_files(
    workdir: Path, local_server: LocalServer, tiny_disk: Path
) -> None:
    write_scenario(workdir, "fulldisk", PLANNED.format(tag="fulldisk"))
    done, took = run(workdir, local_server, "fulldisk",
                     "--out", f"csv={tiny_disk}/raw.csv",
                     "--summary-export", f"{tiny_disk}/summary.json")
    assert_output_failure(done, took, local_server, "fulldisk",
                          f"the csv output cannot write {tiny_disk}/raw.csv: "
                          "No space left on device")
    assert f"error: cannot write the summary export {tiny_disk}/summary.json: No space " \
           "left on device" in done.stderr
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["raw.csv"]  # no .tmp left
    rows = (tiny_disk / "raw.csv").read_text().splitlines()
    assert rows[0].startswith("metric_name,") and len(rows) > 10  # what fitted is kept


def test_a_removed_file_and_a_read_only_folder_are_output_failures(
    workdir: Path, local_server: LocalServer, roomy_disk: Path
) -> None:
    write_scenario(workdir, "removed", PLANNED.format(tag="removed"))
    # The summary export goes to a folder made read-only while the test runs (a read-only
    # bind mount: root ignores file modes).
    (roomy_disk / "ro").mkdir()

    def remove_and_lock() -> None:
        wait_for_requests(local_server, "/removed/", 4)
        (roomy_disk / "raw.ndjson").unlink()
        mount("--bind", str(roomy_disk / "ro"), str(roomy_disk / "ro"))
        mount("-o", "remount,bind,ro", str(roomy_disk / "ro"))

    try:
        done, took = run(workdir, local_server, "removed",
                         "--out", f"json={roomy_disk}/raw.ndjson",
                         "--summary-export", f"{roomy_disk}/ro/summary.json",
                         during=remove_and_lock)
    finally:
        subprocess.run(["umount", "-l", str(roomy_disk / "ro")], capture_output=True,
                       timeout=10)
    assert_output_failure(done, took, local_server, "removed",
                          f"the json output cannot write {roomy_disk}/raw.ndjson: "
                          "the file was removed during the run")
    assert f"error: cannot write the summary export {roomy_disk}/ro/summary.json: " \
           "Read-only file system" in done.stderr
    assert list((roomy_disk / "ro").iterdir()) == []
