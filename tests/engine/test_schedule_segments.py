"""Schedules and execution segments, checked against k6's own published expectations,
and shards that add up exactly to the whole run."""

from __future__ import annotations

from fractions import Fraction
from itertools import islice, pairwise

import pytest
from engine_helpers import module, run, scenario
from hypothesis import given, settings
from hypothesis import strategies as st

from indigo_loadtest.engine.plan import Stage
from indigo_loadtest.engine.schedule import (
    constant_arrivals,
    ramping_arrivals,
    ramping_vu_steps,
)
from indigo_loadtest.engine.segment import ExecutionTuple, SegmentError

SEQ = ["0", "0.3", "0.5", "0.6", "0.7", "0.8", "0.9", "1"]


@pytest.mark.parametrize("seq,seg,start,gaps,lcd", [
    (SEQ, ("0", "0.3"), 0, [4, 3, 3], 10),
    (SEQ, ("0.3", "0.5"), 1, [4, 6], 10),
    (SEQ, ("0.5", "0.6"), 2, [10], 10),
    (SEQ, ("0.6", "0.7"), 3, [10], 10),
    (SEQ, ("0.8", "0.9"), 8, [10], 10),
    (SEQ, ("0.9", "1"), 9, [10], 10),
    (["0", "0.2", "0.5", "0.6", "0.7", "0.8", "0.9", "1"], ("0", "0.2"), 1, [4, 6], 10),
])
def test_striped_offsets_match_k6(seq, seg, start, gaps, lcd):
    et = ExecutionTuple(seg[0], seg[1], seq)
    assert et.striped_offsets() == (start, gaps)
    assert et.lcd == lcd


def test_bad_segments_are_rejected():
    with pytest.raises(SegmentError):
        ExecutionTuple("0", "0.2", SEQ)
    with pytest.raises(SegmentError):
        ExecutionTuple("1/2", "1/3")


def _random_sequence(draw_cuts: list[int], denominator: int) -> list[Fraction]:
    cuts = sorted(set(draw_cuts))
    return [Fraction(0), *(Fraction(c, denominator) for c in cuts), Fraction(1)]


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(1, 29), max_size=5), value=st.integers(0, 500))
def test_shares_of_any_sequence_add_up(cuts, value):
    seq = _random_sequence(cuts, 30)
    tuples = [ExecutionTuple(a, b, seq) for a, b in pairwise(seq)]
    assert sum(t.scale(value) for t in tuples) == value
    owned = sorted(i for t in tuples for i in islice(t.indices(), t.scale(value)))
    assert owned == list(range(value))  # every global index exactly once


def test_timeline_resplit_by_max_vus_matches_k6_global_iterations():
    # k6 TestRampingArrivalRateGlobalIters: maxVUs 5, sequence 0,1/4,3/4,1
    seq = ["0", "1/4", "3/4", "1"]
    expected = {("0", "1/4"): [1, 6, 11, 16],
                ("1/4", "3/4"): [0, 2, 4, 5, 7, 9, 10, 12, 14, 15, 17, 19, 20],
                ("3/4", "1"): [3, 8, 13, 18]}
    for (a, b), iters in expected.items():
        et = ExecutionTuple(a, b, seq).for_value(5)
        assert et is not None
        assert list(islice(et.indices(), len(iters))) == iters


RAMP = [Stage(5, 1), Stage(1, 1), Stage(5, 0)]


@pytest.mark.parametrize("time_unit,seg,expected_ms", [
    (1.0, None, [3162, 4472, 5500, 6527, 7837, 11000]),
    (1.0, ("1/3", "2/3"), [4472, 7837]),
    (1.0, ("0", "1/3", "0,1/3,2/3,1"), [3162, 6527]),
    (1.0, ("2/3", "1", "0,1/3,2/3,1"), [5500, 11000]),
    (1 / 3, None, [1825, 2581, 3162, 3651, 4082, 4472, 4830, 5166, 5499, 5833, 6169, 6527,
                   6917, 7348, 7837, 8418, 9174, 10999]),
])
def test_ramping_arrival_times_match_k6(time_unit, seg, expected_ms):
    et = ExecutionTuple() if seg is None else ExecutionTuple(
        seg[0], seg[1], seg[2].split(",") if len(seg) > 2 else None)
    times = list(ramping_arrivals(0, time_unit, RAMP, et))
    assert len(times) == len(expected_ms)
    for got, want in zip(times, expected_ms, strict=True):
        assert got * 1000 == pytest.approx(want, rel=0.001)


