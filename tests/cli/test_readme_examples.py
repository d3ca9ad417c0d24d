"""Every shell command the README shows runs and passes, as a user would type it, against
the embedded simulator. Kept short: DURATION_MIN and --duration are cut to seconds, and
for `bench` the simulator streams its tokens faster (INDIGO_SIM_TOKENS_PER_SEC: a sweep's
or search's seven points each wait for the requests in flight at their end)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import REPO, clean_env

SHORT_MINUTES = "0.03"  # about 2 s of load per scenario
NOT_RUN = ("./run-tests.sh",)  # the test suite itself


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command and not command.startswith(NOT_RUN):
                commands.append(command)
    return commands


YOUR_SERVER = " --base http://localhost:8000"  # the README's stand-in for the user's server
DURATION = re.compile(r"(?<!\S)(--duration|-d) \S+")


def shortened(command: str) -> str:
    """Seconds instead of minutes, and the embedded simulator instead of "your server"."""
    command = re.sub(r"\bDURATION_MIN=\S+", f"DURATION_MIN={SHORT_MINUTES}", command)
    seconds = "1s" if " bench " in command else "2s"  # a point of a sweep or search
    command = DURATION.sub(rf"\1 {seconds}", command.replace(YOUR_SERVER, ""))
    if " bench " in command and not DURATION.search(command):
        command += f" -d {seconds}"  # each point of a max-rate search
    return command.replace("./run-loadtest.sh", str(REPO / "run-loadtest.sh"))


def test_the_readme_shows_commands() -> None:
    commands = readme_commands()
    assert "./run-loadtest.sh" in commands and len(commands) >= 6


@pytest.mark.skipif(not (REPO / ".venv" / "bin" / "indigo-loadtest").exists(),
                    reason="run-loadtest.sh would first set up .venv")
@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs(command: str, tmp_path: Path) -> None:
    env = clean_env(DURATION_MIN=SHORT_MINUTES)
    if " bench " in command:
        env["INDIGO_SIM_TOKENS_PER_SEC"] = "1000"  # 64 tokens in 0.06 s, not 0.8 s
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    res = subprocess.run(["bash", "-c", shortened(command)], cwd=tmp_path, env=env,
                         text=True, capture_output=True, timeout=90)
    assert res.returncode == 0, f"{command}\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    if command == "./run-loadtest.sh":  # run --all says what it will take, first
        first = res.stdout.splitlines()[0]
        assert re.fullmatch(r"run --all: 3 scenarios, 0m0\ds of planned load .*", first)


def test_run_all_plans_fifteen_minutes_by_default(tmp_path: Path) -> None:
    """What the README says of `./run-loadtest.sh` with the default DURATION_MIN=5."""
    res = subprocess.run([sys.executable, "-m", "indigo_loadtest.cli", "run", "--all",
                          "--dry-run", "-q"], cwd=tmp_path, env=clean_env(), text=True,
                         capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == ("run --all: 3 scenarios, 15m00s of planned load "
                                          "(plus 2s pauses, setup and teardown)")
