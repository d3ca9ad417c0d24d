"""Conformance against a real nginx, and the client's behaviour at its limits
(dial timeout, large bodies both ways, a slow stream reader)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from http_servers import free_port, run, with_client

from indigo_loadtest.http import Client

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log stderr error;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    keepalive_requests 3;
    gzip on;
    gzip_types text/plain;
    gzip_min_length 10;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
        default_type text/plain;
        location = /hello {{ return 200 "hello from nginx"; }}
    }}
}}
"""

BIG = b"".join(b"line %06d of a static file served by nginx\n" % i for i in range(6000))


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                      else None)
    if found is None:
        pytest.fail("nginx not found: install it (apt-get install -y nginx)")
    return found


@pytest.fixture(scope="module")
def nginx_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("nginx")
    (root / "www").mkdir()
    (root / "tmp").mkdir()
    (root / "www" / "big.txt").write_bytes(BIG)
    port = free_port()
    (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, port=port))
    proc = subprocess.Popen([nginx_binary(), "-p", str(root), "-c", str(root / "nginx.conf")],
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"nginx did not start: {err[-500:]}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_nginx_keepalive_limit_closes_every_third_connection(nginx_url: str) -> None:
    async def go(c: Client) -> list[Any]:
        return [await c.get(f"{nginx_url}/hello") for _ in range(7)]

    resps = run(with_client(go))
    assert all(r.status == 200 and r.text == "hello from nginx" for r in resps)
    new_connections = [i for i, r in enumerate(resps) if r.timings.connecting > 0]
    assert new_connections == [0, 3, 6]  # nginx sends Connection: close on every 3rd
    assert resps[2].headers["connection"] == "close"


def test_nginx_gzip_chunked_static_file_and_head(nginx_url: str) -> None:
    async def go(c: Client) -> list[Any]:
        gz = await c.get(f"{nginx_url}/big.txt", headers={"Accept-Encoding": "gzip"})
        head = await c.head(f"{nginx_url}/big.txt")
        plain = await c.get(f"{nginx_url}/big.txt")
        return [gz, head, plain]

    gz, head, plain = run(with_client(go))
    assert gz.headers["content-encoding"] == "gzip"
    assert gz.headers["transfer-encoding"] == "chunked"
    assert gz.body == BIG
    assert head.status == 200 and head.body == b""
    assert int(head.headers["content-length"]) == len(BIG)
    assert plain.body == BIG and plain.timings.connecting == 0  # same connection after HEAD


def test_dial_timeout() -> None:
    # A listener with a full backlog that never accepts: SYNs go unanswered.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.05)
        resp = run(with_client(lambda c: c.get(f"http://127.0.0.1:{port}/"),
                               connect_timeout=0.3))
    finally:
        for s in fillers:
            s.close()
        listener.close()
    assert (resp.status, resp.error_code, resp.error) == (0, 1211, "dial: i/o timeout")
    assert 250 < resp.timings.connecting < 3000


def test_large_request_and_response_bodies(server: Any) -> None:
    payload = os.urandom(3 << 20)

    async def go(c: Client) -> Any:
        return await c.put(f"{server.url}/echo", data=payload.hex())

    resp = run(with_client(go))
    assert resp.status == 200 and resp.json()["body"] == payload.hex()
    assert len(resp.body) > 6 << 20


def test_slow_stream_reader_gets_every_byte(raw_server: Any) -> None:
    size = 4 << 20
    block = bytes(range(256)) * 256  # 64 KiB

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()

    url = raw_server(big)

    async def go(c: Client) -> tuple[int, bool, Any]:
        resp = await c.get(f"{url}/", stream=True)
        got = 0
        paused_seen = False
        async for data, _ in resp.iter_chunks():
            got += len(data)
            conn = resp._ex.conn
            paused_seen = paused_seen or bool(conn and conn.paused)
            if got < size // 2:
                await asyncio.sleep(0.002)  # a slow reader: the socket must be paused
        return got, paused_seen, resp

    got, paused_seen, resp = run(with_client(go))
    assert got == size and resp.error == "" and paused_seen


def test_pool_keeps_one_idle_connection_per_concurrent_use(server: Any) -> None:
    async def go(c: Client) -> tuple[int, int]:
        await asyncio.gather(*(c.get(f"{server.url}/hello") for _ in range(4)))
        idle = sum(len(v) for v in c._idle.values())
        await c.close()
        await asyncio.sleep(0.05)
        return idle, len(c._conns)

    assert run(with_client(go)) == (4, 0)


def test_requests_after_close_open_new_connections(server: Any) -> None:
    async def go(c: Client) -> Any:
        await c.get(f"{server.url}/hello")
        await c.close()
        return await c.get(f"{server.url}/hello")

    resp = run(with_client(go))
    assert resp.status == 200 and resp.timings.connecting > 0


def test_a_port_nothing_listens_on_in_ipv6() -> None:
    port = free_port()
    resp = run(with_client(lambda c: c.get(f"http://[::1]:{port}/")))
    assert resp.status == 0 and resp.error_code == 1212


def test_host_names_resolve_and_every_address_is_tried(server: Any) -> None:
    # "localhost" comes from /etc/hosts (no DNS traffic); it may list ::1 first, where
    # nothing listens, and then 127.0.0.1, where the server is.
    url = f"http://localhost:{server.port}/echo"

    async def go(c: Client) -> list[Any]:
        return [await c.get(url), await c.get(url)]

    first, second = run(with_client(go))
    assert first.status == 200 and second.timings.connecting == 0
    assert ["Host", f"localhost:{server.port}"] in first.json()["headers"]


def test_request_path_is_sent_as_given(server: Any) -> None:
    resp = run(with_client(lambda c: c.get(f"{server.url}/echo?q=a%20b&x=%C3%A9")))
    assert resp.json()["query"] == [["q", "a b"], ["x", "é"]]
