"""The test clusters listen on loopback only: every TCP socket any process of the nodes
listens on (GCS, raylets, agents, workers, the Ray Client server) is on 127.0.0.1/::1,
or on every interface of the cluster's own network namespace, whose only interface is
loopback (cluster_helpers.py: Ray binds its gRPC servers on every interface, whatever
it is told). A Ray Client server once stayed behind on the machine's own address."""

from __future__ import annotations

from cluster_helpers import RayTestCluster, descendants
from listening import command, is_loopback, listening, not_loopback_only

DASHBOARD_PORT = 8265  # Ray's default: the test nodes start no dashboard


def cluster_processes(cluster: RayTestCluster) -> set[int]:
    return set().union(*(descendants(pid) for pid in cluster.node_pids))


def test_every_server_of_the_cluster_listens_on_loopback_only(
    ray_cluster: RayTestCluster,
) -> None:
    pids = cluster_processes(ray_cluster)
    assert not not_loopback_only(pids, ray_cluster.netns_pid)
    sockets = {socket for each in listening(pids).values() for socket in each}
    ports = {port for _, port in sockets}
    # The check saw the servers: the GCS, and the Ray Client server, bound to loopback
    # (by its own address: it was on the machine's interface address).
    assert int(ray_cluster.address.rsplit(":", 1)[1]) in ports, sockets
    client_port = int(ray_cluster.client_address.rsplit(":", 1)[1])
    assert client_port in ports, sockets
    assert all(is_loopback(address) for address, port in sockets if port == client_port)
    servers = [command(pid) for pid in pids if "ray.util.client.server" in command(pid)]
    assert servers and all("--host=127.0.0.1" in each for each in servers), servers
    assert DASHBOARD_PORT not in ports, sockets
