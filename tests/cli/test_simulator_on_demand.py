"""Without BASE, `run` starts the embedded simulator only for a scenario that can use it
(one that names BASE or imports the Jan helpers): a simulator process the run does not
use would take CPU from the generator."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import LocalServer, clean_env, run_cli, write_scenario

from indigo_loadtest.scenario.errors import ExitCode

# Counts, from inside the run, the simulator processes this run started: each is
# `python -m indigo_loadtest.simulator ... --parent-pid <the run's pid>`.
COUNT_SIMULATORS = '''
import os
from pathlib import Path

from indigo_loadtest import check, env

options = {"vus": 1, "iterations": 1}


def simulators():
    me, found = str(os.getpid()).encode(), 0
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\\0") if proc.name.isdigit() else []
        except OSError:
            continue
        found += b"indigo_loadtest.simulator" in argv and me in argv
    return found
'''

OWN_URL_ONLY = '"""Calls only its own URL."""' + COUNT_SIMULATORS + '''

async def default(vu):
    res = await vu.http.get(env["TARGET"] + "/own")
    check(res, {"own url 200": lambda r: r.status == 200})
    print("simulator processes:", simulators())
'''

READS_BASE = '"""Names BASE."""' + COUNT_SIMULATORS + '''

async def default(vu):
    res = await vu.http.get(env["BASE"] + "/v1/version")
    check(res, {"simulator 200": lambda r: r.status == 200})
    print("simulator processes:", simulators())
'''

COMPUTED_KEY = '''"""Reads BASE through a key the scan cannot see."""
from indigo_loadtest import env

options = {"vus": 1, "iterations": 1}


async def default(vu):
    await vu.http.get(env["BA" + "SE"] + "/x")
'''


def test_a_scenario_that_never_reads_base_runs_without_a_simulator(
        workdir: Path, local_server: LocalServer) -> None:
    write_scenario(workdir, "own", OWN_URL_ONLY)
    res = run_cli("run", "own", "--workers", "1", "-e", f"TARGET={local_server.url}",
                  cwd=workdir, env=clean_env())
    assert res.returncode == 0, res.stderr
    assert "simulator processes: 0" in res.stdout
    assert ("target: none (BASE unset; embedded simulator not started: the scenario never "
            "reads BASE)") in res.stdout
    assert "✓ own url 200" in res.stdout


def test_a_scenario_that_names_base_gets_the_simulator(workdir: Path) -> None:
    write_scenario(workdir, "base", READS_BASE)
    res = run_cli("run", "base", "--workers", "1", cwd=workdir, env=clean_env())
    assert res.returncode == 0, res.stderr
    assert "simulator processes: 1" in res.stdout
    assert "target: embedded simulator at http://127.0.0.1:" in res.stdout
    assert "✓ simulator 200" in res.stdout


def test_base_read_the_scan_cannot_see_fails_with_a_clear_message(workdir: Path) -> None:
    write_scenario(workdir, "computed", COMPUTED_KEY)
    res = run_cli("run", "computed", "--workers", "1", cwd=workdir, env=clean_env())
    assert res.returncode == ExitCode.NOTHING_MEASURED
    assert "MissingBase: BASE is not set, and the embedded simulator was not started: the " \
        "scenario does not name BASE in its source" in res.stderr
