"""`run --ray`: the real CLI in a subprocess, its shards as actors of a real two-node Ray
cluster on 127.0.0.1 (conftest.py), traffic to the embedded simulator."""

from __future__ import annotations

import json
import re
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

from cli_helpers import clean_env, run_cli, write_scenario
from cluster_helpers import RayTestCluster, cluster_env, descendants
from listening import listening, not_loopback_only

from indigo_loadtest.scenario.errors import ExitCode

RUN_LIMIT = 60  # seconds for one run through the cluster (actors start in seconds)

# Two scenarios, one per kind of fixed-count plan the shards split (k6's striping); a
# check per request. The threshold is met by each shard alone (4 + 3 < 12, ...), and
# crossed only by the merged count: the run's verdict is taken on the merged data.
COUNTED = '''"""Fixed counts, split across shards."""
from indigo_loadtest import check, env

options = {
    "scenarios": {
        "shared": {"executor": "shared-iterations", "vus": 3, "iterations": 9},
        "per_vu": {"executor": "per-vu-iterations", "vus": 3, "iterations": 2},
    },
    "thresholds": {"iterations": ["count<%(limit)s"]},
}
print("scenario loaded")  # on every actor too: its line is relayed to the driver


async def default(vu):
    res = await vu.http.get(f"{env['BASE']}/v1/models",
                            headers={"Authorization": f"Bearer {env['API_KEY']}"})
    check(res, {"models listed": lambda r: r.status == 200})
'''

# Planned for a minute: only the relayed stop can end it within the test's limit.
LOOPING = '''"""Two shards loop; each writes down its process id."""
import os
from pathlib import Path

from indigo_loadtest import env, sleep

options = {"vus": 2, "duration": "60s"}
Path(env["PIDS_DIR"], str(os.getpid())).touch()


async def default(vu):
    await vu.http.get(f"{env['BASE']}/v1/models")
    await sleep(0.05)
'''


def counts(export: Path) -> dict[str, float]:
    metrics = json.loads(export.read_text())["metrics"]
    return {
        "iterations": metrics["iterations"]["count"],
        "http_reqs": metrics["http_reqs"]["count"],
        "checks_passed": metrics["checks"]["passes"],
        "checks_failed": metrics["checks"]["fails"],
    }


def test_counts_through_ray_equal_those_of_two_workers_and_thresholds_see_them_merged(
    workdir: Path, ray_cluster: RayTestCluster
) -> None:
    secret = f"sk-{secrets.token_hex(12)}"
    write_scenario(workdir, "counted", COUNTED % {"limit": 12})  # 15 merged, < 12 each
    runs = {}
    for name, flags in (("workers", ["--workers", "2"]),
                        ("ray", ["--ray", ray_cluster.address])):
        export = workdir / f"{name}.json"
        done = ray_cluster.run_cli("run", "counted", *flags, "--env", f"API_KEY={secret}",
                                   "--no-color", "--summary-export", str(export),
                                   cwd=workdir, timeout=RUN_LIMIT)
        # The threshold is judged on the merged counts: crossed, with either backend.
        assert done.returncode == ExitCode.THRESHOLDS_FAILED, done.stderr
        assert re.search(r"✗ 'count<12' count=15", done.stdout), done.stdout
        runs[name] = (counts(export), done)
    # 9 shared + 3 VUs x 2 per-VU iterations, each one request and one passing check.
    assert runs["ray"][0] == runs["workers"][0] == {
        "iterations": 15, "http_reqs": 15, "checks_passed": 15, "checks_failed": 0}
    # Two actors (the cluster's CPUs, one per node): one on each node. The header says
    # where the shards ran.
    err, out = runs["ray"][1].stderr, runs["ray"][1].stdout
    assert re.search(r"(?m)^ray: 2 actors on 2 node\(s\)", err), err
    assert f"ray: 2 actors on Ray at {ray_cluster.address}" in out, out
    # The actors' relayed lines carry no colour codes into a file (RAY_COLOR_PREFIX=0
    # off a terminal).
    assert "(ShardActor pid=" in out + err
    assert "\x1b[" not in out + err
    # The key reached the actors (every request was authorised) without reaching any
    # log: not the run's output, not a file of any node's session.
    assert secret not in err + out
    for path in ray_cluster.temp_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert secret.encode() not in path.read_bytes(), path


def test_through_ray_client_the_counts_are_the_same(
    workdir: Path, ray_cluster: RayTestCluster
) -> None:
    """`--ray ray://host:port`: the driver runs here and reaches the cluster through the
    head's Ray Client server (as from outside a KubeRay cluster)."""
    secret = f"sk-{secrets.token_hex(12)}"
    write_scenario(workdir, "counted", COUNTED % {"limit": 1000})
    export = workdir / "client.json"
    done = ray_cluster.run_cli("run", "counted", "--ray", ray_cluster.client_address,
                               "--workers", "2", "--env", f"API_KEY={secret}", "-q",
                               "--summary-export", str(export), cwd=workdir,
                               timeout=RUN_LIMIT)
    assert done.returncode == 0, done.stderr
    assert counts(export) == {
        "iterations": 15, "http_reqs": 15, "checks_passed": 15, "checks_failed": 0}
    assert re.search(r"(?m)^ray: 2 actors on \d node\(s\)", done.stderr), done.stderr
    assert secret not in done.stderr + done.stdout
    # The client server colours the actors' lines on the cluster's side: off a
    # terminal, they reach this output without those codes.
    assert "(ShardActor pid=" in done.stdout + done.stderr
    assert "\x1b[" not in done.stdout + done.stderr, done.stdout + done.stderr


