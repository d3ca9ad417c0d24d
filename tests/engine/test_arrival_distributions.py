"""Poisson and gamma arrivals of constant-arrival-rate (vLLM's --burstiness)."""

from __future__ import annotations

import statistics
from itertools import pairwise

import pytest

from indigo_loadtest.engine.schedule import gamma_arrivals
from indigo_loadtest.engine.segment import ExecutionTuple
from indigo_loadtest.scenario.errors import ScenarioError
from indigo_loadtest.scenario.options import parse_options


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in pairwise(times)]


def test_poisson_gaps_have_mean_one_over_rate_and_unit_cv() -> None:
    times = list(gamma_arrivals(5.0, 1.0, 4000.0, seed=1))
    assert times[0] == 0.0
    g = gaps(times)
    assert len(times) == pytest.approx(20000, rel=0.03)
    assert statistics.fmean(g) == pytest.approx(0.2, rel=0.03)
    assert statistics.pstdev(g) / statistics.fmean(g) == pytest.approx(1.0, rel=0.05)


def test_burstiness_sets_the_spread_not_the_rate() -> None:
    # Gamma of shape k: coefficient of variation 1/sqrt(k).
    for burstiness, cv in ((0.25, 2.0), (4.0, 0.5)):
        g = gaps(list(gamma_arrivals(10.0, 1.0, 2000.0, burstiness=burstiness, seed=2)))
        assert statistics.fmean(g) == pytest.approx(0.1, rel=0.05)
        assert statistics.pstdev(g) / statistics.fmean(g) == pytest.approx(cv, rel=0.08)


def test_seeded_timeline_repeats_and_shards_partition_it() -> None:
    full = list(gamma_arrivals(20.0, 1.0, 30.0, seed=7))
    assert full == list(gamma_arrivals(20.0, 1.0, 30.0, seed=7))
    assert full != list(gamma_arrivals(20.0, 1.0, 30.0, seed=8))
    seq = ["0", "1/3", "2/3", "1"]
    parts = [list(gamma_arrivals(20.0, 1.0, 30.0, ExecutionTuple(a, b, seq), seed=7))
             for a, b in pairwise(seq)]
    assert sorted(t for part in parts for t in part) == full
    assert all(parts)


def test_time_unit_scales_the_rate() -> None:
    per_minute = list(gamma_arrivals(60.0, 60.0, 100.0, seed=3))
    per_second = list(gamma_arrivals(1.0, 1.0, 100.0, seed=3))
    assert per_minute == pytest.approx(per_second)


def scenario(**extra: object) -> dict[str, object]:
    return {"scenarios": {"s": {"executor": "constant-arrival-rate", "rate": 5,
                                "duration": "1s", "preAllocatedVUs": 1, **extra}}}


def test_options_accept_arrivals_burstiness_and_seed() -> None:
    sc = parse_options(scenario(arrivals="gamma", burstiness=0.5, seed=4)).plan.scenarios[0]
    assert (sc.arrivals, sc.burstiness, sc.seed) == ("gamma", 0.5, 4)
    plain = parse_options(scenario()).plan.scenarios[0]
    assert plain.arrivals == "constant"


@pytest.mark.parametrize("extra,message", [
    ({"arrivals": "uniform"}, "arrivals: expected one of constant, poisson, gamma"),
    ({"arrivals": "poisson", "burstiness": 2}, "burstiness: only for arrivals 'gamma'"),
    ({"arrivals": "gamma", "burstiness": 0}, "burstiness: must be more than 0"),
])
def test_bad_arrival_options(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_options(scenario(**extra))
