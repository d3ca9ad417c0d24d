"""A real Ray cluster on 127.0.0.1 (see conftest.py's `ray_cluster`), in a network
namespace of its own whose only interface is loopback: Ray binds its gRPC servers
(GCS, raylets, workers) on every interface, and its Ray Client server on the address it
takes for the machine's (`--node-ip-address=127.0.0.1` is turned into it by
`resolve_ip_for_localhost`); no setting of Ray's changes either. In the namespace,
all of them are reachable from this machine's loopback only, and none from outside. The
runs that join the cluster enter the same namespace (`RayTestCluster.argv`), and with
them the embedded simulator they start."""

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

from cli_helpers import clean_env, cli_argv
from http_servers import free_port
from listening import namespace

RAY = str(Path(sys.executable).with_name("ray"))
START_LIMIT = 90.0  # seconds for both nodes to join (ray start is slow on a busy machine)
NODE_NAMES = ("second", "third")  # the resource each node after the head has
OBJECT_STORE = "100000000"  # bytes: the runs exchange only small snapshots


@dataclass
class RayTestCluster:
    address: str  # host:port of the head's GCS
    temp_dir: Path  # every node's session files and logs
    client_address: str = ""  # ray://host:port of the head's Ray Client server
    # Each node's `ray start --block` process (head first): its raylet, agents and
    # workers are its descendants (the workers in process groups of their own).
    node_pids: tuple[int, ...] = ()
    # A process in the cluster's network namespace: it holds the namespace.
    netns_pid: int = 0

    @property
    def netns(self) -> tuple[str, ...]:
        """The argv prefix that runs a command in the cluster's network namespace."""
        return enter(self.netns_pid)

    def argv(self, *args: str) -> list[str]:
        """The CLI's command line, run inside the cluster's network namespace."""
        return [*self.netns, *cli_argv(*args)]

    def run_cli(self, *args: str, cwd: Path, env: dict[str, str] | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), cwd=cwd, env=env or cluster_env(),
                              text=True, capture_output=True, timeout=timeout)


def cluster_env(**extra: str) -> dict[str, str]:
    """The environment of the nodes and of the runs that join them: no cluster of the
    developer's (RAY_ADDRESS), and no token authentication (a private cluster of this
    machine; a token left in ~/.ray by another Ray would otherwise switch it on for the
    nodes and not for every client)."""
    env = clean_env(RAY_AUTH_MODE="disabled", **extra)
    if "RAY_ADDRESS" not in extra:
        env.pop("RAY_ADDRESS", None)
    return env


def enter(netns_pid: int) -> tuple[str, ...]:
    return ("nsenter", f"--net=/proc/{netns_pid}/ns/net", "--")


@contextlib.contextmanager
def loopback_namespace() -> Iterator[int]:
    """A new network namespace with only the loopback interface, up; yields the id of
    the process that holds it (`enter` runs a command in it). The holder (`cat`) reads
    its stdin from this process: it ends with this process, however that ends, and with
    it the namespace once the processes that entered it have ended."""
    holder = subprocess.Popen(
        ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && echo up && exec cat"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "up", (
            "no network namespace (unshare --net needs root or CAP_SYS_ADMIN)")
        yield holder.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=5)


def _node(args: list[str], env: dict[str, str], netns: tuple[str, ...], cpus: int = 1,
          ) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*netns, RAY, "start", "--block", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}",
         f"--object-store-memory={OBJECT_STORE}", "--disable-usage-stats",
         f"--dashboard-agent-listen-port={free_port()}", *args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


# One process waits for the nodes (a Ray client takes seconds to import and connect).
_WAIT_NODES = """
import sys, time, ray
address, count, deadline = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
while True:
    try:
        ray.init(address=address, logging_level="ERROR")
        break
    except Exception:
        if time.time() > deadline:
            raise
        time.sleep(0.5)
while sum(node["Alive"] for node in ray.nodes()) < count and time.time() < deadline:
    time.sleep(0.3)
print(sum(node["Alive"] for node in ray.nodes()))
"""


