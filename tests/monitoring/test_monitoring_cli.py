"""`indigo-loadtest monitoring up|down` and the `run --monitor` helpers."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from prom_helpers import PrometheusAPI, free_port

from indigo_loadtest.monitoring.stack import (
    dashboard_url,
    ensure_prometheus,
    find_prometheus_binary,
    main,
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
