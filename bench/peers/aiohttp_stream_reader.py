"""The baseline for streaming: a plain aiohttp SSE reader, the way LLM benchmark tools
read OpenAI-style streams (line iteration over `resp.content`, strip the `data: `
prefix, timestamp each event, parse its JSON, keep the inter-token gaps).

    python aiohttp_stream_reader.py URL STREAMS SECONDS

Runs STREAMS concurrent readers for SECONDS, reading the stream at URL again and
again, and prints one JSON line: {"events": N, "seconds": S, "events_per_s": R}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp
import uvloop


async def read_stream(session: aiohttp.ClientSession, url: str) -> int:
    events = 0
    start = time.perf_counter()
    last = start
    gaps = []
    async with session.get(url) as resp:
        async for raw in resp.content:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            now = time.perf_counter()
            chunk = json.loads(data)
            if chunk["choices"][0]["delta"].get("content"):
                gaps.append(now - last)
                last = now
            events += 1
    return events


async def reader(session: aiohttp.ClientSession, url: str, deadline: float) -> int:
    total = 0
    while time.perf_counter() < deadline:
        total += await read_stream(session, url)
    return total


async def main(url: str, streams: int, seconds: float) -> None:
    connector = aiohttp.TCPConnector(limit=streams)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        counts = await asyncio.gather(*(
            reader(session, url, start + seconds) for _ in range(streams)
        ))
        elapsed = time.perf_counter() - start
    total = sum(counts)
    print(json.dumps({"events": total, "seconds": elapsed, "events_per_s": total / elapsed}))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    uvloop.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
