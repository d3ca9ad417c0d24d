"""`indigo-loadtest monitoring up|down` and the `run --monitor` helpers."""

from __future__ import annotations

import contextlib
import http.server
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prom_helpers import PrometheusAPI, free_port

from indigo_loadtest.monitoring.stack import (
    MonitoringError,
    dashboard_url,
    ensure_prometheus,
    find_prometheus_binary,
    main,
    start_native_prometheus,
    stop_native_prometheus,
)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of this process counts as gone
        return os.waitpid(pid, os.WNOHANG)[0] != pid
    except ChildProcessError:
        return True


def test_native_up_and_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port, data = free_port(), tmp_path / "prom"
    args = ["--native", "--port", str(port), "--data-dir", str(data)]
    try:
        assert main(["up", *args]) == 0
        out = capsys.readouterr().out
        url = f"http://127.0.0.1:{port}"
        assert f"Prometheus running at {url}" in out
        assert f"{url}/api/v1/write" in out and "Grafana" in out
        pid = int(out.split("(pid ")[1].split(",")[0])
        assert pid_alive(pid)
        # The remote-write receiver is on: an empty WriteRequest is accepted.
        assert ensure_prometheus(f"{url}/api/v1/write", env={}) is None
        assert (data / "data").is_dir()

        hint = out.split("stop it with: ")[1].splitlines()[0]
        assert hint == f"indigo-loadtest monitoring down --native --data-dir {data}"
        assert main(["up", *args]) == 0  # idempotent
        assert "already running" in capsys.readouterr().out

        assert main(shlex.split(hint)[2:]) == 0  # the printed hint, verbatim
        assert f"stopped Prometheus at {url} (pid {pid})" in capsys.readouterr().out
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(pid)
        message = ensure_prometheus(f"{url}/api/v1/write", env={})
        assert message and "does not answer" in message and "monitoring up" in message

        assert main(["down", *args]) == 0
        assert "no native Prometheus running" in capsys.readouterr().out
    finally:
        stop_native_prometheus(data)


def test_native_up_on_a_busy_port(prometheus: PrometheusAPI, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    port = prometheus.server.port
    rc = main(["up", "--native", "--port", str(port), "--data-dir", str(tmp_path)])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: port {port} on 127.0.0.1 is in use; choose another with --port"


def test_ensure_prometheus_without_the_receiver(tmp_path: Path) -> None:
    """A real Prometheus started without --web.enable-remote-write-receiver."""
    binary = find_prometheus_binary()
    assert binary, "apt-get install -y prometheus"
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/write"
        deadline = time.monotonic() + 20
        message = ensure_prometheus(url, env={})
        while message and "does not answer" in message and time.monotonic() < deadline:
            time.sleep(0.1)
            message = ensure_prometheus(url, env={})
        assert message and "no remote-write receiver" in message
        assert "--web.enable-remote-write-receiver" in message
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_ensure_prometheus_uses_the_configuration(prometheus: PrometheusAPI) -> None:
    env = {"K6_PROMETHEUS_RW_SERVER_URL": prometheus.write_url}
    assert ensure_prometheus(env=env) is None
    bad = ensure_prometheus(env={"K6_PROMETHEUS_RW_PUSH_INTERVAL": "often"})
    assert bad and "K6_PROMETHEUS_RW_PUSH_INTERVAL" in bad


def test_no_docker_and_no_prometheus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither docker nor prometheus on it
    monkeypatch.delenv("INDIGO_PROMETHEUS_BIN", raising=False)
    assert main(["up"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Docker is not installed and no prometheus binary")
    assert "\n" not in err
    assert main(["up", "--native", "--data-dir", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no prometheus binary on PATH") and "\n" not in err


def test_no_docker_points_to_native(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    binary = find_prometheus_binary()
    assert binary
    (tmp_path / "prometheus").symlink_to(binary)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("INDIGO_PROMETHEUS_BIN", raising=False)
    assert main(["down"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"error: Docker is not installed; use `indigo-loadtest monitoring up "
                   f"--native` ({tmp_path / 'prometheus'})")


def test_usage_errors_return_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sideways"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_dashboard_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INDIGO_GRAFANA_URL", raising=False)
    url = dashboard_url("test-responses-20250101-120000")
    assert url.startswith("http://localhost:3000/d/indigo-loadtest/")
    assert "var-testid=test-responses-20250101-120000" in url
    url = dashboard_url("a b", env={"INDIGO_GRAFANA_URL": "http://grafana.local:3001/"})
    assert url.startswith("http://grafana.local:3001/d/") and "var-testid=a%20b" in url


@contextlib.contextmanager
def starting_prometheus(ready_after: int | None) -> Iterator[str]:
    """A receiver on 127.0.0.1 that answers 503, as Prometheus does until it is ready, to
    its first `ready_after` writes (None: to every write), then 204; yields its URL."""
    writes = [0]

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            writes[0] += 1
            starting = ready_after is None or writes[0] <= ready_after
            self.send_response(503 if starting else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_run_monitor_waits_for_a_prometheus_that_is_starting() -> None:
    with starting_prometheus(3) as url:
        assert ensure_prometheus(f"{url}/api/v1/write", env={}) is None


def test_run_monitor_says_so_when_prometheus_never_gets_ready() -> None:
    with starting_prometheus(None) as url:
        started = time.monotonic()
        message = ensure_prometheus(f"{url}/api/v1/write", env={}, ready_timeout=1.0)
        assert time.monotonic() - started < 10
    assert message == (f"Prometheus at {url}/api/v1/write is not ready: it answered HTTP 503 "
                       "(starting) for 1 s; check its log, or run again once it is ready")


NEVER_READY = """\
import http.server, sys
if "--help" in sys.argv:
    print("--web.enable-remote-write-receiver"); sys.exit(0)
host, port = next(a for a in sys.argv if a.startswith("--web.listen-address="))\\
    .split("=", 1)[1].rsplit(":", 1)
class NotReady(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(503); self.end_headers()
    def log_message(self, *args):
        print("still replaying the write-ahead log", flush=True)
http.server.HTTPServer((host, int(port)), NotReady).serve_forever()
"""


def test_native_up_stops_a_prometheus_that_never_gets_ready(tmp_path: Path) -> None:
    binary = tmp_path / "prometheus"
    binary.write_text(f"#!{sys.executable}\n{NEVER_READY}")
    binary.chmod(0o755)
    port, data = free_port(), tmp_path / "prom"
    with pytest.raises(MonitoringError) as caught:
        start_native_prometheus(port=port, data_dir=data, binary=str(binary), ready_timeout=2)
    message = str(caught.value)
    assert message.startswith(f"Prometheus was not ready within 2 s (http://127.0.0.1:{port}"
                              "/-/ready never answered 200), so it was stopped")
    assert "still replaying the write-ahead log" in message
    assert not (data / "prometheus.json").exists()
    with pytest.raises(ConnectionRefusedError):  # it was stopped: nothing listens
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