def _wait_nodes(address: str, count: int, env: dict[str, str], netns: tuple[str, ...],
                deadline: float) -> None:
    done = subprocess.run([*netns, sys.executable, "-c", _WAIT_NODES, address, str(count),
                           str(deadline)], env=env, capture_output=True, text=True,
                          timeout=max(1.0, deadline - time.time()) + 30)
    alive = done.stdout.strip().splitlines()[-1:] if done.returncode == 0 else []
    assert alive == [str(count)], f"{count} Ray node(s) did not start: {done.stderr[-2000:]}"


def _wait_sockets(temp_dir: Path, nodes: int, deadline: float) -> None:
    """Each of the `nodes` started has made its unix sockets. A node names its sockets
    after those it finds in the session directory (plasma_store, plasma_store.1...):
    two nodes started together took the same name, and one failed to bind it."""
    sockets = temp_dir / "session_latest" / "sockets"
    while not all(len(list(sockets.glob(f"{kind}*"))) >= nodes
                  for kind in ("plasma_store", "raylet")):
        assert time.time() < deadline, f"{nodes} Ray node(s) made no sockets"
        time.sleep(0.1)


def in_namespace(netns_pid: int) -> set[int]:
    """Every process in `netns_pid`'s network namespace (from /proc)."""
    wanted, found = namespace(netns_pid), set()
    for link in Path("/proc").glob("[0-9]*/ns/net"):
        with contextlib.suppress(OSError):
            if os.stat(link).st_ino == wanted:
                found.add(int(link.parent.parent.name))
    return found


def _end(nodes: list[subprocess.Popen[bytes]], netns_pid: int) -> None:
    """Every process of the namespace stopped, then killed (SIGKILL; none is left to
    notice the others go, none can start another): the nodes, whatever they started in
    groups of their own or outside their tree, and any run a test left there. A test
    cluster has nothing to save: no graceful stop (it took 7 s a cluster)."""
    stopped: set[int] = set()
    while new := in_namespace(netns_pid) - stopped - {os.getpid()}:
        for each in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGSTOP)
        stopped |= new
    kill_all(stopped)
    for node in nodes:
        node.wait(timeout=10)


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


def start_cluster(env: dict[str, str] | None = None, nodes: int = 2, head_cpus: int = 1,
                  ) -> Iterator[RayTestCluster]:
    """A head node of `head_cpus` CPUs and `nodes - 1` more of one CPU each (resources
    `second_node`, `third_node`), with the environment `env` (default: `cluster_env()`),
    in a loopback-only namespace."""
    # Short: Ray's unix socket paths under it must stay under 108 characters.
    temp_dir = Path(tempfile.mkdtemp(prefix="ilt-ray-", dir="/tmp"))
    env = env or cluster_env()
    with loopback_namespace() as netns_pid:
        netns = enter(netns_pid)
        # Ports free here are free in the new namespace too (it has none in use).
        port, client_port = free_port(), free_port()
        address = f"127.0.0.1:{port}"
        started = [_node(["--head", f"--port={port}", "--include-dashboard=false",
                          f"--ray-client-server-port={client_port}",
                          f"--temp-dir={temp_dir}", '--resources={"head_node": 1}'],
                         env, netns, head_cpus)]
        try:
            deadline = time.time() + START_LIMIT
            for name in NODE_NAMES[:nodes - 1]:
                # The nodes before it have made their sockets (the head's: its GCS is up).
                _wait_sockets(temp_dir, len(started), deadline)
                started.append(_node([f"--address={address}",
                                      f'--resources={{"{name}_node": 1}}'], env, netns))
            _wait_nodes(address, nodes, env, netns, deadline)
            yield RayTestCluster(address, temp_dir, f"ray://127.0.0.1:{client_port}",
                                 tuple(node.pid for node in started), netns_pid)
        finally:
            _end(started, netns_pid)
            shutil.rmtree(temp_dir, ignore_errors=True)
