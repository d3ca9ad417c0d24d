"""`indigo-loadtest monitoring up|down [--native]`: the live-metrics stack.

- With Docker: `docker compose -f monitoring/docker-compose.yml up -d` / `down`
  (Prometheus with the remote-write receiver + Grafana with the dashboard).
- `--native`: a Prometheus binary from PATH (Debian's `prometheus` package works),
  started in the background with the remote-write receiver, a data folder under
  `.indigo/prometheus` and its pid recorded there; `down --native` stops it.

`ensure_prometheus()` and `dashboard_url()` serve `run --monitor`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import cramjam

from ..outputs.prometheus_rw import PrometheusRWConfigError, RemoteWriteConfig

DEFAULT_PORT = 9090
DEFAULT_HOST = "127.0.0.1"
DEFAULT_DATA_DIR = Path(".indigo") / "prometheus"
DEFAULT_GRAFANA_URL = "http://localhost:3000"
DASHBOARD_UID = "indigo-loadtest"
DATASOURCE_UID = "prometheus"
COMPOSE_FILE = Path("monitoring") / "docker-compose.yml"
DASHBOARD_FILE = Path("monitoring") / "grafana" / "dashboards" / "indigo-loadtest.json"
READY_TIMEOUT = 30.0
# run --monitor: how long a Prometheus that answers HTTP 503 (still starting) is waited for.
STARTING_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_STATE_FILE = "prometheus.json"
_PROMETHEUS_CONFIG = """\
# Written by `indigo-loadtest monitoring up --native`. Load-test metrics arrive by
# remote write (/api/v1/write); Prometheus only scrapes itself.
global:
  scrape_interval: 15s
  evaluation_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["{target}"]
"""


class MonitoringError(Exception):
    """A user-facing problem: printed as one line, exit code 1."""


class AlreadyRunning(MonitoringError):
    def __init__(self, prom: NativePrometheus) -> None:
        super().__init__(f"a native Prometheus is already running at {prom.url} (pid {prom.pid})")
        self.prom = prom


# --- run --monitor helpers -------------------------------------------------------------


def ensure_prometheus(
    url: str | None = None, env: Mapping[str, str] | None = None, timeout: float = 3.0,
    ready_timeout: float = STARTING_TIMEOUT,
) -> str | None:
    """None if the remote-write endpoint accepts writes, else a one-line error message.

    Sends an empty WriteRequest, which proves more than a health check: the
    receiver is enabled and the credentials (K6_PROMETHEUS_RW_USERNAME/...) work.
    A Prometheus still starting answers HTTP 503 (until /-/ready does 200): that is
    waited for, up to `ready_timeout` seconds (`monitoring up` returns before it is ready).
    """
    try:
        cfg = RemoteWriteConfig.from_env(env if env is not None else os.environ, url)
    except PrometheusRWConfigError as e:
        return str(e)
    deadline = time.monotonic() + ready_timeout
    while True:
        status, problem = _probe_remote_write(cfg, timeout)
        if status != 503:
            return problem
        if time.monotonic() >= deadline:
            return (
                f"Prometheus at {cfg.safe_url} is not ready: it answered HTTP 503 (starting) "
                f"for {ready_timeout:g} s; check its log, or run again once it is ready"
            )
        time.sleep(0.25)


def _probe_remote_write(cfg: RemoteWriteConfig, timeout: float) -> tuple[int | None, str | None]:
    """(HTTP status or None, the problem or None) of one empty remote write."""
    req = urllib.request.Request(
        cfg.url, data=bytes(cramjam.snappy.compress_raw(b"")), headers=cfg.request_headers(),
        method="POST",
    )
    where = cfg.safe_url
    try:
        with _opener(cfg.insecure_skip_tls_verify).open(req, timeout=timeout) as r:
            return r.status, None
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return e.code, (
                f"Prometheus at {where} answers but has no remote-write receiver; start it with "
                "--web.enable-remote-write-receiver (`indigo-loadtest monitoring up` does)"
            )
        if e.code in (401, 403):
            return e.code, (
                f"Prometheus at {where} refused the credentials (HTTP {e.code}); check "
                "K6_PROMETHEUS_RW_USERNAME/K6_PROMETHEUS_RW_PASSWORD"
            )
        return e.code, f"Prometheus at {where} answered HTTP {e.code} to a remote write"
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        return None, (
            f"Prometheus does not answer at {where} ({reason}); start it with "
            "`indigo-loadtest monitoring up` (or `monitoring up --native`)"
        )


def _opener(insecure: bool) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if insecure:
        import ssl

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    return urllib.request.build_opener(*handlers)


def grafana_url(env: Mapping[str, str] | None = None) -> str:
    """Where Grafana answers: INDIGO_GRAFANA_URL, else the compose stack's port."""
    env = env if env is not None else os.environ
    return (env.get("INDIGO_GRAFANA_URL") or DEFAULT_GRAFANA_URL).rstrip("/")


