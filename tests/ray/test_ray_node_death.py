"""A whole Ray node lost mid-run, on a two-node cluster of each test's own (the session's
cluster, shared by the other tests, keeps both its nodes): every process of the node
(raylet, agents, workers) killed at once, whose closed sockets tell Ray at once; or
frozen, as a machine that lost power or its network, which closes nothing."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import result_text, write_scenario
from cluster_helpers import (
    RayTestCluster,
    cluster_env,
    descendants,
    freeze_node,
    kill_all,
    kill_node,
    start_cluster,
)

from indigo_loadtest.engine.ray_pool import NO_ANSWER_LIMIT
from indigo_loadtest.scenario.errors import ExitCode

PLANNED = 14.0  # seconds of test: longer than the kill offset plus the detection bound
KILL_AT = 3.0  # seconds after both actors have loaded the scenario

# Each actor names its requests after its process id: the run record then shows each
# shard's own count, the dead one's included.
NAMED = '''"""Two shards loop; each writes down its process id and names its requests by it."""
import os
from pathlib import Path

from indigo_loadtest import env, sleep

options = {"vus": 2, "duration": "%(planned)gs"}
Path(env["PIDS_DIR"], str(os.getpid())).touch()


async def default(vu):
    await vu.http.get(f"{env['BASE']}/v1/models", name=f"shard {os.getpid()}")
    await sleep(0.05)
'''


@pytest.fixture
def own_cluster() -> Iterator[RayTestCluster]:
    yield from start_cluster()


class Lines:
    """A stream's lines, each with the monotonic time it arrived at."""

    def __init__(self, stream: object) -> None:
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append((time.monotonic(), line))

    def text(self) -> str:
        self._thread.join(timeout=5)
        return "".join(line for _, line in self.lines)

    def first(self, pattern: str) -> float | None:
        return next((t for t, line in self.lines if re.search(pattern, line)), None)


def actor_pids(folder: Path, count: int, err: Lines, limit: float = 40) -> set[int]:
    deadline = time.monotonic() + limit
    while len(list(folder.iterdir())) < count:
        assert time.monotonic() < deadline, f"the actors did not load the scenario: {err.lines}"
        time.sleep(0.1)
    return {int(p.name) for p in folder.iterdir()}


@pytest.mark.parametrize("loss", ["killed", "frozen"])
def test_a_lost_node_ends_the_run_with_worker_died_its_actor_named_and_files_written(
    workdir: Path, own_cluster: RayTestCluster, loss: str
) -> None:
    pids_dir = workdir / "pids"
    pids_dir.mkdir()
    export = workdir / "summary.json"
    write_scenario(workdir, "named", NAMED % {"planned": PLANNED})
    proc = subprocess.Popen(
        own_cluster.argv("run", "named", "--ray", own_cluster.address, "--workers", "2",
                         "--env", f"PIDS_DIR={pids_dir}", "--summary-export", str(export),
                         "--no-color"),
        cwd=workdir, env=cluster_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    err = Lines(proc.stderr)
    lost: set[int] = set()
    try:
        # The driver (this CLI process) and both actors import the scenario.
        actors = actor_pids(pids_dir, 3, err) - {proc.pid}
        second = own_cluster.node_pids[1]
        victims = actors & descendants(second)
        assert len(victims) == 1, (actors, second)  # one actor per node (SPREAD)
        victim = victims.pop()
        time.sleep(KILL_AT)  # past the start and the actors' first snapshots
        lost = (kill_node if loss == "killed" else freeze_node)(second)
        killed = time.monotonic()
        out = proc.stdout.read()  # type: ignore[union-attr]
        proc.wait(timeout=PLANNED + 90)  # Ray's own detection: about a minute
        ended = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_all(lost)
    stderr = err.text()
    assert proc.returncode == ExitCode.WORKER_DIED, stderr
    named = (rf"Ray actor [01] of 2 \(pid {victim} on node [\d.]+ \w+\) died "
             r"\((\w+Error|node lost|no answer)[^)]*\).*its share of the test was not run")
    assert re.search(r"(?m)^error: " + named, stderr), stderr
    assert re.search(r"(?m)^  degraded: " + named, out), out
    assert "Traceback" not in stderr
    # Found within the stated bound, and the run did not wait on the dead node past
    # its planned end.
    found = err.first(r"^warning: Ray actor .* died")
    assert found is not None, stderr
    detection = found - killed
    print(f"node loss detected {detection:.1f}s after the kill; run ended "
          f"{ended - killed:.1f}s after it")
    # At most the silence limit, plus one snapshot interval (1 s) and scheduling slack.
    assert detection < NO_ANSWER_LIMIT + 3, stderr
    assert ended - killed < PLANNED + 3, stderr
    # Every file written: the survivor's counts and the dead actor's last snapshot.
    assert json.loads(export.read_text())["metrics"]["http_reqs"]["count"] > 0
    record = json.loads(result_text(workdir / "summary.timeseries.json.gz"))
    by_shard = {e["name"]: e["count"] for e in record["endpoints"]}
    assert set(by_shard) == {f"shard {pid}" for pid in actors}, by_shard
    assert all(count > 0 for count in by_shard.values()), by_shard
    assert record["verdict"]["exit_code"] == ExitCode.WORKER_DIED
    assert (workdir / "summary.html").is_file()