def wait_for_pids(folder: Path, count: int, limit: float = 40) -> set[int]:
    deadline = time.monotonic() + limit
    while len(list(folder.iterdir())) < count:
        assert time.monotonic() < deadline, "the actors did not load the scenario"
        time.sleep(0.1)
    return {int(p.name) for p in folder.iterdir()}


def test_ctrl_c_stops_every_actor_gracefully(workdir: Path, ray_cluster: RayTestCluster) -> None:
    pids_dir = workdir / "pids"
    pids_dir.mkdir()
    export = workdir / "summary.json"
    write_scenario(workdir, "looping", LOOPING)
    proc = subprocess.Popen(
        ray_cluster.argv("run", "looping", "--ray", ray_cluster.address, "--env",
                         f"PIDS_DIR={pids_dir}", "--summary-export", str(export)),
        cwd=workdir, env=cluster_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        wait_for_pids(pids_dir, 3)
        time.sleep(2.0)
        # Mid-run, the run's own servers too (the driver's, its embedded simulator's,
        # the actors') listen where the cluster's do: loopback only.
        running = descendants(proc.pid).union(*map(descendants, ray_cluster.node_pids))
        assert not not_loopback_only(running, ray_cluster.netns_pid)
        assert listening(descendants(proc.pid)), "the driver's servers were not seen"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == ExitCode.EXTERNAL_ABORT, err
    # Both actors stopped their shares and returned their final state: none was lost.
    assert "start skew" in err and "died" not in err, err
    assert json.loads(export.read_text())["metrics"]["http_reqs"]["count"] > 0


# The driver imports the scenario first (to validate it) and leaves a mark; an actor that
# finds the mark fails to load it, as on a node where a module it needs is missing.
FAILS_ON_ACTORS = '''"""Loads in the driver only."""
from pathlib import Path

from indigo_loadtest import env

options = {"vus": 2, "iterations": 4}
MARK = Path(env["MARK"])
if MARK.exists():
    raise RuntimeError("no such module on this node")
MARK.touch()


async def default(vu):
    pass
'''


def test_an_actor_that_cannot_load_the_scenario_ends_the_run_before_the_start(
    workdir: Path, ray_cluster: RayTestCluster
) -> None:
    write_scenario(workdir, "fails_on_actors", FAILS_ON_ACTORS)
    done = ray_cluster.run_cli("run", "fails_on_actors", "--ray", ray_cluster.address,
                               "--env", f"MARK={workdir / 'mark'}", cwd=workdir,
                               timeout=RUN_LIMIT)
    assert done.returncode == ExitCode.WORKER_DIED, done.stderr
    assert re.search(r"(?m)^error: Ray actor [01] failed with .*RuntimeError: no such "
                     "module on this node before the test started", done.stderr), done.stderr
    # The scenarios never started: no iteration was run anywhere.
    assert not re.search(r"iterations\.+: [1-9]", done.stdout), done.stdout


def test_raw_sample_outputs_are_refused_with_ray(workdir: Path) -> None:
    write_scenario(workdir, "counted", COUNTED % {"limit": 1000})
    done = run_cli("run", "counted", "--ray", "--out", "json=raw.json", cwd=workdir)
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.strip().splitlines()[-1].startswith(
        "error: --out json/csv record every raw sample"), done.stderr
    assert not (workdir / "raw.json").exists()


def test_an_address_nothing_answers_at_fails_at_once_in_one_line(workdir: Path) -> None:
    with socket.socket() as s:  # a loopback port, bound and not listening
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
        write_scenario(workdir, "counted", COUNTED % {"limit": 1000})
        done = run_cli("run", "counted", "--ray", address, cwd=workdir, env=cluster_env(),
                       timeout=30)  # Ray alone would retry for minutes
    assert done.returncode == ExitCode.INVALID_CONFIG, done.stderr
    assert done.stderr.strip() == (f"error: --ray: no Ray cluster answers at {address} "
                                   "(Connection refused)"), done.stderr


def test_ray_missing_is_one_line(workdir: Path) -> None:
    # A `ray` package that cannot be imported stands for Ray not installed.
    fake = workdir / "no_ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    write_scenario(workdir, "counted", COUNTED % {"limit": 1000})
    done = run_cli("run", "--ray", "counted", cwd=workdir,
                   env=clean_env(PYTHONPATH=str(fake.parent)))
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.strip() == ("error: --ray needs Ray, which is not installed: "
                                   "pip install 'indigo-loadtest[ray]'"), done.stderr