def dashboard_url(testid: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The load-test dashboard in Grafana, filtered to one run when `testid` is given."""
    url = f"{grafana_url(env)}/d/{DASHBOARD_UID}/indigo-loadtest?orgId=1&refresh=5s"
    if testid:
        url += f"&var-testid={quote(testid, safe='')}&from=now-15m&to=now"
    return url


# --- native Prometheus -------------------------------------------------------------------


@dataclass
class NativePrometheus:
    pid: int
    host: str
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def remote_write_url(self) -> str:
        return self.url + "/api/v1/write"


def find_prometheus_binary(env: Mapping[str, str] | None = None) -> str | None:
    env = env if env is not None else os.environ
    explicit = env.get("INDIGO_PROMETHEUS_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("prometheus")


def remote_write_flags(binary: str) -> list[str]:
    """The flag that turns the receiver on for this Prometheus version."""
    try:
        out = subprocess.run(
            [binary, "--help"], capture_output=True, text=True, timeout=15, check=False
        )
        help_text = out.stdout + out.stderr
    except (OSError, subprocess.SubprocessError):
        help_text = ""
    if "web.enable-remote-write-receiver" in help_text or not help_text:
        return ["--web.enable-remote-write-receiver"]
    return ["--enable-feature=remote-write-receiver"]  # 2.25 .. 2.32


def _read_state(data_dir: Path) -> NativePrometheus | None:
    try:
        d = json.loads((data_dir / _STATE_FILE).read_text())
        return NativePrometheus(int(d["pid"]), str(d["host"]), int(d["port"]), data_dir)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_our_prometheus(pid: int) -> bool:
    """The pid is alive and still a prometheus process (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (macOS): trust the recorded pid
    return b"prometheus" in cmdline and b"--web.listen-address" in cmdline


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _ready(url: str, timeout: float = 1.0) -> bool:
    try:
        with _opener(False).open(url + "/-/ready", timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_native_prometheus(
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    data_dir: Path = DEFAULT_DATA_DIR,
    binary: str | None = None,
    ready_timeout: float = READY_TIMEOUT,
) -> NativePrometheus:
    """Start Prometheus in the background and wait until it is ready. Raises MonitoringError."""
    _require_process_control()
    binary = binary or find_prometheus_binary()
    if binary is None:
        raise MonitoringError(
            "no prometheus binary on PATH; install Prometheus (e.g. `apt-get install "
            "prometheus`) or set INDIGO_PROMETHEUS_BIN"
        )
    data_dir = Path(data_dir)
    running = _read_state(data_dir)
    if running is not None and _is_our_prometheus(running.pid):
        raise AlreadyRunning(running)
    if not _port_free(host, port):
        raise MonitoringError(f"port {port} on {host} is in use; choose another with --port")
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "prometheus.yml"
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    config.write_text(_PROMETHEUS_CONFIG.format(target=target))
    log_path = data_dir / "prometheus.log"
    cmd = [
        binary,
        f"--config.file={config.resolve()}",
        f"--storage.tsdb.path={(data_dir / 'data').resolve()}",
        f"--web.listen-address={target}",
        *remote_write_flags(binary),
    ]
    with open(log_path, "ab") as log:
        # Its own session: Ctrl-C in this terminal must not stop the server.
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=data_dir, start_new_session=True,
        )
    prom = NativePrometheus(proc.pid, host, port, data_dir)
    deadline = time.monotonic() + ready_timeout
    while not _ready(prom.url):
        if proc.poll() is not None:
            raise MonitoringError(
                f"Prometheus did not start: {_last_log_line(log_path)} (log: {log_path})"
            )
        if time.monotonic() > deadline:
            _terminate(proc.pid)
            raise MonitoringError(
                f"Prometheus was not ready within {ready_timeout:g} s ({prom.url}/-/ready "
                f"never answered 200), so it was stopped; last log line: "
                f"{_last_log_line(log_path)} (log: {log_path})"
            )
        time.sleep(0.1)
    (data_dir / _STATE_FILE).write_text(
        json.dumps({"pid": prom.pid, "host": host, "port": port, "binary": binary})
    )
    return prom


def stop_native_prometheus(data_dir: Path = DEFAULT_DATA_DIR) -> NativePrometheus | None:
    """Stop the recorded native Prometheus; None when none was running."""
    _require_process_control()
    data_dir = Path(data_dir)
    prom = _read_state(data_dir)
    if prom is None:
        return None
    alive = _is_our_prometheus(prom.pid)
    if alive:
        _terminate(prom.pid)
    (data_dir / _STATE_FILE).unlink(missing_ok=True)
    return prom if alive else None


def _require_process_control() -> None:
    """The native server is found, probed and stopped by pid with POSIX signals."""
    from ..platform_support import can_manage_processes

    if not can_manage_processes():
        raise MonitoringError(
            "`--native` needs POSIX process signals (Linux, macOS); on Windows start "
            "Prometheus yourself with --web.enable-remote-write-receiver, or use the "
            "compose stack (without --native)")


def _terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _pid_alive(pid: int) -> bool:
    try:
        # Reap it if it is our child (a test started it in this process).
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _last_log_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1][-300:] if lines else "no output"


# --- docker compose -----------------------------------------------------------------------


def compose_command() -> list[str] | None:
    """`docker compose` (plugin) or `docker-compose`, whichever works."""
    if shutil.which("docker"):
        try:
            r = subprocess.run(["docker", "compose", "version"], capture_output=True,
                               timeout=15, check=False)
            if r.returncode == 0:
                return ["docker", "compose"]
        except (OSError, subprocess.SubprocessError):
            pass
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def docker_engine_running() -> bool:
    try:
        r = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


def find_compose_file(explicit: str | None = None) -> Path:
    candidates = [Path(explicit)] if explicit else [
        Path.cwd() / COMPOSE_FILE,
        Path(__file__).resolve().parents[3] / COMPOSE_FILE,  # a source checkout
    ]
    for c in candidates:
        if c.is_file():
            return c
    raise MonitoringError(f"compose file not found: {candidates[0]}")


def _docker_unavailable_message() -> str:
    binary = find_prometheus_binary()
    if shutil.which("docker"):
        problem = "Docker is installed but its engine or compose plugin is not available"
    else:
        problem = "Docker is not installed"
    if binary:
        return f"{problem}; use `indigo-loadtest monitoring up --native` ({binary})"
    return (
        f"{problem} and no prometheus binary is on PATH; install Docker (Prometheus + "
        "Grafana) or Prometheus (e.g. `apt-get install prometheus`, then use --native)"
    )


def _compose(action: list[str], compose_file: str | None) -> int:
    cmd = compose_command()
    if cmd is None or not docker_engine_running():
        raise MonitoringError(_docker_unavailable_message())
    path = find_compose_file(compose_file)
    return subprocess.run([*cmd, "-f", str(path), *action], check=False).returncode


# --- command line ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="indigo-loadtest monitoring",
        description="Start or stop Prometheus (remote-write receiver) and Grafana for live "
        "load-test metrics.",
    )
    p.add_argument("action", choices=["up", "down"])
    p.add_argument("--native", action="store_true",
                   help="use the prometheus binary on PATH instead of Docker (no Grafana)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"native Prometheus port (default {DEFAULT_PORT})")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"native Prometheus listen address (default {DEFAULT_HOST})")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                   help=f"native Prometheus data folder (default {DEFAULT_DATA_DIR})")
    p.add_argument("--compose-file", help=f"compose file (default {COMPOSE_FILE})")
    return p


def _native_up(args: argparse.Namespace) -> int:
    try:
        prom = start_native_prometheus(host=args.host, port=args.port, data_dir=args.data_dir)
        print(f"Prometheus running at {prom.url} (pid {prom.pid}, data in {prom.data_dir})")
    except AlreadyRunning as e:
        prom = e.prom
        print(f"Prometheus is already running at {prom.url} (pid {prom.pid})")
    print(f"remote write: {prom.remote_write_url}")
    print(f"  indigo-loadtest run SCENARIO --out prometheus-rw={prom.remote_write_url}")
    print(
        f"Grafana: add a Prometheus data source (uid '{DATASOURCE_UID}') with URL {prom.url} "
        f"and import {DASHBOARD_FILE}"
    )
    print(f"stop it with: {native_down_command(prom.data_dir)}")
    return 0


def native_down_command(data_dir: Path) -> str:
    """The command that stops this Prometheus: it is found by the pid file in its data
    folder, so a folder other than the default must be named."""
    command = "indigo-loadtest monitoring down --native"
    if Path(data_dir).resolve() != DEFAULT_DATA_DIR.resolve():
        command += f" --data-dir {shlex.quote(str(data_dir))}"
    return command


def _native_down(args: argparse.Namespace) -> int:
    prom = stop_native_prometheus(args.data_dir)
    if prom is None:
        print(f"no native Prometheus running (nothing recorded in {args.data_dir})")
    else:
        print(f"stopped Prometheus at {prom.url} (pid {prom.pid}); data kept in {prom.data_dir}")
    return 0


def _docker_up(args: argparse.Namespace) -> int:
    rc = _compose(["up", "-d"], args.compose_file)
    if rc == 0:
        print(f"Grafana: {dashboard_url()} (admin/admin)")
        print("Prometheus: http://localhost:9090 (remote write: /api/v1/write)")
        print("  indigo-loadtest run SCENARIO --monitor")
    return rc


def _docker_down(args: argparse.Namespace) -> int:
    return _compose(["down"], args.compose_file)


def main(argv: Sequence[str] | None = None) -> int:
    """`indigo-loadtest monitoring ...`; returns the exit code."""
    try:
        args = _parser().parse_args(list(argv) if argv is not None else None)
    except SystemExit as e:  # argparse has printed usage and the error
        return int(e.code or 0)
    handlers = {
        ("up", True): _native_up, ("down", True): _native_down,
        ("up", False): _docker_up, ("down", False): _docker_down,
    }
    try:
        return handlers[(args.action, args.native)](args)
    except MonitoringError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
