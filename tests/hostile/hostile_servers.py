"""Hostile and broken HTTP servers on 127.0.0.1, one behaviour per path.

A plain asyncio server in a background thread: each connection reads one request
(head and body) and then does what its path says, as fast as loopback allows, until
the client goes away (or 20 s, so that no handler outlives a test).
"""

from __future__ import annotations

import asyncio
import functools
import struct
import threading
import zlib
from collections.abc import Awaitable, Callable

BLOCK = 64 << 10
HANDLER_LIFETIME = 20.0
SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
TOKEN_EVENT = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@functools.cache
def gzip_bomb(mib: int = 1024) -> bytes:
    """A valid gzip body of about 1 MiB that inflates to `mib` MiB of zeros.

    Built from one compressed MiB repeated: after a full flush each deflate segment
    stands alone, so the segment of one MiB of zeros can be repeated (0.5 s, not the
    minutes compressing 1 GiB would take); the trailer has the CRC of the whole.
    """
    block = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    final = c.flush()[:-8]  # the last (empty) block, without the 2 MiB trailer
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    return first + again * (mib - 1) + final + struct.pack("<II", crc, (mib << 20) & 0xFFFFFFFF)


Writer = asyncio.StreamWriter
Behaviour = Callable[[asyncio.StreamReader, Writer], Awaitable[None]]


async def send(writer: Writer, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


async def endless(writer: Writer, head: bytes, piece: bytes) -> None:
    await send(writer, head)
    while True:
        await send(writer, piece)


async def endless_chunked(reader: asyncio.StreamReader, writer: Writer) -> None:
    await endless(writer, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                  chunk(b"z" * BLOCK))


async def huge_content_length(reader: asyncio.StreamReader, writer: Writer) -> None:
    await endless(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n",
                  b"z" * BLOCK)


async def send_gzip_claimed(reader: asyncio.StreamReader, writer: Writer, body: bytes) -> None:
    """A whole response whose body claims to be gzip; one per connection."""
    await send(writer, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       b"Content-Encoding: gzip\r\nConnection: close\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    await reader.read()


async def gzip_bomb_body(reader: asyncio.StreamReader, writer: Writer) -> None:
    body = gzip_bomb()
    await send_gzip_claimed(reader, writer, body)


async def undecodable_gzip(reader: asyncio.StreamReader, writer: Writer) -> None:
    body = b'{"choices": []} is not gzip'
    await send_gzip_claimed(reader, writer, body)


async def sse_endless_event(reader: asyncio.StreamReader, writer: Writer) -> None:
    await send(writer, SSE_HEAD + chunk(b"data: "))
    await endless(writer, b"", chunk(b"x" * BLOCK))


async def sse_endless_stream(reader: asyncio.StreamReader, writer: Writer) -> None:
    await endless(writer, SSE_HEAD, chunk(TOKEN_EVENT * (BLOCK // len(TOKEN_EVENT))))


async def many_headers(reader: asyncio.StreamReader, writer: Writer) -> None:
    await send(writer, b"HTTP/1.1 200 OK\r\n")
    batch = b"X-Hostile: v\r\n" * 10_000
    for _ in range(200):  # 2 million headers
        await send(writer, batch)
    await send(writer, b"Content-Length: 0\r\n\r\n")
    await reader.read()


async def huge_header_line(reader: asyncio.StreamReader, writer: Writer) -> None:
    await send(writer, b"HTTP/1.1 200 OK\r\nX-Hostile: ")
    for _ in range((64 << 20) // BLOCK):  # a 64 MiB header line
        await send(writer, b"a" * BLOCK)
    await send(writer, b"\r\nContent-Length: 0\r\n\r\n")
    await reader.read()


async def close_mid_body(reader: asyncio.StreamReader, writer: Writer) -> None:
    await send(writer, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 1000\r\n\r\n" + b'{"choices": [{"message": {"con')
    # returning closes the connection: 970 bytes short


async def malformed_status(reader: asyncio.StreamReader, writer: Writer) -> None:
    await send(writer, b"HTPT/1.1 2OO BANANAS\r\nContent-Length: 2\r\n\r\nok")
    await reader.read()


async def stall_after_headers(reader: asyncio.StreamReader, writer: Writer) -> None:
    await send(writer, SSE_HEAD)
    await reader.read()  # until the client gives up


async def drip(reader: asyncio.StreamReader, writer: Writer) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
        await send(writer, bytes([byte]))
        await asyncio.sleep(1.0)


BEHAVIOURS: dict[str, Behaviour] = {
    "/endless-chunked": endless_chunked,
    "/huge-content-length": huge_content_length,
    "/gzip-bomb": gzip_bomb_body,
    "/undecodable-gzip": undecodable_gzip,
    "/sse-endless-event": sse_endless_event,
    "/sse-endless-stream": sse_endless_stream,
    "/many-headers": many_headers,
    "/huge-header-line": huge_header_line,
    "/close-mid-body": close_mid_body,
    "/malformed-status": malformed_status,
    "/stall-after-headers": stall_after_headers,
    "/drip": drip,
}


async def read_request(reader: asyncio.StreamReader) -> str:
    """The request's path; its body is read too, so that closing never resets."""
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and int(value):
            await reader.readexactly(int(value))
    return head.split(b" ", 2)[1].decode()


class HostileServer:
    """The behaviours above on one loopback port, served from a daemon thread."""

    def __init__(self) -> None:
        gzip_bomb()  # built before any client waits for it
        self.loop = asyncio.new_event_loop()
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0))
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def _handle(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        try:
            path = await read_request(reader)
            behaviour = BEHAVIOURS.get(path)
            if behaviour is None:
                await send(writer, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            else:
                await asyncio.wait_for(behaviour(reader, writer), HANDLER_LIFETIME)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError):
            pass  # the client went away, as it should
        finally:
            writer.close()

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
