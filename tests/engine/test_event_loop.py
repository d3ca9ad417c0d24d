"""INDIGO_EVENT_LOOP=asyncio runs everything on the standard library's loop (the Windows
path, kept tested here); by default uvloop runs the generator and its workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCENARIO = '''"""Writes down the type of loop each process runs on."""
import asyncio, os
from pathlib import Path
from indigo_loadtest import env

options = {"vus": 2, "iterations": 2}

async def default(vu):
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    (Path(env["LOOPS_DIR"]) / f"{os.getpid()}-{loop}").touch()
    res = await vu.http.get(env["BASE"] + "/v1/version")
    assert res.status == 200, res.status
'''


@pytest.mark.parametrize(("choice", "expected"), [(None, "uvloop"), ("asyncio", "asyncio")])
def test_event_loop_choice_reaches_every_process(tmp_path: Path, choice: str | None,
                                                 expected: str) -> None:
    (tmp_path / "loops.py").write_text(SCENARIO)
    env = {k: v for k, v in os.environ.items() if k not in ("BASE", "INDIGO_EVENT_LOOP")}
    env["LOOPS_DIR"] = str(tmp_path)
    if choice:
        env["INDIGO_EVENT_LOOP"] = choice
    res = subprocess.run([sys.executable, "-m", "indigo_loadtest.cli", "run", "loops.py",
                          "--workers", "2", "-q", "--no-summary"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=90)
    assert res.returncode == 0, res.stderr
    seen = [p.name.split("-")[1] for p in tmp_path.iterdir() if p.name[0].isdigit()]
    assert len(seen) == 2 and set(seen) == {expected}  # two worker processes, one loop kind
