"""`run --ray` against a real Ray cluster with token authentication (RAY_AUTH_MODE=token):
with the cluster's token the run passes and the token is in no output or file; without
it, or with a wrong one, the run fails in one line that says so, instead of Ray's warning
a second and a vague connection error, and at once (Ray alone retries for 20 s)."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import clean_env, write_scenario
from cluster_helpers import RayTestCluster, start_cluster

from indigo_loadtest.run.ray import AUTH_HINT
from indigo_loadtest.scenario.errors import ExitCode

TOKEN = secrets.token_hex(32)
# Each run's own environment: the cluster's token, none, another one.
RUNS = {"token": {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN},
        "none": {},
        "wrong": {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}}

COUNTED = '''"""Four requests across two shards."""
from indigo_loadtest import check, env

options = {"vus": 2, "iterations": 4}


async def default(vu):
    res = await vu.http.get(f"{env['BASE']}/v1/models")
    check(res, {"models listed": lambda r: r.status == 200})
'''


def token_env(home: Path, **extra: str) -> dict[str, str]:
    """No token of this machine's (~/.ray/auth_token) nor of the caller's environment:
    only what the test gives."""
    home.mkdir(exist_ok=True)
    env = clean_env(HOME=str(home))
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(name, None)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def token_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayTestCluster]:
    home = tmp_path_factory.mktemp("ray-home")
    yield from start_cluster(token_env(home, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=TOKEN),
                             nodes=1)


@dataclass
class Ended:
    returncode: int
    stdout: str
    stderr: str
    at: float  # monotonic time it was seen ended


def _wait(proc: subprocess.Popen[str]) -> Ended:
    out, err = proc.communicate(timeout=90)
    return Ended(proc.returncode, out, err, time.monotonic())


def run_together(cluster: RayTestCluster, workdir: Path) -> dict[str, Ended]:
    """The runs of RUNS started at once, each in a folder of its own."""
    procs = {}
    for name, extra in RUNS.items():
        folder = workdir / name
        (folder / "scenarios").mkdir(parents=True)
        write_scenario(folder, "counted", COUNTED)
        flags = ["--workers", "2", "--summary-export", "export.json"] if name == "token" else []
        procs[name] = subprocess.Popen(
            cluster.argv("run", "counted", "--ray", cluster.address, *flags), cwd=folder,
            env=token_env(folder / "home", **extra), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with ThreadPoolExecutor(len(procs)) as pool:
        ended = {name: pool.submit(_wait, proc) for name, proc in procs.items()}
        return {name: each.result() for name, each in ended.items()}


def test_with_the_token_the_run_passes_without_it_it_fails_at_once_in_one_line(
    workdir: Path, token_cluster: RayTestCluster
) -> None:
    runs = run_together(token_cluster, workdir)
    passed = runs["token"]
    assert passed.returncode == ExitCode.OK, passed.stderr
    assert json.loads((workdir / "token" / "export.json").read_text()
                      )["metrics"]["checks"]["passes"] == 4
    assert TOKEN not in passed.stdout + passed.stderr
    for path in [*workdir.rglob("*"), *token_cluster.temp_dir.rglob("*")]:
        if path.is_file() and "auth_token" not in path.name:
            assert TOKEN.encode() not in path.read_bytes(), path
    for given in ("none", "wrong"):
        refused = runs[given]
        assert refused.returncode == ExitCode.INVALID_CONFIG, refused.stderr
        assert refused.stderr.strip() == (f"error: --ray: cannot join {token_cluster.address}: "
                                          f"{AUTH_HINT}"), refused.stderr
        assert not (workdir / given / "results").exists()
        # At once: ended before the run with the token, started with it, did its work
        # (a few seconds). Ray alone first retries for 20 s, a warning a second.
        assert refused.at < passed.at, (given, refused.at - passed.at)
