"""Target 3: memory per idle VU, and 10,000 concurrent streams in one generator process.

Idle VUs: each tool runs N VUs that make one request (so each holds its HTTP client
and a kept-alive connection to nginx) and then sleep through the test; the
generator's resident memory (sampled from /proc while the VUs are up, peak taken)
minus the same tool's memory with one VU, divided by N-1. k6 runs 1,000 VUs, ours
1,000 and 10,000.

Streams: 10,000 VUs of ours each hold one SSE stream open to a dripping server (one
event per second per stream, one timer for all), in one process; the server counts
the streams open at once, and we report the generator's memory per stream.

    python bench/bench_memory.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (
    GEN_CORE,
    PEERS_DIR,
    PYTHON,
    TARGET_CORE,
    Measure,
    Row,
    background,
    free_port,
    log,
    nginx,
    ours_cmd,
    peer_bin,
    pinned,
    raise_nofile,
    summary_metric,
    table,
    tree_rss_kb,
)

HOLD_SECONDS = 8.0  # how long the VUs stay up; RSS is sampled meanwhile
STREAMS = 10_000

IDLE_SCENARIO = '''"""Bench: idle VUs, each holding its client and one kept-alive connection."""
from indigo_loadtest import env, sleep

options = {"scenarios": {"hold": {"executor": "constant-vus", "vus": %(vus)d,
                                 "duration": "%(duration)ss", "gracefulStop": "0s"}}}
URL = env["BENCH_URL"]


async def default(vu):
    await vu.http.get(URL)
    await sleep(3600)
'''

STREAM_SCENARIO = '''"""Bench: one long SSE stream per VU."""
from indigo_loadtest import Counter, env

options = {"scenarios": {"hold": {"executor": "constant-vus", "vus": %(vus)d,
                                 "duration": "%(duration)ss", "gracefulStop": "0s"}}}
URL = env["BENCH_URL"]
events = Counter("sse_events")


async def default(vu):
    resp = await vu.http.get(URL, stream=True, timeout=120)
    async for _ in resp.sse():
        events.add(1)
'''


def peak_rss_kb(cmd: list[str], seconds: float,
                cwd: Path) -> tuple[int, subprocess.CompletedProcess]:
    """Run `cmd`, sampling its process tree's RSS every 0.2 s; (peak KiB, result)."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=raise_nofile)
    peak = 0
    deadline = time.monotonic() + seconds + 90
    while proc.poll() is None and time.monotonic() < deadline:
        peak = max(peak, tree_rss_kb(proc.pid))
        time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate()
    if proc.returncode not in (0, 99):
        raise RuntimeError(f"{' '.join(cmd[:6])} ... exited {proc.returncode}: {err[-800:]}")
    return peak, subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def ours_idle_rss(url: str, vus: int) -> int:
    with tempfile.TemporaryDirectory(prefix="indigo-bench-") as d:
        tmp = Path(d)
        script = tmp / "bench_idle.py"
        script.write_text(IDLE_SCENARIO % {"vus": vus, "duration": HOLD_SECONDS})
        cmd = ours_cmd("run", str(script), "--workers", "1", "--quiet",
                       "--env", f"BENCH_URL={url}/")
        return peak_rss_kb(pinned(cmd, GEN_CORE), HOLD_SECONDS, tmp)[0]


def k6_idle_rss(url: str, vus: int) -> int:
    with tempfile.TemporaryDirectory(prefix="indigo-bench-k6-") as d:
        cmd = [str(peer_bin("k6")), "run", "--quiet", "--no-usage-report", "--vus", str(vus),
               "--duration", f"{HOLD_SECONDS}s", "--no-summary", "-e", f"URL={url}/",
               str(PEERS_DIR / "k6_idle.js")]
        return peak_rss_kb(pinned(cmd, GEN_CORE), HOLD_SECONDS, Path(d))[0]


def per_vu_kb(rss: dict[int, int]) -> float:
    (small, base), (big, full) = sorted(rss.items())
    return (full - base) / (big - small)


def idle_rows(runs: int) -> list[Row]:
    ours = Measure("ours, 10,000 VUs", "KB/VU")
    ours_1k = Measure("ours, 1,000 VUs", "MB")
    k6 = Measure("k6, 1,000 VUs", "KB/VU")
    k6_1k = Measure("k6, 1,000 VUs", "MB")
    for i in range(runs):
        with nginx(max_conns=STREAMS + 2000) as url:
            o = {n: ours_idle_rss(url, n) for n in (1, 1000, STREAMS)}
            k = {n: k6_idle_rss(url, n) for n in (1, 1000)}
        log(f"idle RSS run {i + 1}/{runs}: ours {o} KiB, k6 {k} KiB")
        ours.samples.append(per_vu_kb({1: o[1], STREAMS: o[STREAMS]}))
        ours_1k.samples.append(o[1000] / 1024)
        k6.samples.append(per_vu_kb(k))
        k6_1k.samples.append(k[1000] / 1024)
    per_vu = Row("3a. memory per idle VU", ours, k6, "≤ 20 KB", higher_is_better=False)
    per_vu.verdict = ours.median <= 20.0
    total = Row("3a. RSS with 1,000 idle VUs", ours_1k, k6_1k, "", higher_is_better=False)
    return [per_vu, total]


def ours_streams(vus: int, seconds: float) -> tuple[int, int, float]:
    """(peak RSS KiB, peak streams open at the server, events received)."""
    port = free_port()
    server = pinned([PYTHON, str(PEERS_DIR / "servers.py"), "drip", str(port), "1.0",
                     str(int(seconds + 60))], TARGET_CORE)
    with tempfile.TemporaryDirectory(prefix="indigo-bench-") as d, \
            background(server, port=port, stdout=subprocess.PIPE) as srv:
        tmp = Path(d)
        script = tmp / "bench_streams.py"
        script.write_text(STREAM_SCENARIO % {"vus": vus, "duration": seconds})
        export = tmp / "summary.json"
        cmd = ours_cmd("run", str(script), "--workers", "1", "--quiet",
                       "--env", f"BENCH_URL=http://127.0.0.1:{port}/stream",
                       "--summary-export", str(export))
        rss, _ = peak_rss_kb(pinned(cmd, GEN_CORE), seconds, tmp)
        srv.send_signal(2)
        out, _ = srv.communicate(timeout=10)
        summary = json.loads(export.read_text())
    events = summary_metric(summary, "sse_events", "count")
    peak_open = int(out.decode().split()[-1]) if out else 0
    return rss, peak_open, events


def stream_rows(runs: int) -> list[Row]:
    seconds = 15.0
    per_stream = Measure(f"ours, {STREAMS:,} streams", "KB/stream")
    open_streams = Measure("streams open at once", "streams")
    for i in range(runs):
        rss, peak_open, events = ours_streams(STREAMS, seconds)
        log(f"streams run {i + 1}/{runs}: RSS {rss} KiB, {peak_open} open, {events:.0f} events")
        per_stream.samples.append(rss / STREAMS)
        open_streams.samples.append(peak_open)
    row = Row(f"3b. {STREAMS:,} concurrent streams, 1 process", open_streams, None,
              f"{STREAMS:,} open")
    row.verdict = open_streams.median >= STREAMS
    mem = Row("3b. generator RSS per open stream", per_stream, None, "", higher_is_better=False)
    return [row, mem]


def bench(runs: int) -> list[Row]:
    return idle_rows(runs) + stream_rows(max(1, runs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(table(bench(args.runs)))
    sys.exit(0)


if __name__ == "__main__":
    main()
