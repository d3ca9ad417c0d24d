"""container/build-image.sh refuses bad arguments in one line before it builds anything
(PYTHON=false: a wheelhouse step reached would fail with another message)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "container" / "build-image.sh"


@pytest.mark.parametrize(("args", "engine", "error"), [
    (["--tag"], "true", "error: --tag needs a value"),
    (["--tag", "--debian-base"], "true", "error: --tag needs a value"),
    (["--base-image", ""], "true", "error: --base-image needs a value"),
    (["--bogus"], "true", "error: unknown option: --bogus (see --help)"),
    (["--tag", "x"], "no-such-engine", "error: ENGINE=no-such-engine: no such command"),
])
def test_bad_arguments_are_one_line_before_any_build(
        args: list[str], engine: str, error: str) -> None:
    res = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=20,
                         env={**os.environ, "ENGINE": engine, "PYTHON": "false"})
    assert res.returncode == 1
    assert res.stderr == error + "\n"
