"""`./run-tests.sh` (the README's test command, and CI's) runs the tests twice: on the
default event loop, then on the standard library's (INDIGO_EVENT_LOOP=asyncio, what
Windows runs) with the pure-Python stream path (INDIGO_PURE_PYTHON=1); a failure in
either pass fails the script. Run here on a probe test file, with the set-up skipped
(INDIGO_TEST_SETUP=0)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_helpers import REPO, clean_env

PROBE = '''import os
from pathlib import Path

import pytest

@pytest.mark.loop  # pass 2 runs the tests with this mark
def test_probe():
    loop = os.environ.get("INDIGO_EVENT_LOOP") or "default"
    with open(Path(__file__).with_name("seen.txt"), "a") as f:
        f.write(loop + ":" + os.environ.get("INDIGO_PURE_PYTHON", "0") + "\\n")
    assert loop != {bad!r}


def test_unmarked():  # pass 1 only
    with open(Path(__file__).with_name("seen.txt"), "a") as f:
        f.write("unmarked:" + (os.environ.get("INDIGO_EVENT_LOOP") or "default") + "\\n")
'''


def run_tests(tmp_path: Path, bad: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE.format(bad=bad))
    res = subprocess.run([str(REPO / "run-tests.sh"), str(probe), "-p", "no:cacheprovider"],
                         env=clean_env(INDIGO_TEST_SETUP="0", INDIGO_EVENT_LOOP="uvloop"),
                         capture_output=True, text=True, timeout=90)
    return res, (tmp_path / "seen.txt").read_text().split()


@pytest.mark.parametrize(("bad", "failed"), [
    ("none", None),
    ("default", "pass 1 (default event loop) failed"),
    ("asyncio", "pass 2 (INDIGO_EVENT_LOOP=asyncio INDIGO_PURE_PYTHON=1) failed"),
])
def test_run_tests_runs_both_loops_and_fails_if_either_fails(tmp_path: Path, bad: str,
                                                            failed: str | None) -> None:
    res, seen = run_tests(tmp_path, bad)
    # The caller's INDIGO_EVENT_LOOP is not pass 1's; pass 2 runs the .py stream path.
    # The unmarked test runs in pass 1 alone.
    assert seen == ["default:0", "unmarked:default", "asyncio:1"]
    if failed is None:
        assert res.returncode == 0, res.stderr
        assert "failed" not in res.stderr
    else:
        assert res.returncode != 0
        assert [line for line in res.stderr.splitlines() if "run-tests.sh" in line] == [
            f"run-tests.sh: {failed}"]
