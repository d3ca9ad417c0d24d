"""Shards lost mid-run, on a three-node cluster of the test's own (the session's cluster,
shared by the other tests, keeps both its nodes): four actors, two on the head (two
CPUs), one on each other node. At the same moment: one actor of the head killed alone
(its node goes on); every process of the second node (raylet, agents, workers) killed
at once, whose closed sockets tell Ray at once; every process of the third frozen, as a
machine that lost power or its network, which closes nothing. One run sees all three,
and its last actor goes on to the planned end."""

from __future__ import annotations

import json
import os
import re
import signal
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
NAMED = '''"""Four shards loop; each writes down its process id and names its requests by it."""
import os
from pathlib import Path

from indigo_loadtest import env, sleep

options = {"vus": 4, "duration": "%(planned)gs"}
Path(env["PIDS_DIR"], str(os.getpid())).touch()


async def default(vu):
    await vu.http.get(f"{env['BASE']}/v1/models", name=f"shard {os.getpid()}")
    await sleep(0.05)
'''


@pytest.fixture
def own_cluster() -> Iterator[RayTestCluster]:
    yield from start_cluster(nodes=3, head_cpus=2)


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


# How each loss is named: the actor killed alone, by Ray's error; a node killed, by a
# Ray error or its node lost; a node frozen, so too or by no answer for the silence limit.
REASONS = {"actor": r"\w+Error: .*", "killed": r"(\w+Error|node lost|no answer)[^)]*",
           "frozen": r"(\w+Error|node lost|no answer)[^)]*"}


def died(victim: int, loss: str) -> str:
    """The line that names `victim`'s actor dead."""
    return (rf"Ray actor [0-3] of 4 \(pid {victim} on node [\d.]+ \w+\) died "
            rf"\({REASONS[loss]}\).*its share of the test was not run from then on")


def test_lost_nodes_end_the_run_with_worker_died_their_actors_named_and_files_written(
    workdir: Path, own_cluster: RayTestCluster
) -> None:
    pids_dir = workdir / "pids"
    pids_dir.mkdir()
    export = workdir / "summary.json"
    write_scenario(workdir, "named", NAMED % {"planned": PLANNED})
    # RAY_ADDRESS names the cluster for a bare --ray.
    proc = subprocess.Popen(
        own_cluster.argv("run", "named", "--ray", "--workers", "4",
                         "--env", f"PIDS_DIR={pids_dir}", "--summary-export", str(export),
                         "--no-color"),
        cwd=workdir, env=cluster_env(RAY_ADDRESS=own_cluster.address), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    err = Lines(proc.stderr)
    lost: set[int] = set()
    try:
        # The driver (this CLI process) and the four actors import the scenario.
        actors = actor_pids(pids_dir, 5, err) - {proc.pid}
        head, second, third = own_cluster.node_pids
        on = {node: actors & descendants(node) for node in own_cluster.node_pids}
        # One actor per CPU: two on the head, one on each other node.
        assert [len(on[node]) for node in (head, second, third)] == [2, 1, 1], (actors, on)
        victims = {"actor": min(on[head]), "killed": min(on[second]),
                   "frozen": min(on[third])}
        time.sleep(KILL_AT)  # past the start and the actors' first snapshots
        killed = time.monotonic()
        os.kill(victims["actor"], signal.SIGKILL)
        lost = kill_node(second) | freeze_node(third)
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
    assert "Traceback" not in stderr
    for loss, victim in victims.items():
        assert re.search(r"(?m)^error: " + died(victim, loss), stderr), (loss, stderr)
        assert re.search(r"(?m)^  degraded: " + died(victim, loss), out), (loss, out)
        # Found within the stated bound: at most the silence limit, plus one snapshot
        # interval (1 s) and scheduling slack.
        found = err.first(rf"^warning: Ray actor .*\(pid {victim} .* died")
        assert found is not None, (loss, stderr)
        print(f"{loss}: detected {found - killed:.1f}s after the losses")
        assert found - killed < NO_ANSWER_LIMIT + 3, (loss, stderr)
    # The run did not wait on the lost nodes past its planned end.
    print(f"run ended {ended - killed:.1f}s after the loss")
    assert ended - killed < PLANNED + 3, stderr
    # The survivor was told to go on: it ran to the planned end.
    assert "the other workers go on to the planned end" in stderr, stderr
    # Every file written: the survivor's counts and each lost actor's last snapshot.
    assert json.loads(export.read_text())["metrics"]["http_reqs"]["count"] > 0
    record = json.loads(result_text(workdir / "summary.timeseries.json.gz"))
    by_shard = {e["name"]: e["count"] for e in record["endpoints"]}
    assert set(by_shard) == {f"shard {pid}" for pid in actors}, by_shard
    assert all(count > 0 for count in by_shard.values()), by_shard
    assert record["verdict"]["exit_code"] == ExitCode.WORKER_DIED
    assert (workdir / "summary.html").is_file()
