"""Without `--workers`, a run uses the cores, but no more processes than it has VUs, and
one process when raw-sample outputs are requested. Real runs; the processes are seen by
the pids the scenario itself writes down."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import LocalServer, clean_env, run_cli, write_scenario

from indigo_loadtest.engine.plan import ScenarioConfig
from indigo_loadtest.engine.plan import TestPlan as Plan  # not a test class
from indigo_loadtest.engine.workers import default_workers
from indigo_loadtest.runner import RunSettings, worker_count

PID_SCENARIO = '''"""Writes down which process ran setup() and each iteration."""
import os
from pathlib import Path

from indigo_loadtest import env

options = {{"vus": {vus}, "iterations": {iterations}}}


def setup():
    (Path(env["PIDS_DIR"]) / f"setup-{{os.getpid()}}").touch()


async def default(vu):
    (Path(env["PIDS_DIR"]) / f"vu-{{os.getpid()}}").touch()
    await vu.http.get(env["BASE"] + "/auto/" + str(vu.id))
'''


def run_recording_pids(workdir: Path, server: LocalServer, name: str, vus: int,
                       iterations: int, *args: str) -> tuple[str, set[str], set[str]]:
    """(stdout, setup pids, iteration pids) of one run of the pid scenario."""
    pids = workdir / f"pids-{name}"
    pids.mkdir()
    write_scenario(workdir, name, PID_SCENARIO.format(vus=vus, iterations=iterations))
    res = run_cli("run", name, "--no-summary", "--env", f"PIDS_DIR={pids}", *args,
                  cwd=workdir, env=clean_env(BASE=server.url))
    assert res.returncode == 0, res.stderr
    names = [p.name for p in pids.iterdir()]
    setup = {n.removeprefix("setup-") for n in names if n.startswith("setup-")}
    vu = {n.removeprefix("vu-") for n in names if n.startswith("vu-")}
    return res.stdout, setup, vu


def test_default_uses_the_cores_up_to_the_vus(workdir: Path,
                                              local_server: LocalServer) -> None:
    expected = min(default_workers(), 4)
    out, setup, vu = run_recording_pids(workdir, local_server, "four_vus", 4, 8)
    assert len(setup) == 1 and len(local_server.paths("/auto/")) >= 8
    if expected > 1:  # the iterations ran in the worker processes, not where setup ran
        assert len(vu) == expected and not vu & setup
        assert f"workers: {expected}" in out
    else:
        assert vu == setup and "workers:" not in out


def test_one_vu_and_raw_outputs_stay_in_one_process(workdir: Path,
                                                    local_server: LocalServer) -> None:
    out, setup, vu = run_recording_pids(workdir, local_server, "one_vu", 1, 3)
    assert vu == setup and "workers:" not in out
    out, setup, vu = run_recording_pids(workdir, local_server, "raw_out", 4, 8,
                                        "--out", f"json={workdir / 'samples.ndjson'}")
    assert vu == setup and "workers:" not in out
    assert (workdir / "samples.ndjson").stat().st_size > 0


def test_worker_count_rules() -> None:
    cores = default_workers()

    def plan(*scenarios: ScenarioConfig) -> Plan:
        return Plan(scenarios=list(scenarios))

    shared = ScenarioConfig("s", "shared-iterations", vus=10, iterations=1)
    arrival = ScenarioConfig("a", "constant-arrival-rate", vus=1, pre_allocated_vus=2,
                             max_vus=50, rate=10, duration=1)
    looping = ScenarioConfig("c", "constant-vus", vus=3, duration=1)
    assert worker_count(RunSettings("x"), plan(shared)) == 1  # one iteration: one VU
    assert worker_count(RunSettings("x"), plan(arrival)) == min(cores, 50)
    assert worker_count(RunSettings("x"), plan(looping, shared)) == min(cores, 4)
    assert worker_count(RunSettings("x", outs=["csv"]), plan(arrival)) == 1
    assert worker_count(RunSettings("x", outs=["prometheus-rw"]), plan(arrival)) \
        == min(cores, 50)
    assert worker_count(RunSettings("x", workers=3), plan(shared)) == 3  # as given
