"""Paced streams: the realistic streaming hot path, one event per read, and how true
the stream timings stay as concurrency grows.

A paced server (`bench/peers/servers.py paced`, target core) sends every stream one
OpenAI-style chunk each INTERVAL (10 ms, like a model's tokens), each in its own write,
the streams spread over the interval; each chunk's content is its send time. Three
readers, pinned to the generator core, keep STREAMS streams going, side by side in one
run: ours (a scenario whose VUs read each stream through `measure_stream`, all llm_*
metrics recorded), the same on the pure-Python stream path (INDIGO_PURE_PYTHON=1: what
an install without a C compiler runs; "ours" runs compiled where setup.py built it), a
plain aiohttp reader, and a bare asyncio protocol that only timestamps its reads (the
floor). After a warm-up, each notes its own CPU time and the
events it received over a window: CPU per event, events per CPU-second.

Accuracy: the same server's send times are ground truth (same machine, same monotonic
clock). Ours, and the floor for reference, record each stream's TTFT error (the first
token's stamp − its send time), every inter-token gap's error (measured gap − sent
gap) and every event's delay (stamp − send time); p50 and p99 over the window. The
server then sends ACCURACY_RATE events/s in all (events further apart than 10 ms for
2,000 streams): near its own core's limit it delivers late, which is not the reader's
error. The server draws each stream's length (half to one and a half times the mean),
so streams do not all end on the same tick.

    python bench/bench_paced_streams.py [--runs 1] [--duration 5] [--streams 200,1000,5000]
                                        [--accuracy 500,2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
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
    ours_cmd,
    pinned,
    run,
    table,
)

INTERVAL_S = 0.010
EVENTS_PER_STREAM = 100  # a 1 s stream; per-stream costs are 1 % of its events
WARMUP_S = 3.0  # every stream open and flowing before the window
STREAMS = (200, 1000, 5000)
ACCURACY_STREAMS = (500, 2000)
ACCURACY_RATE = 20_000  # events/s the truth server sends in the accuracy runs

OURS_SCENARIO = '''"""Bench: paced streams read through the LLM stream metrics."""
import asyncio
import json
import time
from array import array
from bisect import bisect_left

from indigo_loadtest import env
from indigo_loadtest.llm.stream_metrics import LLMMetrics, measure_stream

STREAMS, WARMUP, SECONDS = int(env["STREAMS"]), float(env["WARMUP"]), float(env["SECONDS"])
TAIL = float(env["TAIL"])  # long enough for every stream open at the window's end to end
TRUTH = env.get("TRUTH") == "1"
URL, OUT = env["BENCH_URL"], env["OUT"]
options = {"scenarios": {"paced": {"executor": "constant-vus", "vus": STREAMS,
                                   "duration": f"{WARMUP + SECONDS + TAIL}s",
                                   "gracefulStop": "0s"}}}
llm = LLMMetrics()
# The window is written by this time at the latest, whatever the loop's delays: the
# run ends at WARMUP + SECONDS + TAIL after about now.
WRITE_BY = time.perf_counter() + WARMUP + SECONDS + TAIL - 1.0
state = {"events": 0, "open": False, "sampler": None, "window": (0.0, 0.0), "pending": 0}
ttft_err, itl_err, delay = array("d"), array("d"), array("d")


def percentiles(values):
    if not values:
        return {"p50": None, "p99": None, "n": 0}
    s = sorted(values)
    return {"p50": s[len(s) // 2], "p99": s[min(len(s) - 1, int(len(s) * 0.99))], "n": len(s)}


async def sample():
    await asyncio.sleep(WARMUP)
    state["open"] = True
    c0, t0 = time.process_time(), time.perf_counter()
    state["window"] = (t0, float("inf"))
    await asyncio.sleep(SECONDS)
    c1, t1 = time.process_time(), time.perf_counter()
    state["window"] = (t0, t1)
    state["open"] = False
    # The tokens that arrived in the window are counted once their streams have ended.
    while state["pending"] and time.perf_counter() < min(t1 + TAIL - 0.5, WRITE_BY):
        await asyncio.sleep(0.1)
    out = {"events": state["events"], "seconds": t1 - t0, "cpu_seconds": c1 - c0}
    if TRUTH:
        out["ttft_err_us"], out["itl_err_us"] = percentiles(ttft_err), percentiles(itl_err)
        out["delay_us"] = percentiles(delay)
    with open(OUT, "w") as f:
        json.dump(out, f)


def errors(res, w0, w1):
    """Stamps against the send times carried in the content (perf_counter and
    monotonic are the same clock on Linux), for the tokens that arrived in the window."""
    stamps, sent = res.token_times, [float(x) for x in res.text.split()]
    if not stamps or len(sent) != len(stamps):
        return
    if w0 <= stamps[0] < w1:
        ttft_err.append((stamps[0] - sent[0]) * 1e6)
    for i in range(len(stamps)):
        if w0 <= stamps[i] < w1:
            delay.append((stamps[i] - sent[i]) * 1e6)
            if i:
                itl_err.append(((stamps[i] - stamps[i - 1]) - (sent[i] - sent[i - 1])) * 1e6)


async def default(vu):
    if state["sampler"] is None:
        state["sampler"] = asyncio.ensure_future(sample())
    started_open = state["open"] or state["window"][0] == 0.0
    state["pending"] += started_open
    resp = await vu.http.get(URL, stream=True)
    res = await measure_stream(resp, metrics=llm)
    state["pending"] -= started_open
    # Every token whose arrival falls in the window, counted once its stream has ended
    # (no per-event hook in the measured path; the times are sorted: two bisections).
    w0, w1 = state["window"]
    if w0:
        tt = res.token_times
        state["events"] += bisect_left(tt, w1) - bisect_left(tt, w0)
        if TRUTH:
            errors(res, w0, w1)
'''


def events_per_stream(interval: float) -> int:
    """EVENTS_PER_STREAM, fewer for events further apart: every stream lasts about 1 s,
    so each window sees streams start (TTFT) as well as go on (ITL)."""
    return max(10, min(EVENTS_PER_STREAM, round(1.0 / interval)))


def tail_s(streams: int, interval: float = INTERVAL_S) -> float:
    """Time after the window for the streams open at its end to end: a stream lasts
    its events × interval, longer when the server cannot keep up (about 65,000 events/s
    on one core of the benchmark machine)."""
    return 2 + 1.5 * events_per_stream(interval) * max(interval, streams / 65_000)


def ours(url: str, streams: int, seconds: float, truth: bool = False,
         pure: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="indigo-bench-") as d:
        tmp = Path(d)
        script = tmp / "bench_paced.py"
        script.write_text(OURS_SCENARIO)
        out = tmp / "window.json"
        tail = tail_s(streams, accuracy_interval(streams) if truth else INTERVAL_S)
        env = {"BENCH_URL": url, "STREAMS": str(streams), "WARMUP": str(WARMUP_S),
               "SECONDS": str(seconds), "TAIL": str(tail), "OUT": str(out),
               "TRUTH": "1" if truth else "0"}
        cmd = ours_cmd("run", str(script), "--workers", "1", "--quiet", "--no-summary",
                       "--summary-export", str(tmp / "summary.json"),
                       "--summary-trend-stats", "med,p(99),max",
                       *[a for k, v in env.items() for a in ("--env", f"{k}={v}")])
        # The compiled stream path where it is built, or its .py files (pure), same code.
        path_env = {k: v for k, v in os.environ.items() if k != "INDIGO_PURE_PYTHON"}
        if pure:
            path_env["INDIGO_PURE_PYTHON"] = "1"
        run(pinned(cmd, GEN_CORE), timeout=WARMUP_S + seconds + tail + 120, cwd=tmp,
            env=path_env)
        window = json.loads(out.read_text())
        # The run's own health (whole run): its loop lag, and its wait for a CPU that
        # other processes held, which the error figures include.
        metrics = json.loads((tmp / "summary.json").read_text())["metrics"]
        for name in ("generator_loop_lag", "generator_cpu_wait", "generator_cpu_percent"):
            if name in metrics:
                window[name] = {k: metrics[name].get(k) for k in ("med", "p(99)")}
        return window


def reference(kind: str, url: str, streams: int, seconds: float, truth: bool = False) -> dict:
    tail = tail_s(streams, accuracy_interval(streams) if truth else INTERVAL_S)
    cmd = [PYTHON, str(PEERS_DIR / "paced_readers.py"), kind, url, str(streams),
           str(WARMUP_S), str(seconds), str(tail), *(["--truth"] if truth else [])]
    res = run(pinned(cmd, GEN_CORE), timeout=WARMUP_S + seconds + tail + 120)
    return json.loads(res.stdout.strip().splitlines()[-1])


def paced_server(interval: float = INTERVAL_S):
    port = free_port()
    cmd = pinned([PYTHON, str(PEERS_DIR / "servers.py"), "paced", str(port), str(interval),
                  str(events_per_stream(interval))], TARGET_CORE)
    return port, background(cmd, port=port)


READERS = {
    "ours": lambda url, n, s, truth=False: ours(url, n, s, truth),
    "ours, pure Python": lambda url, n, s, truth=False: ours(url, n, s, truth, pure=True),
    "aiohttp reader": lambda url, n, s, truth=False: reference("aiohttp", url, n, s, truth),
    "bare protocol (floor)": lambda url, n, s, truth=False: reference("floor", url, n, s,
                                                                      truth),
}


def cpu_rows(runs: int, seconds: float, levels: tuple[int, ...]) -> list[Row]:
    rows: list[Row] = []
    for streams in levels:
        port, server = paced_server()
        with server:
            url = f"http://127.0.0.1:{port}/stream"
            per_event = {k: Measure(k, "µs/event") for k in READERS}
            rate = {k: Measure(k, "events/s") for k in READERS}
            for i in range(runs):
                for name, fn in READERS.items():  # interleaved: noise hits all alike
                    try:
                        w = fn(url, streams, seconds)
                    except Exception as e:  # a reader that fails is reported, not fatal
                        log(f"{name} {streams} streams failed: {e}")
                        per_event[name].note = str(e).splitlines()[0][:80]
                        continue
                    us = w["cpu_seconds"] / w["events"] * 1e6 if w["events"] else float("nan")
                    per_event[name].samples.append(us)
                    rate[name].samples.append(w["events"] / w["seconds"])
                    reads = f", {w['reads'] / w['events']:.2f} reads/event" if w.get(
                        "reads") else ""
                    log(f"{name}, {streams} streams, run {i + 1}/{runs}: {us:.2f} µs/event, "
                        f"{w['events'] / w['seconds']:,.0f} events/s{reads}")
        ours_m = per_event["ours"]
        for ref in ("aiohttp reader", "bare protocol (floor)"):
            row = Row(f"paced streams (10 ms apart), CPU per event, {streams:,} streams",
                      ours_m, per_event[ref], "≥ 2× aiohttp" if ref.startswith("aiohttp")
                      else "≤ 1.5× floor", higher_is_better=False)
            if row.ratio is not None:
                row.verdict = row.ratio >= 2.0 if ref.startswith("aiohttp") else (
                    1 / row.ratio <= 1.5)
            rows.append(row)
        rows.append(Row(f"paced streams, events received/s, {streams:,} streams",
                        rate["ours"], rate["aiohttp reader"]))
        rows.append(Row(f"paced streams, CPU per event, {streams:,} streams, stream path "
                        "compiled vs Python (INDIGO_PURE_PYTHON=1)", ours_m,
                        per_event["ours, pure Python"], higher_is_better=False))
    return rows


ACCURACY_KEYS = (("ttft_err_us", "TTFT error"), ("itl_err_us", "ITL gap error"),
                 ("delay_us", "event delay"))


def accuracy_interval(streams: int) -> float:
    """Events ~10 ms apart, or further apart where that would take the truth server
    past ACCURACY_RATE: a server near its core's limit delivers late, and its own
    delay would be measured, not the reader's."""
    return max(INTERVAL_S, streams / ACCURACY_RATE)


