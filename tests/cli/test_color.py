"""The summary's colours: on a terminal only, and never with NO_COLOR or K6_NO_COLOR."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pytest
from cli_helpers import clean_env, cli_argv, write_scenario

ESC = b"\x1b["
SCENARIO = '''"""No traffic: one check, one iteration."""
from indigo_loadtest import check

async def default(vu):
    check(1, {"one is one": lambda v: v == 1})
'''


def run_on_a_terminal(workdir: Path, **env: str) -> bytes:
    """The CLI's stdout when it is a real pseudo-terminal."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(cli_argv("run", "quiet", "-q", "--workers", "1"), cwd=workdir,
                                env=clean_env(BASE="http://127.0.0.1:9", **env),
                                stdout=follower, stderr=subprocess.DEVNULL)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=60)
    finally:
        os.close(leader)
    return b"".join(chunks)


@pytest.mark.parametrize("variable", ["NO_COLOR", "K6_NO_COLOR"])
def test_no_color_variables_turn_colour_off(workdir: Path, variable: str) -> None:
    write_scenario(workdir, "quiet", SCENARIO)
    coloured = run_on_a_terminal(workdir)
    assert b"one is one" in coloured and ESC in coloured  # a terminal gets colours
    plain = run_on_a_terminal(workdir, **{variable: "1"})
    assert b"one is one" in plain and ESC not in plain
