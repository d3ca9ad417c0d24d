"""The floor of the timing-overhead benchmark: a blocking socket, no framework.

    python bare_socket_client.py PORT SECONDS

Sends GETs back to back on one kept-alive connection to the timing server and prints
the median of (measured duration − the server's reported time) in microseconds: the
loopback round trip and wake-ups that every client pays on this machine.
"""

from __future__ import annotations

import re
import socket
import statistics
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
SERVER_TIME = re.compile(rb"X-Server-Time-Us: ([\d.]+)")


def main(port: int, seconds: float) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    diffs = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        sock.sendall(REQUEST)
        data = b""
        while not data.endswith(b"ok"):  # the response body is "ok"
            data += sock.recv(4096)
        t1 = time.perf_counter()
        m = SERVER_TIME.search(data)
        diffs.append((t1 - t0) * 1e6 - float(m.group(1)) if m else float("nan"))
    sock.close()
    print(f"{statistics.median(diffs):.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
