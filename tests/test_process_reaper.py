"""The suite's own hygiene (tests/process_reaper.py): whatever a test leaves running is
killed with its process group when the test ends, passed, failed or timed out; a
process that ignores SIGTERM and one that left the group (setsid) included. Shown on a
probe test file run by a real pytest with the plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

# Each probe test starts a child that ignores SIGTERM and a grandchild in a session of its
# own, writes their pids, then passes, fails or hangs past its timeout.
PROBE = '''import os, subprocess, sys, time
import pytest

CHILD = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                              start_new_session=True)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.getpid()} {grandchild.pid}")
time.sleep(600)
"""

def leave_processes(name):
    path = os.path.join(os.environ["PIDS_DIR"], name)
    subprocess.Popen([sys.executable, "-c", CHILD, path])
    while not os.path.exists(path) or not open(path).read():
        time.sleep(0.05)

def test_passes():
    leave_processes("passes")

def test_fails():
    leave_processes("fails")
    assert False

@pytest.mark.timeout(1)
def test_times_out():
    leave_processes("times_out")
    time.sleep(60)
'''


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_every_process_a_test_left_is_killed_however_it_ended(tmp_path: Path) -> None:
    (tmp_path / "test_probe.py").write_text(PROBE)
    pids_dir = tmp_path / "pids"
    pids_dir.mkdir()
    env = {**os.environ, "PIDS_DIR": str(pids_dir), "PYTHONPATH": str(TESTS)}
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "process_reaper",
                          "-p", "no:cacheprovider", "-p", "no:rerunfailures",
                          str(tmp_path / "test_probe.py")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert "2 failed, 1 passed" in res.stdout, res.stdout  # the timeout is a failure
    assert "Timeout" in res.stdout, res.stdout
    left = {name: [int(x) for x in (pids_dir / name).read_text().split()]
            for name in ("passes", "fails", "times_out")}
    deadline = time.monotonic() + 5  # SIGKILL is delivered at once; reaping may lag
    while any(alive(pid) for pids in left.values() for pid in pids):
        if time.monotonic() > deadline:
            pytest.fail(f"still running: {left}")
        time.sleep(0.05)
    for name in left:  # each test that left processes is named
        assert f"test_probe.py::test_{name}: killed processes it left running" in res.stderr