ROLLER = [Stage(2, 6), Stage(5, 1), Stage(4, 5), Stage(4, 1), Stage(3, 4), Stage(2, 4),
          Stage(0, 1), Stage(3, 1)]


@pytest.mark.parametrize("seg,expected", [
    (None, [(0, 4), (1, 5), (2, 6), (3, 5), (4, 4), (5, 3), (6, 2), (7, 1), (8, 2), (9, 3),
            (10, 4), (11, 5), (12, 4), (13, 3), (14, 2), (15, 1), (16, 2), (17, 3), (18, 4),
            (20, 1)]),
    (("0", "1/3"), [(0, 1), (1, 2), (4, 1), (7, 0), (8, 1), (11, 2), (12, 1), (15, 0), (16, 1),
                    (20, 0)]),
    (("0", "1/3", "0,1/3,2/3,1"), [(0, 2), (5, 1), (10, 2), (13, 1), (18, 2), (20, 1)]),
    (("2/3", "1", "0,1/3,2/3,1"), [(0, 1), (2, 2), (3, 1), (6, 0), (9, 1), (14, 0), (17, 1),
                                   (20, 0)]),
])
def test_ramping_vu_steps_match_k6(seg, expected):
    et = ExecutionTuple() if seg is None else ExecutionTuple(
        seg[0], seg[1], seg[2].split(",") if len(seg) > 2 else None)
    steps = ramping_vu_steps(4, ROLLER, et)
    assert [(round(t, 6), n) for t, n in steps] == [(float(t), n) for t, n in expected]


def test_ramping_vu_steps_of_shards_add_up_at_every_instant():
    seq = ["0", "1/3", "2/3", "1"]
    shards = [ramping_vu_steps(4, ROLLER, ExecutionTuple(a, b, seq))
              for a, b in pairwise(seq)]
    whole = ramping_vu_steps(4, ROLLER)

    def at(steps, t):
        return [n for ts, n in steps if ts <= t][-1]

    for t in [x / 4 for x in range(0, 23 * 4)]:
        assert sum(at(s, t) for s in shards) == at(whole, t)


def test_constant_arrivals_of_shards_interleave_into_the_whole():
    seq = ["0", "1/4", "1/2", "1"]
    whole = list(constant_arrivals(40, 1.0, 1.0))
    parts = sorted(t for a, b in pairwise(seq)
                   for t in constant_arrivals(40, 1.0, 1.0, ExecutionTuple(a, b, seq)))
    assert len(whole) == 40 and parts == whole


THIRDS = ["0", "1/3", "2/3", "1"]


@pytest.mark.parametrize("executor,kwargs", [
    ("shared-iterations", {"vus": 5, "iterations": 31}),
    ("per-vu-iterations", {"vus": 7, "iterations": 3}),
    ("constant-arrival-rate", {"rate": 100, "duration": 0.25, "pre_allocated_vus": 4}),
    ("ramping-arrival-rate", {"start_rate": 20, "stages": [(0.2, 200)],
                              "pre_allocated_vus": 5}),
])
def test_shard_runs_add_up_to_the_whole_run(executor, kwargs):
    def fn(vu):
        return None

    def total(segment=None):
        result, _, _ = run(scenario(executor, **kwargs), module(default=fn), segment=segment)
        return result.iterations

    whole = total()
    shards = [total(ExecutionTuple(a, b, THIRDS)) for a, b in pairwise(THIRDS)]
    assert whole > 0
    assert sum(shards) == whole


def test_constant_arrivals_count_is_exact_at_high_rates() -> None:
    """rate × duration starts, never one more from a rounded period (1/900000 s rounds
    so that start 1 800 000 would fall at 1.9999999999999998 s of a 2 s test)."""
    from indigo_loadtest.engine.schedule import constant_arrivals

    for rate, duration in ((900_000, 2.0), (3, 10.0), (7, 3.0), (999_983, 1.0)):
        assert sum(1 for _ in constant_arrivals(rate, 1.0, duration)) == round(rate * duration)
