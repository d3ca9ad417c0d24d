"""A real two-node Ray cluster on 127.0.0.1 (see conftest.py's `ray_cluster`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "http"))

from cli_helpers import clean_env
from http_servers import free_port

RAY = str(Path(sys.executable).with_name("ray"))
START_LIMIT = 90.0  # seconds for both nodes to join (ray start is slow on a busy machine)
OBJECT_STORE = "100000000"  # bytes: the runs exchange only small snapshots


@dataclass
class RayTestCluster:
    address: str  # host:port of the head's GCS
    temp_dir: Path  # every node's session files and logs
    client_address: str = ""  # ray://host:port of the head's Ray Client server
    # Each node's `ray start --block` process (head first): its raylet, agents and
    # workers are its descendants (the workers in process groups of their own).
    node_pids: tuple[int, ...] = ()


def cluster_env(**extra: str) -> dict[str, str]:
    """The environment of the nodes and of the runs that join them: no cluster of the
    developer's (RAY_ADDRESS), and no token authentication (a private cluster of this
    machine; a token left in ~/.ray by another Ray would otherwise switch it on for the
    nodes and not for every client)."""
    env = clean_env(RAY_AUTH_MODE="disabled", **extra)
    if "RAY_ADDRESS" not in extra:
        env.pop("RAY_ADDRESS", None)
    return env


def _node(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [RAY, "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1",
         f"--object-store-memory={OBJECT_STORE}", "--disable-usage-stats",
         f"--dashboard-agent-listen-port={free_port()}", *args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _alive_nodes(address: str, env: dict[str, str]) -> int:
    probe = (f"import ray; ray.init(address={address!r}, logging_level='ERROR'); "
             "print(sum(n['Alive'] for n in ray.nodes()))")
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, timeout=60)
    return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else 0


def _end(node: subprocess.Popen[bytes]) -> None:
    """The node's process group: SIGTERM (`ray start --block` stops what it started),
    then SIGKILL for what is left (Ray's GCS server may outlive the SIGTERM)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.wait(timeout=5)
    time.sleep(1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGKILL)
    node.wait(timeout=5)


def descendants(pid: int) -> set[int]:
    """Every live process under `pid` (from /proc), `pid` included."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The parent is the 2nd field after the command, which may hold spaces.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo.extend(children.get(current, []))
    return found


def freeze_node(pid: int) -> set[int]:
    """A node gone silent, as a machine that lost power or its network: every process
    of it (the node's `ray start` process `pid` and all below it) stopped (SIGSTOP),
    its connections left open and unanswered. Returns their ids."""
    frozen: set[int] = set()
    while new := descendants(pid) - frozen:  # none can start another once stopped
        for each in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGSTOP)
        frozen |= new
    return frozen


def kill_all(pids: set[int]) -> None:
    for each in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(each, signal.SIGKILL)


def kill_node(pid: int) -> set[int]:
    """A node's processes all ended at once (SIGKILL; frozen first, so none can notice
    the others go): their sockets close, as when a node's Ray is killed."""
    frozen = freeze_node(pid)
    kill_all(frozen)
    return frozen


def start_cluster(env: dict[str, str] | None = None, nodes: int = 2,
                  ) -> Iterator[RayTestCluster]:
    """Two nodes (or one), with the environment `env` (default: `cluster_env()`)."""
    # Short: Ray's unix socket paths under it must stay under 108 characters.
    temp_dir = Path(tempfile.mkdtemp(prefix="ilt-ray-", dir="/tmp"))
    env = env or cluster_env()
    port = free_port()
    address = f"127.0.0.1:{port}"
    client_port = free_port()  # a port of its own: Ray's default 10001 may be taken
    started = [_node(["--head", f"--port={port}", "--include-dashboard=false",
                      f"--ray-client-server-port={client_port}", f"--temp-dir={temp_dir}",
                      '--resources={"head_node": 1}'], env)]
    try:
        deadline = time.monotonic() + START_LIMIT
        while _alive_nodes(address, env) < 1:
            assert time.monotonic() < deadline, "the Ray head node did not start"
            time.sleep(0.5)
        if nodes > 1:
            started.append(_node([f"--address={address}", '--resources={"second_node": 1}'],
                                 env))
        while _alive_nodes(address, env) < nodes:
            assert time.monotonic() < deadline, "the second Ray node did not join"
            time.sleep(0.5)
        yield RayTestCluster(address, temp_dir, f"ray://127.0.0.1:{client_port}",
                             tuple(node.pid for node in started))
    finally:
        for node in reversed(started):
            _end(node)
        shutil.rmtree(temp_dir, ignore_errors=True)
