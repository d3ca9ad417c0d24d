"""`run --ray` against a real Ray cluster with token authentication (RAY_AUTH_MODE=token):
with the cluster's token the run passes and the token is in no output or file; without
it, or with a wrong one, the run fails in one line that says so, instead of Ray's warning
a second and a vague connection error."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import clean_env, write_scenario
from cluster_helpers import RayTestCluster, start_cluster

from indigo_loadtest.run.ray import AUTH_HINT
from indigo_loadtest.scenario.errors import ExitCode

TOKEN = secrets.token_hex(32)

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


def test_with_the_token_the_run_passes_and_the_token_is_never_written(
    workdir: Path, token_cluster: RayTestCluster
) -> None:
    write_scenario(workdir, "counted", COUNTED)
    export = workdir / "export.json"
    done = token_cluster.run_cli("run", "counted", "--ray", token_cluster.address,
                                 "--workers", "2", "--summary-export", str(export),
                                 cwd=workdir, timeout=90,
                                 env=token_env(workdir / "home", RAY_AUTH_MODE="token",
                                               RAY_AUTH_TOKEN=TOKEN))
    assert done.returncode == ExitCode.OK, done.stderr
    assert json.loads(export.read_text())["metrics"]["checks"]["passes"] == 4
    assert TOKEN not in done.stdout + done.stderr
    for path in [*workdir.rglob("*"), *token_cluster.temp_dir.rglob("*")]:
        if path.is_file() and "auth_token" not in path.name:
            assert TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("given", ["none", "wrong"])
def test_a_refused_token_is_one_line_naming_the_cause(
    workdir: Path, token_cluster: RayTestCluster, given: str
) -> None:
    write_scenario(workdir, "counted", COUNTED)
    extra = {} if given == "none" else {"RAY_AUTH_MODE": "token",
                                        "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    started = time.monotonic()
    done = token_cluster.run_cli("run", "counted", "--ray", token_cluster.address,
                                 cwd=workdir, timeout=90,
                                 env=token_env(workdir / "home", **extra))
    assert done.returncode == ExitCode.INVALID_CONFIG, done.stderr
    assert done.stderr.strip() == (f"error: --ray: cannot join {token_cluster.address}: "
                                   f"{AUTH_HINT}"), done.stderr
    assert time.monotonic() - started < 60  # Ray gives up connecting after about 20 s
    assert not (workdir / "results").exists()
