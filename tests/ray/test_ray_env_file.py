"""`run --ray` never ships the configuration file with the scenario's folder (issue 22 §5):
`.env` (the documented place for API_KEY) and the file `--env-file` names stay on the
driver's machine; their values reach the actors in their creation arguments, as every
other secret does (docs/guarantees.md)."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

from cluster_helpers import RayTestCluster

RUN_LIMIT = 60

# In the project's root, beside `.env`: the folder Ray ships is the one holding both.
# The check runs on the actors only (VU code), in their copy of the folder.
PROBE = '''from hashlib import sha256
from pathlib import Path
from indigo_loadtest import check, env

options = {"vus": 2, "iterations": 4}
HERE = Path(__file__).parent


async def default(vu):
    check(None, {
        "the key arrived": lambda _: sha256(env["API_KEY"].encode()).hexdigest()
        == env["KEY_SHA256"],
        "no configuration file shipped": lambda _: not any(
            (HERE / name).exists() for name in (".env", ".env.local", "conf/run.env")),
    })
'''


def test_no_env_file_lands_on_the_nodes(workdir: Path, ray_cluster: RayTestCluster) -> None:
    dotenv, local, named = (f"sk-{secrets.token_hex(12)}" for _ in range(3))
    (workdir / "probe.py").write_text(PROBE, encoding="utf-8")
    (workdir / ".env").write_text(f"API_KEY={dotenv}\n", encoding="utf-8")
    (workdir / ".env.local").write_text(f"API_KEY={local}\n", encoding="utf-8")
    (workdir / "conf").mkdir()
    (workdir / "conf" / "run.env").write_text(f"API_KEY={named}\n", encoding="utf-8")
    export = workdir / "results" / "probe.json"
    done = ray_cluster.run_cli(
        "run", "probe", "--scenarios-dir", ".", "--env-file", "conf/run.env",
        "--ray", ray_cluster.address, "--workers", "2",
        "--env", f"KEY_SHA256={hashlib.sha256(named.encode()).hexdigest()}",
        "-q", "--summary-export", str(export), cwd=workdir, timeout=RUN_LIMIT)
    assert done.returncode == 0, done.stderr
    checks = json.loads(export.read_text())["root_group"]["checks"]
    for name in ("the key arrived", "no configuration file shipped"):
        assert checks[name] == {**checks[name], "passes": 4, "fails": 0}, checks
    # Nothing of the files in any node's session directory (the unpacked working_dir
    # and the package Ray made of it), by name or by content.
    for path in ray_cluster.temp_dir.rglob("*"):
        assert path.name not in (".env", ".env.local", "run.env"), path
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert not any(v.encode() in data for v in (dotenv, local, named)), path
