"""Is the embedded simulator ever the bottleneck? Its throughput on one core, under wrk.

The simulator runs pinned to one core (taskset), wrk on the other; both on 127.0.0.1.
Figures are medians of N runs (default 3):

  1. GET /v1/models                      plain authenticated requests/s
  2. POST /v1/conversations              a SQLite write per request, requests/s
  3. chat completion, not streamed       requests/s with the latency model off
  4. chat completion, streamed           tokens/s with the latency model off (256 a stream)
  5. paced streams                       500 streams at once, each paced at 100 tokens/s:
                                         the tokens/s delivered (ideal: 50,000/s) and the
                                         server's CPU share

Usage: .venv/bin/python bench/bench_simulator.py [--runs 3] [--duration 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    GEN_CORE,
    HOST,
    PYTHON,
    TARGET_CORE,
    background,
    free_port,
    log,
    pinned,
    run,
    wrk_bin,
)

API_KEY = "bench-simulator-key"
MODEL = "jan-v1-4b"
STREAM_TOKENS = 256
PACED_STREAMS = 500
PACED_TPS = 100
PACED_TOKENS = 25  # 0.25 s streams: few are cut off at the end of a run


@dataclass(frozen=True)
class Case:
    label: str
    method: str
    path: str
    body: dict | None
    connections: int
    unit: str  # "req/s" or "tokens/s"
    tokens_per_request: int = 0  # tokens/s = req/s × this
    headers: tuple[tuple[str, str], ...] = ()


def chat(stream: bool, tokens: int) -> dict:
    return {"model": MODEL, "stream": stream, "max_tokens": tokens,
            "messages": [{"role": "user", "content": "Explain how a load test works."}]}


FAST = (("X-Sim-TTFT-Ms", "0"), ("X-Sim-Tokens-Per-Sec", "0"))
CASES = (
    Case("GET /v1/models", "GET", "/v1/models", None, 64, "req/s"),
    Case("POST /v1/conversations (SQLite write)", "POST", "/v1/conversations",
         {"title": "bench"}, 64, "req/s"),
    Case("chat completion, not streamed (16 tokens)", "POST", "/v1/chat/completions",
         chat(False, 16), 64, "req/s", 0, (*FAST, ("X-Sim-Reply-Tokens", "16"))),
    Case(f"chat completion, streamed ({STREAM_TOKENS} tokens)", "POST",
         "/v1/chat/completions", chat(True, STREAM_TOKENS), 64, "tokens/s", STREAM_TOKENS,
         (*FAST, ("X-Sim-Reply-Tokens", str(STREAM_TOKENS)))),
    Case(f"{PACED_STREAMS} streams paced at {PACED_TPS} tokens/s", "POST",
         "/v1/chat/completions", chat(True, PACED_TOKENS), PACED_STREAMS, "tokens/s",
         PACED_TOKENS, (("X-Sim-TTFT-Ms", "0"), ("X-Sim-Tokens-Per-Sec", str(PACED_TPS)),
                        ("X-Sim-Reply-Tokens", str(PACED_TOKENS)))),
)


def lua_script(case: Case, folder: Path) -> Path:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json",
               **dict(case.headers)}
    lines = [f"wrk.method = {json.dumps(case.method)}"]
    if case.body is not None:
        lines.append(f"wrk.body = {json.dumps(json.dumps(case.body))}")
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    path = folder / f"case{CASES.index(case)}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def cpu_ticks(pid: int) -> int:
    """The process's CPU time in clock ticks: rates per CPU-second stay comparable when
    other work shares the machine (the server may not get its whole core)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wrk_once(case: Case, url: str, script: Path, duration: float, server_pid: int,
             ) -> tuple[float, float]:
    """(requests/s, the server's CPU share of one core) of one wrk run."""
    ticks = cpu_ticks(server_pid)
    res = run(pinned([wrk_bin(), "-t1", f"-c{case.connections}", f"-d{duration:g}s",
                      "--timeout", "10s", "-s", str(script), url + case.path], GEN_CORE),
              timeout=duration + 60)
    cpu = (cpu_ticks(server_pid) - ticks) / os.sysconf("SC_CLK_TCK") / duration
    if "Non-2xx" in res.stdout or "Socket errors" in res.stdout:
        bad = [line.strip() for line in res.stdout.splitlines()
               if "Non-2xx" in line or "Socket errors" in line]
        raise RuntimeError(f"{case.label}: {'; '.join(bad)}")
    match = re.search(r"Requests/sec:\s*([\d.]+)", res.stdout)
    if not match:
        raise RuntimeError(f"wrk printed no rate: {res.stdout[-300:]}")
    return float(match.group(1)), cpu


def machine() -> str:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    import aiohttp
    import uvloop

    return (f"{model or platform.processor()}, {os.cpu_count()} cores, Linux "
            f"{platform.release()}, Python {platform.python_version()}, aiohttp "
            f"{aiohttp.__version__}, uvloop {uvloop.__version__}")


def bench(runs: int, duration: float) -> str:
    port = free_port()
    url = f"http://{HOST}:{port}"
    cmd = pinned([PYTHON, "-m", "indigo_loadtest.simulator", "--host", HOST, "--port",
                  str(port), "--slots", "100000"], TARGET_CORE)
    env = {**os.environ, "INDIGO_SIM_API_KEY": API_KEY}
    rows = []
    with background(cmd, port=port, env=env) as server, \
            tempfile.TemporaryDirectory(prefix="indigo-bench-sim-") as tmp:
        for case in CASES:
            script = lua_script(case, Path(tmp))
            wrk_once(case, url, script, 1.0, server.pid)  # warm-up
            rates, cpus = [], []
            for i in range(runs):
                rate, cpu = wrk_once(case, url, script, duration, server.pid)
                value = rate * case.tokens_per_request if case.tokens_per_request else rate
                log(f"{case.label} run {i + 1}/{runs}: {value:,.0f} {case.unit}, "
                    f"server CPU {cpu:.0%}")
                rates.append(value)
                cpus.append(cpu)
            per_cpu = [r / c for r, c in zip(rates, cpus, strict=True) if c > 0]
            rows.append((case, statistics.median(rates), min(rates), max(rates),
                         statistics.median(cpus), statistics.median(per_cpu)))
    return report(rows, runs, duration)


def report(rows: list, runs: int, duration: float) -> str:
    out = [f"Simulator on one core (taskset -c {TARGET_CORE}), wrk on core {GEN_CORE}; "
           f"median of {runs} runs of {duration:g} s", f"machine: {machine()}", "",
           f"| {'case':<44} | {'median':>16} | {'range':>19} | server CPU | "
           f"{'per server CPU-second':>21} |",
           f"|{'-' * 46}|{'-' * 18}|{'-' * 21}|{'-' * 12}|{'-' * 23}|"]
    for case, median, low, high, cpu, per_cpu in rows:
        out.append(f"| {case.label:<44} | {median:>9,.0f} {case.unit:<8}| "
                   f"{low:>9,.0f}–{high:<9,.0f} | {cpu:>10.0%} | "
                   f"{per_cpu:>12,.0f} {case.unit:<8} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median taken)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    args = ap.parse_args()
    print(bench(max(1, args.runs), max(1.0, args.duration)))


if __name__ == "__main__":
    main()
