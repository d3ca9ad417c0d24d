"""A small streaming LLM server on loopback with exact control of event timing and faults.

It runs in its own process (as a remote server would), so its timers never wait on
the test's event loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Iterator

import orjson
import pytest
from aiohttp import web

from tests.conftest import free_port


def _chunk(content: str) -> bytes:
    body = {"object": "chat.completion.chunk", "choices": [{"index": 0,
                                                            "delta": {"content": content}}]}
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def chat(request: web.Request) -> web.StreamResponse:
    """?ttft_ms=&itl_ms=&n= timed content chunks; fault=cut|malformed; status=NNN."""
    q = request.query
    status = int(q.get("status", "200"))
    if status != 200:
        return web.json_response({"error": {"message": "rate limited"}}, status=status)
    ttft, itl, n = float(q.get("ttft_ms", 50)), float(q.get("itl_ms", 10)), int(q.get("n", 5))
    fault = q.get("fault", "")
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "X-Queue-Time": q.get("queue_ms", "3")})
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(n):
        # Sleep to an absolute deadline so gaps do not accumulate drift.
        await asyncio.sleep(max(0.0, start + (ttft + i * itl) / 1000 - loop.time()))
        await resp.write(_chunk(f"t{i} "))
        if fault == "malformed" and i == 1:
            await resp.write(b'data: {"choices": [{"delta": \n\n')
        if fault == "cut" and i == n // 2:
            request.transport.close()  # type: ignore[union-attr]
            return resp
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


def _serve(port: int, ready: multiprocessing.synchronize.Event) -> None:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)

    async def main() -> None:
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


@pytest.fixture(scope="module")
def stream_server() -> Iterator[str]:
    port = free_port()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_serve, args=(port, ready), daemon=True)
    proc.start()
    try:
        assert ready.wait(15), "stream server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.join(5)
