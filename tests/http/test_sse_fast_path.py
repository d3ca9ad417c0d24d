"""The SSE parser's one-event-per-read fast path gives what the general parser gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indigo_loadtest.http.sse import SSELimitError, SSEParser

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


EVENTS = [b"data: {\"i\": %d}\n\n" % i for i in range(6)]
OTHER = [b"data: a\ndata: b\n\n", b"event: x\ndata: y\n\n", b": comment\n\n", b"id: 3\n\n",
         b"data: cr\r\n\r\n", b"data: \xc3\xa9t\xc3\xa9\n\n", b"data:no space\n\n"]


def events(chunks: list[bytes], parser: SSEParser) -> list[tuple[str, str, str, float]]:
    out = []
    for i, chunk in enumerate(chunks):
        out += [tuple(e) for e in parser.feed(chunk, float(i))]
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(EVENTS + OTHER), min_size=1, max_size=12), st.data())
def test_whole_events_per_read_match_the_general_parser(blocks: list[bytes], data) -> None:
    # Reads cut at event boundaries: one whole event (the fast path), or several.
    cuts = data.draw(st.lists(st.integers(0, len(blocks)), max_size=4))
    reads: list[bytes] = []
    start = 0
    for end in sorted({*cuts, len(blocks)}):
        if end > start:
            reads.append(b"".join(blocks[start:end]))
            start = end
    got = events(reads, SSEParser())
    # The general path alone: one read of everything (never the fast path's shape).
    whole = b"".join(blocks) + b"data: end\n\n"
    expected = events([whole], SSEParser())[:-1]
    assert [(e[0], e[1], e[2]) for e in got] == [(e[0], e[1], e[2]) for e in expected]


def test_the_fast_path_keeps_the_event_limit_and_the_event_time() -> None:
    p = SSEParser(max_events=2)
    assert p.feed(b"data: 1\n\n", 1.0)[0].t == 1.0
    assert p.feed(b"data: 2\n\n", 2.0)[0].data == "2"
    with pytest.raises(SSELimitError) as exc:
        p.feed(b"data: 3\n\n", 3.0)
    assert exc.value.code == 1715 and exc.value.events == []


def test_an_event_over_the_size_limit_is_not_taken_by_the_fast_path() -> None:
    p = SSEParser(max_event_size=16)
    p.feed(b"data: ok\n\n", 0.0)
    with pytest.raises(SSELimitError) as exc:
        p.feed(b"data: " + b"x" * 20 + b"\n\n", 1.0)
    assert exc.value.code == 1714


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(EVENTS + OTHER + [b"data: [DONE]\n\n"]), min_size=1,
                max_size=10))
def test_single_data_is_the_fast_path_event_undecoded(reads: list[bytes]) -> None:
    # `single_data` takes exactly the reads `feed` takes by its fast path, with the
    # same count and id; the others it leaves for `feed`, changing nothing.
    fast, general = SSEParser(), SSEParser()
    for i, read in enumerate(reads):
        expected = general.feed(read, float(i))
        data = fast.single_data(read)
        if data is None:
            got = fast.feed(read, float(i))
        else:
            got = [("message", data.decode("utf-8", "replace"), fast.last_id, float(i))]
        assert [tuple(e) for e in got] == [tuple(e) for e in expected]
    assert fast._count == general._count


def test_single_data_keeps_the_event_limit() -> None:
    p = SSEParser(max_events=2)
    assert p.single_data(b"data: 0\n\n") is None  # the stream's start: feed it
    assert p.feed(b"data: 0\n\n", 0.0)[0].data == "0"
    assert p.single_data(b"data: 1\n\n") == b"1"
    assert p.single_data(b"data: a\ndata: b\n\n") is None  # not one line: feed it
    with pytest.raises(SSELimitError) as exc:
        p.single_data(b"data: 2\n\n")
    assert exc.value.code == 1715


def test_a_chunk_that_is_not_bytes_gives_the_same_events() -> None:
    """A bytearray or memoryview (from a caller's own chunks) is parsed like bytes, by the
    general path (the compiled fast path takes bytes only)."""
    chunks = [b"data: 0\n\n", *EVENTS, *OTHER]
    want = events(chunks, SSEParser())
    assert events([bytearray(c) for c in chunks], SSEParser()) == want
    p = SSEParser()
    p.feed(b"data: 0\n\n", 0.0)
    assert p.single_data(bytearray(b"data: 1\n\n")) is None
    assert p.single_data(b"data: 1\n\n") == b"1"


def test_limits_beyond_64_bits_are_limits_still() -> None:
    """Any positive whole number is a valid limit (http/limits.py); the compiled parser
    holds it as the Python int it is."""
    p = SSEParser(max_event_size=10**30, max_events=10**30)
    assert [e.data for e in p.feed(b"data: 0\n\ndata: 1\n\n", 0.0)] == ["0", "1"]
    assert p.single_data(b"data: 2\n\n") == b"2"
    assert p.max_event_size == 10**30
