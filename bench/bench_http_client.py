"""The HTTP client alone: requests/s and SSE events/s of ours against aiohttp's client.

nginx (one worker) runs on the target core; each client runs in its own process
pinned to the generator core with taskset, on uvloop, with CONCURRENCY tasks for a
fixed time. Ours records every built-in HTTP metric for every request (as in a real
run); aiohttp's client records nothing. Prints figures only.

    python bench/bench_http_client.py [--duration 5] [--concurrency 50] [--runs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import GEN_CORE, PYTHON, nginx, pinned

EVENT = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
    b'"model":"bench","choices":[{"index":0,"delta":{"content":" tok"},'
    b'"finish_reason":null}]}\n\n'
)
EVENTS_PER_STREAM = 500
MODES = ("ours-get", "aiohttp-get", "ours-sse", "aiohttp-sse")


# --- workers (run in a pinned child process) ------------------------------------------------
async def ours_get(url: str, concurrency: int, duration: float) -> float:
    from indigo_loadtest.http import Client
    from indigo_loadtest.metrics import Registry

    reg = Registry()
    clients = [Client(reg) for _ in range(concurrency)]  # one per VU, as in a run
    stop = time.perf_counter() + duration
    count = 0

    async def vu(c: Client) -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await c.get(url)
            count += 1

    await asyncio.gather(*(vu(c) for c in clients))
    for c in clients:
        await c.close()
    assert reg.builtin.http_reqs.aggregate().value == count
    return count / duration


async def aiohttp_get(url: str, concurrency: int, duration: float) -> float:
    import aiohttp

    stop = time.perf_counter() + duration
    count = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def vu() -> None:
            nonlocal count
            while time.perf_counter() < stop:
                async with s.get(url) as r:
                    await r.read()
                count += 1

        await asyncio.gather(*(vu() for _ in range(concurrency)))
    return count / duration


async def ours_sse(url: str, concurrency: int, duration: float) -> float:
    from indigo_loadtest.http import Client
    from indigo_loadtest.metrics import Registry

    reg = Registry()
    stop = time.perf_counter() + duration
    events = 0
    total_gap = 0.0

    async def vu() -> None:
        nonlocal events, total_gap
        c = Client(reg)
        while time.perf_counter() < stop:
            resp = await c.get(url, stream=True)
            last = resp.request_start
            async for ev in resp.sse():
                total_gap += ev.t - last  # the timing an LLM metric would keep
                last = ev.t
                events += 1
        await c.close()

    await asyncio.gather(*(vu() for _ in range(concurrency)))
    return events / duration


async def aiohttp_sse(url: str, concurrency: int, duration: float) -> float:
    import aiohttp

    stop = time.perf_counter() + duration
    events = 0
    total_gap = 0.0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def vu() -> None:
            nonlocal events, total_gap
            while time.perf_counter() < stop:
                last = time.perf_counter()
                async with s.get(url) as r:
                    # The usual LLM benchmark reader: line by line, time each data line.
                    async for line in r.content:
                        if line.startswith(b"data: "):
                            t = time.perf_counter()
                            total_gap += t - last
                            last = t
                            events += 1

        await asyncio.gather(*(vu() for _ in range(concurrency)))
    return events / duration


def worker(mode: str, url: str, concurrency: int, duration: float) -> None:
    import uvloop

    fn = {"ours-get": ours_get, "aiohttp-get": aiohttp_get,
          "ours-sse": ours_sse, "aiohttp-sse": aiohttp_sse}[mode]
    print(f"{uvloop.run(fn(url, concurrency, duration)):.1f}")


# --- driver --------------------------------------------------------------------------------
def measure(mode: str, url: str, concurrency: int, duration: float) -> float:
    cmd = pinned([PYTHON, __file__, "--worker", mode, url, str(concurrency), str(duration)],
                 GEN_CORE)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if res.returncode:
        raise SystemExit(f"{mode} failed: {res.stderr.strip()[-800:]}")
    return float(res.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _, _, mode, url, conc, dur = sys.argv
        worker(mode, url, int(conc), float(dur))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--sse-concurrency", type=int, default=20)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    with nginx(sse_events=EVENTS_PER_STREAM, sse_bytes=EVENT, tail=b"data: [DONE]\n\n") as base:
        results: dict[str, list[float]] = {m: [] for m in MODES}
        for _ in range(args.runs):
            for mode in MODES:
                sse = mode.endswith("sse")
                url = f"{base}/sse" if sse else f"{base}/"
                conc = args.sse_concurrency if sse else args.concurrency
                results[mode].append(measure(mode, url, conc, args.duration))
    med = {m: sorted(v)[len(v) // 2] for m, v in results.items()}
    print(f"generator core {GEN_CORE}, nginx on the other core, {args.duration:g} s per run, "
          f"{args.runs} run(s), medians")
    print(f"GET  ours (all metrics): {med['ours-get']:>10,.0f} req/s")
    print(f"GET  aiohttp client:     {med['aiohttp-get']:>10,.0f} req/s   "
          f"ratio {med['ours-get'] / med['aiohttp-get']:.2f}x")
    print(f"SSE  ours (sse()):       {med['ours-sse']:>10,.0f} events/s")
    print(f"SSE  aiohttp readline:   {med['aiohttp-sse']:>10,.0f} events/s   "
          f"ratio {med['ours-sse'] / med['aiohttp-sse']:.2f}x")


if __name__ == "__main__":
    main()
