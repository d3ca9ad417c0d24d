"""Rates are taken on the load's own clock (docs/metrics.md, "The load clock"): from the
common start of the scenarios to their end, whatever runs them. The same arrival-rate
plan gives the same rates with one process and with two workers, although the workers
take a second or more to start; and the run record's series neither starts with
intervals emptied by that start-up nor ends with an interval holding more than its
width's share of the requests."""

from __future__ import annotations

from pathlib import Path

from rate_helpers import assert_same_rates, assert_series_paced, run_arrivals


def test_rates_do_not_depend_on_the_workers(workdir: Path, simulator_url: str) -> None:
    runs = {name: run_arrivals(workdir, simulator_url, name, "--workers", workers)
            for name, workers in (("one", "1"), ("two", "2"))}
    assert_same_rates(runs)
    for run in runs.values():
        assert_series_paced(run["record"])
