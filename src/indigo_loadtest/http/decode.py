"""Content-Encoding decoding with a bound on the decoded size (decompression bombs).

A 1 MiB gzip body can inflate to 1 GiB: nothing here ever produces more than
`limit + 1` bytes, whatever the ratio.
"""

from __future__ import annotations

import zlib
from typing import Any


class DecodedTooLarge(Exception):
    """The decoded body would be larger than the limit."""


def decode_body(body: bytes, encoding: bytes | None, limit: int | None = None) -> bytes:
    """Undo a Content-Encoding (gzip, deflate, br, zstd); unknown encodings pass through.

    Raises DecodedTooLarge past `limit` bytes, and the codec's error (zlib.error,
    cramjam.DecompressionError) for a body that does not decode, truncated ones included.
    """
    if not encoding or encoding == b"identity" or not body:
        return body
    bound = (1 << 62) if limit is None else limit
    if encoding in (b"gzip", b"x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, bound)
    if encoding == b"deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, bound)
        except zlib.error:  # some servers send raw deflate without the zlib wrapper
            return _inflate(body, -zlib.MAX_WBITS, bound)
    if encoding in (b"br", b"zstd"):
        return _cramjam_decode(body, encoding, bound)
    return body


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(body, limit + 1)
    if len(out) > limit:
        raise DecodedTooLarge
    if not d.eof:
        raise zlib.error("incomplete or truncated stream")
    return out


def _cramjam_decode(body: bytes, encoding: bytes, limit: int) -> bytes:
    import cramjam

    codec = cramjam.brotli if encoding == b"br" else cramjam.zstd
    # cramjam has no output cap: decode into a buffer that grows 4x per try, up to
    # limit + 1 bytes (the retries cost at most a third more work).
    size = min(limit + 1, max(len(body) * 8, 1 << 16))
    while True:
        out = bytearray(size)
        try:
            n = codec.decompress_into(body, out)
        except cramjam.DecompressionError as exc:
            if "buffer" not in str(exc):  # "failed to write whole buffer": too small
                raise
            if size > limit:
                raise DecodedTooLarge from None
            size = min(size * 4, limit + 1)
            continue
        if n > limit:
            raise DecodedTooLarge
        del out[n:]
        return bytes(out)


def incremental_decoder(encoding: bytes | None) -> Any:
    """A zlib decompressobj for streamed gzip/deflate bodies, or None."""
    if encoding in (b"gzip", b"x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == b"deflate":
        return zlib.decompressobj()
    return None
