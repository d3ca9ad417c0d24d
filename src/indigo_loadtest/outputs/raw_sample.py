"""Shared machinery of the raw-sample file outputs (`--out json=...`, `--out csv=...`).

The registry listener only appends the raw sample to a list (the hot path runs it for
every sample); the list is formatted and written in batches: when it is full, once a
second, and at stop. Per-tag-set text is cached, as tag sets are interned and few.

A write that fails (disk full, file removed) never reaches the code that recorded the
sample (the listener runs inside the HTTP client): the output detaches, keeps what it
wrote, and states why in `failure`; the test goes on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gzip
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, ClassVar

from ..http.redact import SECRET_HEADERS, mask_known
from ..metrics.registry import Metric, Registry
from ..metrics.summary import DATA_METRICS
from ..metrics.tags import TagSet
from .base import RunInfo

# Tag keys that could only hold a credential (the secret headers' names and a few more);
# never written even if a scenario sets them.
SECRET_TAG_KEYS = SECRET_HEADERS | {"api_key", "apikey", "loadtest_token", "password", "secret"}
Sample = tuple[Metric, TagSet, float, float]  # as the registry hands it to listeners


def safe_tags(tags: TagSet) -> dict[str, str]:
    """The tags that may be written: no secret-named key, no remembered secret in a value
    (callers cache the result per tag set, so this is not on the per-sample path)."""
    return {k: mask_known(v) for k, v in tags.items if k.lower() not in SECRET_TAG_KEYS}


def number_text(value: float) -> str:
    """A float as Go's JSON encoder writes it: 1 not 1.0, no NaN/Infinity."""
    if not math.isfinite(value):
        return "null"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def metric_contains(metric: Metric) -> str:
    """k6's value type of a metric: "time", "data" or "default"."""
    if metric.is_time:
        return "time"
    return "data" if metric.name in DATA_METRICS else "default"


class RawSampleOutput:
    """Base class: a file that gets one line per sample. Subclasses format the lines."""

    name: ClassVar[str] = ""
    batch_lines: ClassVar[int] = 4096
    flush_interval: ClassVar[float] = 1.0

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.samples_written = 0
        self._buf: list[Sample] = []
        self._file: IO[str] | None = None
        self._registry: Registry | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._stopped = False
        # Where the next batch's text starts in the file once the buffer is on disk: what
        # a failed write left of it is counted in `samples_written` (complete lines).
        self._batch_offset = 0
        # Why the output stopped recording (one line), and who to tell at once.
        self.failure: str | None = None
        self.on_failure: Callable[[str], None] | None = None

    def description(self) -> str:
        return f"{self.name} ({self.path})"

    async def start(self, registry: Registry, run: RunInfo) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = _open_text(self.path)
        header = self.header()
        if header:
            self._file.write(header)
        self._batch_offset = len(header.encode())
        self._registry = registry
        registry.add_listener(self.on_sample)
        self._flusher = asyncio.create_task(self._flush_loop())

    async def stop(self) -> None:
        """Detach, write what is buffered and close; safe to call twice (Ctrl-C path)."""
        if self._stopped:
            return
        self._stopped = True
        if self._registry is not None:
            self._registry.remove_listener(self.on_sample)
        if self._flusher is not None:
            self._flusher.cancel()
            # Also swallows a cancellation of stop() itself: the buffer is written anyway.
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        self.close_now()

    def close_now(self) -> None:
        """Write what is buffered and close, synchronously (also the last resort of a
        process that must exit at once)."""
        self.flush()
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError as exc:  # the last buffered bytes (or gzip's trailer)
                self._fail(exc)

    def on_sample(self, metric: Metric, tags: TagSet, value: float, unix_time: float) -> None:
        buf = self._buf
        buf.append((metric, tags, value, unix_time))
        if len(buf) >= self.batch_lines:
            self.flush()

    def flush(self) -> None:
        buf = self._buf
        if buf and self._file is not None:
            self._buf = []
            text = self.format_batch(buf)
            try:
                self._file.write(text)
                self._file.flush()
                self._batch_offset = _size_if_not_removed(self._file)
            except OSError as exc:
                self.samples_written += self._samples_on_disk(text)
                self._fail(exc)
                return
            self.samples_written += len(buf)

    def _samples_on_disk(self, text: str) -> int:
        """The complete sample lines of `text` that reached the file before a write
        failed (a full disk takes part of a batch). Unknown in a .gz file: none."""
        file = self._file
        if file is None or self.path.suffix == ".gz":
            return 0
        try:
            on_disk = os.fstat(file.fileno()).st_size - self._batch_offset
        except (OSError, ValueError):
            return 0
        lines = text.encode()[:max(0, on_disk)].split(b"\n")[:-1]  # the last one is cut
        return sum(1 for line in lines if self.is_sample_line(line))

    def _fail(self, exc: OSError) -> None:
        """Stop recording for good: detach, drop the buffer, close what can be closed."""
        if self.failure is None:
            self.failure = (f"the {self.name} output cannot write {self.path}: "
                            f"{exc.strerror or exc}; it stopped recording after "
                            f"{self.samples_written} samples")
        if self._registry is not None:
            self._registry.remove_listener(self.on_sample)
        if self._flusher is not None:
            self._flusher.cancel()
        self._buf = []
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):  # the same error again, on the unwritten rest
                file.close()
        if self.on_failure is not None:
            self.on_failure(self.failure)

    async def _flush_loop(self) -> None:
        # So a file being watched (tail -f) fills during long tests, not only at the end.
        while True:
            await asyncio.sleep(self.flush_interval)
            self.flush()

    # --- for subclasses ---------------------------------------------------------------
    def header(self) -> str:
        return ""

    def format_batch(self, samples: list[Sample]) -> str:
        """The text of a batch of samples, one line each."""
        raise NotImplementedError

    def is_sample_line(self, line: bytes) -> bool:
        """Whether a line of `format_batch` is a sample's (not a declaration)."""
        return True


def _size_if_not_removed(file: IO[Any]) -> int:
    """The file's size. Writes to a file deleted during the run succeed but go nowhere:
    report them."""
    stat = os.fstat(file.fileno())
    if stat.st_nlink == 0:
        raise OSError(errno.ENOENT, "the file was removed during the run")
    return stat.st_size


def _open_text(path: Path) -> IO[Any]:
    if path.suffix == ".gz":
        return gzip.open(path, "wt", encoding="utf-8", newline="")
    return path.open("w", encoding="utf-8", newline="")
