"""A setup() or teardown() that runs past its timeout exits with k6's codes: 100 and 101
(one that raises exits 107); the summary is still written."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import clean_env, run_cli, write_scenario

from indigo_loadtest.scenario.errors import ExitCode

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


SCENARIO = '''"""A hook that sleeps past its timeout."""
from indigo_loadtest import check, sleep

options = {{"vus": 1, "iterations": 1, "{option}": "0.3s"}}

async def {slow}(*args):
    await sleep(5)

async def default(vu):
    check(1, {{"ran": lambda v: v == 1}})
'''


@pytest.mark.parametrize(("hook", "code"), [("setup", ExitCode.SETUP_TIMEOUT),
                                            ("teardown", ExitCode.TEARDOWN_TIMEOUT)])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_hook_timeout_exit_codes(workdir: Path, hook: str, code: int, workers: str) -> None:
    write_scenario(workdir, "slow", SCENARIO.format(option=f"{hook}Timeout", slow=hook))
    res = run_cli("run", "slow", "-q", "--workers", workers, "--summary-export", "s.json",
                  cwd=workdir, env=clean_env(BASE="http://127.0.0.1:9"))
    assert res.returncode == code, res.stderr
    assert f"error: {hook}() failed: {hook}() did not finish within 0.3s ({hook}Timeout)" \
        in res.stderr
    assert (workdir / "s.json").is_file()
