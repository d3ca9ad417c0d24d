"""Execution segments: one process's exact share of a test (k6's `--execution-segment`).

A test split over N processes runs, in process i, the segment `(a, b]` of a sequence
`0 = s0 < s1 < ... < sN = 1`. Every countable thing (VUs, iterations, arrival-rate
starts) is a sequence of global indices 0, 1, 2, ...; k6's striping algorithm deals
those indices to the segments in a pattern that repeats every `lcd` indices (the
least common denominator of the segment lengths), spread as evenly as possible. So
each process takes exactly its share, and the shares of all processes add up to the
whole, index by index.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction
from functools import cached_property
from itertools import pairwise
from math import lcm


class SegmentError(ValueError):
    """A malformed execution segment or sequence."""


def _fraction(value: Fraction | float | int | str) -> Fraction:
    if isinstance(value, str) and value.endswith("%"):
        return Fraction(value[:-1]) / 100
    return Fraction(value)


class ExecutionTuple:
    """A segment together with the full sequence it belongs to (k6's ExecutionTuple)."""

    def __init__(self, start: Fraction | float | str = 0, end: Fraction | float | str = 1,
                 sequence: Sequence[Fraction | float | str] | None = None) -> None:
        self.start = _fraction(start)
        self.end = _fraction(end)
        if not 0 <= self.start < self.end <= 1:
            raise SegmentError(f"invalid execution segment {self.start}:{self.end}")
        points = [_fraction(p) for p in sequence] if sequence else [self.start, self.end]
        if points[0] != 0:
            points.insert(0, Fraction(0))
        if points[-1] != 1:
            points.append(Fraction(1))
        if any(b <= a for a, b in pairwise(points)):
            raise SegmentError("execution segment sequence must be strictly increasing")
        bounds = list(pairwise(points))
        if (self.start, self.end) not in bounds:
            raise SegmentError(f"segment {self.start}:{self.end} is not in the sequence")
        self.sequence = tuple(points)
        self.index = bounds.index((self.start, self.end))

    @property
    def is_full(self) -> bool:
        return self.start == 0 and self.end == 1

    @cached_property
    def _striping(self) -> tuple[int, list[list[int]]]:
        return _stripe([b - a for a, b in pairwise(self.sequence)])

    @property
    def lcd(self) -> int:
        return self._striping[0]

    def striped_offsets(self) -> tuple[int, list[int]]:
        """(first global index of this segment, the gaps to each next one, cyclic)."""
        offsets = self._striping[1][self.index]
        return offsets[0], offsets[1:]

    def indices(self) -> Iterator[int]:
        """This segment's global indices 0.., in increasing order (endless)."""
        start, gaps = self.striped_offsets()
        i, k, n = start, 0, len(gaps)
        while True:
            yield i
            i += gaps[k]
            k = k + 1 if k + 1 < n else 0

    def scale(self, value: int) -> int:
        """How many of the global indices 0..value-1 belong to this segment."""
        if self.is_full:
            return value
        start, gaps = self.striped_offsets()
        result = (value // self.lcd) * len(gaps)
        rest, i, k = value % self.lcd, start, 0
        while i < rest:
            result += 1
            i += gaps[k]
            k += 1
        return result

    def owns(self, index: int) -> bool:
        """True if global index `index` belongs to this segment."""
        return self.scale(index + 1) - self.scale(index) == 1

    def for_value(self, value: int) -> ExecutionTuple | None:
        """The tuple of this segment in the sequence re-split by `value` (k6's
        GetNewExecutionTupleFromValue): segment i gets length scale_i(value)/value.
        None if this segment's share of `value` is zero."""
        if value < 1 or self.scale(value) == 0:
            return None
        if self.is_full or value % self.lcd == 0:
            return self
        points, mine, prev = [Fraction(0)], None, 0
        for i in range(len(self.sequence) - 1):
            share = ExecutionTuple(self.sequence[i], self.sequence[i + 1], self.sequence)
            n = share.scale(value)
            if n == 0:
                continue
            if i == self.index:
                mine = (Fraction(prev, value), Fraction(prev + n, value))
            prev += n
            points.append(Fraction(prev, value))
        assert mine is not None
        return ExecutionTuple(mine[0], mine[1], points)

    def __repr__(self) -> str:
        seq = ",".join(str(p) for p in self.sequence)
        return f"ExecutionTuple({self.start}:{self.end} of {seq})"


FULL = ExecutionTuple()


def _stripe(lengths: list[Fraction]) -> tuple[int, list[list[int]]]:
    """k6's striping: per segment [first index, gap, gap, ...] over one lcd cycle."""
    lcd = 1
    for length in lengths:
        lcd = lcm(lcd, length.denominator)
    norm = [int(length * lcd) for length in lengths]
    # Biggest segments choose first: they are the hardest to keep non-consecutive.
    order = sorted(range(len(lengths)), key=lambda i: -norm[i])
    offsets: list[list[int]] = [[] for _ in lengths]
    prev = [0] * len(lengths)
    chosen = [0] * len(lengths)
    for i in range(lcd):
        for pos, seg in enumerate(order):
            num, den = chosen[pos] * lcd, norm[seg]
            if i > num // den or (i == num // den and num % den == 0):
                chosen[pos] += 1
                offsets[seg].append(i - prev[seg])
                prev[seg] = i
                if len(offsets[seg]) == norm[seg]:
                    offsets[seg].append(offsets[seg][0] + lcd - i)
                break
    return lcd, offsets
