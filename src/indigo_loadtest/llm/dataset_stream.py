"""Reading a benchmark dataset in bounded memory, whatever the file's size.

The file is read once, front to back, one entry at a time, and only a seeded uniform
sample of its requests is kept (`Reservoir`): at most `capacity` requests (the point's
`--iterations`, else DATASET_REQUESTS) holding at most `budget` characters of request
text (DATASET_BUDGET). So a run's memory for its dataset is bounded by the budget, plus
one entry (at most MAX_ENTRY_CHARS) and one read chunk, never by the file: a 2 GB ShareGPT
file costs what a 64 MiB one does. A file within both bounds is kept whole.

- `jsonl_lines(path)`: each line and its number (a line longer than MAX_ENTRY_CHARS is an
  error: it is never read whole).
- `json_list_items(path)`: each element of a top-level JSON list (ShareGPT's layout),
  decoded one at a time from chunks by the standard library's decoder.

Errors are `ValueError`s with a one-line message (the caller names the file).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

DATASET_REQUESTS = 100_000  # requests kept of a dataset when the point's count is open
DATASET_BUDGET = 64 * 1024 * 1024  # characters of request text kept, in all
MAX_ENTRY_CHARS = 16 * 1024 * 1024  # one line or list element
CHUNK_CHARS = 1024 * 1024
_SPACE = re.compile(r"[ \t\n\r]*")

T = TypeVar("T")


class Reservoir(Generic[T]):
    """A uniform sample (seeded: the same in every process) of the entries offered.

    Classic reservoir sampling of `capacity` entries; when the entries kept would hold
    more than `budget` characters, random ones are dropped and the capacity shrinks to
    what is left: a uniform subset of a uniform sample is one, and sampling on with the
    smaller capacity keeps it so. Entries are kept in the order read until one is
    replaced (a file within both bounds is kept whole, in its order)."""

    def __init__(self, capacity: int, budget: int, rng: random.Random) -> None:
        self.capacity, self.budget, self.rng = max(1, capacity), budget, rng
        self.items: list[T] = []
        self._sizes: list[int] = []
        self.size = 0  # characters held
        self.seen = 0  # entries offered

    def offer(self, item: T, size: int) -> None:
        self.seen += 1
        if len(self.items) < self.capacity:
            self.items.append(item)
            self._sizes.append(size)
            self.size += size
        else:
            slot = self.rng.randrange(self.seen)
            if slot >= self.capacity:
                return
            self.size += size - self._sizes[slot]
            self.items[slot], self._sizes[slot] = item, size
        while self.size > self.budget and len(self.items) > 1:
            self._drop(self.rng.randrange(len(self.items)))
            self.capacity = len(self.items)

    def _drop(self, k: int) -> None:
        self.size -= self._sizes[k]
        self.items[k], self._sizes[k] = self.items[-1], self._sizes[-1]
        self.items.pop()
        self._sizes.pop()


def jsonl_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for each line, read one at a time."""
    with open(path, "rb") as f:
        for n, line in enumerate(iter(lambda: f.readline(MAX_ENTRY_CHARS + 1), b""), 1):
            if len(line) > MAX_ENTRY_CHARS:
                raise ValueError(f"line {n} is longer than {MAX_ENTRY_CHARS >> 20} MiB")
            yield n, line


class _ListReader:
    """The text of a file from `pos` on, in a buffer that never holds more than the
    entry being decoded and a chunk."""

    def __init__(self, f: Any) -> None:
        self.f, self.buf, self.pos, self.eof = f, "", 0, False

    def more(self, at_least: int = CHUNK_CHARS) -> None:
        chunk = self.f.read(max(CHUNK_CHARS, at_least))
        self.eof = not chunk
        self.buf, self.pos = self.buf[self.pos:] + chunk, 0

    def next_char(self) -> str:
        """The next character that is not white space ("" at the end of the file)."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos:self.pos + 1]
            self.more()

    def value(self, decoder: json.JSONDecoder) -> tuple[Any, int]:
        """The next JSON value, and how many characters it took."""
        self.next_char()
        while True:
            try:
                value, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise ValueError(f"not JSON ({exc.msg} at character "
                                     f"{exc.pos - self.pos} of an entry)") from None
                end = -1
            if end >= 0 and (end < len(self.buf) or self.eof):  # a number may go on
                size, self.pos = end - self.pos, end
                return value, size
            if len(self.buf) - self.pos > MAX_ENTRY_CHARS:
                raise ValueError(f"an entry longer than {MAX_ENTRY_CHARS >> 20} MiB, "
                                 "or not JSON")
            self.more(len(self.buf) - self.pos)  # doubles what an entry may take


def json_list_items(path: str) -> Iterator[tuple[Any, int]]:
    """(element, its length in characters) for each element of the file's top-level
    JSON list."""
    decoder = json.JSONDecoder()
    with open(path, encoding="utf-8") as f:
        reader = _ListReader(f)
        if reader.next_char() != "[":
            raise ValueError("expected a JSON list of ShareGPT conversations")
        reader.pos += 1
        if reader.next_char() == "]":
            reader.pos += 1
        else:
            while True:
                yield reader.value(decoder)
                sep = reader.next_char()
                reader.pos += 1
                if sep == "]":
                    break
                if sep != ",":
                    raise ValueError(f"not JSON (expected ',' or ']', got {sep or 'the end'!r})")
        if reader.next_char():
            raise ValueError("not JSON (more after the list)")
