"""`run --ray`, one run for two behaviours:

- abortOnFail is judged on the actors' live snapshots: the merged count crosses the
  threshold in seconds, neither actor's alone does, and the plan is a minute long;
- the configuration file is never shipped with the scenario's folder (issue 22 §5):
  `.env` (the documented place for API_KEY) and the file `--env-file` names stay on the
  driver's machine; their values reach the actors in their creation arguments, as every
  other secret does (docs/guarantees.md)."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

from cluster_helpers import RayTestCluster

from indigo_loadtest.scenario.errors import ExitCode

# In the project's root, beside `.env`: the folder Ray ships is the one holding both.
# The checks run on the actors only (VU code), in their copy of the folder. 2 VUs, one
# iteration per 0.1 s: 40 merged iterations after about 2 s (20 per actor: neither alone
# crosses it). Only the live snapshots can stop it before the minute.
PROBE = '''"""A minute of iterations; the merged count crosses the threshold in seconds."""
from hashlib import sha256
from pathlib import Path
from indigo_loadtest import check, env, sleep

options = {
    "vus": 2, "duration": "60s",
    "thresholds": {"iterations": [{"threshold": "count<40", "abortOnFail": True}]},
}
HERE = Path(__file__).parent


async def default(vu):
    check(None, {
        "the key arrived": lambda _: sha256(env["API_KEY"].encode()).hexdigest()
        == env["KEY_SHA256"],
        "no configuration file shipped": lambda _: not any(
            (HERE / name).exists() for name in (".env", ".env.local", "conf/run.env")),
    })
    await sleep(0.1)
'''


def test_abort_on_fail_is_judged_live_and_no_env_file_lands_on_the_nodes(
    workdir: Path, ray_cluster: RayTestCluster
) -> None:
    dotenv, local, named = (f"sk-{secrets.token_hex(12)}" for _ in range(3))
    (workdir / "probe.py").write_text(PROBE, encoding="utf-8")
    (workdir / ".env").write_text(f"API_KEY={dotenv}\n", encoding="utf-8")
    (workdir / ".env.local").write_text(f"API_KEY={local}\n", encoding="utf-8")
    (workdir / "conf").mkdir()
    (workdir / "conf" / "run.env").write_text(f"API_KEY={named}\n", encoding="utf-8")
    export = workdir / "results" / "probe.json"
    done = ray_cluster.run_cli(
        "run", "probe", "--scenarios-dir", ".", "--env-file", "conf/run.env",
        "--ray", ray_cluster.address, "--env", "BASE=http://127.0.0.1:9",
        "--env", f"KEY_SHA256={hashlib.sha256(named.encode()).hexdigest()}",
        "--no-color", "--summary-export", str(export), cwd=workdir, timeout=40)
    # Stopped by the merged count, long before the minute, no actor lost.
    assert done.returncode == ExitCode.THRESHOLDS_FAILED, done.stderr
    assert "crossed (abortOnFail)" in done.stdout + done.stderr
    assert "died" not in done.stderr, done.stderr
    checks = json.loads(export.read_text())["root_group"]["checks"]
    for name in ("the key arrived", "no configuration file shipped"):
        assert checks[name]["passes"] >= 40 and checks[name]["fails"] == 0, checks
    # Nothing of the files in any node's session directory (the unpacked working_dir
    # and the package Ray made of it), by name or by content.
    for path in ray_cluster.temp_dir.rglob("*"):
        assert path.name not in (".env", ".env.local", "run.env"), path
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert not any(v.encode() in data for v in (dotenv, local, named)), path