def accuracy_rows(seconds: float, levels: tuple[int, ...]) -> list[Row]:
    rows: list[Row] = []
    for streams in levels:
        interval = accuracy_interval(streams)
        port, server = paced_server(interval)
        with server:
            url = f"http://127.0.0.1:{port}/stream"
            for name in ("ours", "bare protocol (floor)"):
                w = READERS[name](url, streams, seconds, True)
                health = {k: v for k, v in w.items() if k.startswith("generator_")}
                if health:
                    log(f"{name}, {streams} streams: health {health}")
                for key, what in ACCURACY_KEYS:
                    p = w[key]
                    log(f"{name}, {streams} streams, {interval * 1000:g} ms apart: {what} "
                        f"p50 {p['p50']} µs, p99 {p['p99']} µs ({p['n']} samples)")
                    for q in ("p50", "p99"):
                        m = Measure(f"{name} {q}", "µs")
                        if p[q] is not None:
                            m.samples.append(p[q])
                        rows.append(Row(f"{what} (measured − sent), {streams:,} streams, "
                                        f"{interval * 1000:g} ms apart", m))
    return rows


def bench(runs: int, seconds: float, levels: tuple[int, ...] = STREAMS,
          accuracy: tuple[int, ...] = ACCURACY_STREAMS) -> list[Row]:
    return cpu_rows(runs, seconds, levels) + accuracy_rows(seconds, accuracy)


def _levels(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--duration", type=float, default=5.0, help="window seconds per run")
    ap.add_argument("--streams", default=",".join(map(str, STREAMS)))
    ap.add_argument("--accuracy", default=",".join(map(str, ACCURACY_STREAMS)))
    args = ap.parse_args()
    rows = bench(args.runs, args.duration, _levels(args.streams), _levels(args.accuracy))
    print(table(rows))
    print(json.dumps({r.target + " | " + r.ours.label: statistics.median(r.ours.samples)
                      for r in rows if r.ours.samples}, indent=1))


if __name__ == "__main__":
    main()
