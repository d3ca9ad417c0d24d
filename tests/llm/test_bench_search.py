"""The sweep's and the max-rate search's logic (bench_cli.run_sweep / run_find, the
knee, the SLO answer, the exit code and the terminal's lines), driven with a deterministic
model of a server in place of real runs: each point's figures computed from its offered
load. The real runs of these modes are in tests/cli/test_bench.py (one sweep, one search)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from indigo_loadtest.llm.bench_answers import knee
from indigo_loadtest.llm.bench_cli import (
    Bench,
    SaturationWatch,
    final_exit_code,
    run_find,
    run_sweep,
)
from indigo_loadtest.llm.bench_report import report_lines, results_doc
from indigo_loadtest.llm.benchmark import BenchSpec
from indigo_loadtest.llm.slo import parse_slos, point_verdicts
from indigo_loadtest.run import Console
from indigo_loadtest.scenario.errors import ExitCode

SERVICE_S = 0.140  # one request alone: 2 slots give at most 2 / 0.14 = 14.3 requests/s
TTFT_MS = 50.0  # unloaded
QUEUE_MS = 20.0


class Server:
    """`slots` requests served at once, SERVICE_S each. The first token waits TTFT_MS,
    plus QUEUE_MS × ρ / (1 - ρ) at an offered rate of utilisation ρ, plus the queue's
    turns in a closed loop of more requests than slots; an offered rate of `drops_at` ×
    capacity or more drops requests (over-saturated). The point `interrupted` is cut
    short by a signal."""

    def __init__(self, slots: int = 2, drops_at: float = math.inf,
                 interrupted: str = "") -> None:
        self.slots, self.drops_at, self.interrupted = slots, drops_at, interrupted
        self.watched: list[str] = []  # the points measured with a saturation watch

    def capacity(self) -> float:
        return self.slots / SERVICE_S

    def __call__(self, bench: Bench, spec: BenchSpec, console: Any,
                 watch: SaturationWatch | None) -> dict[str, Any]:
        if watch is not None:
            self.watched.append(spec.label)
        if spec.profile == "synchronous":
            rate, ttft = 1 / SERVICE_S, TTFT_MS
        elif spec.profile == "throughput":
            in_flight = min(spec.max_concurrency, self.slots)
            queued = spec.max_concurrency - in_flight
            rate = in_flight / SERVICE_S
            ttft = TTFT_MS + queued / self.slots * SERVICE_S * 1000
        else:
            rho = min(spec.rate / self.capacity(), 0.99)
            rate, ttft = spec.rate, TTFT_MS + QUEUE_MS * rho / (1 - rho)
        dropped = 3 if spec.rate >= self.drops_at * self.capacity() else 0
        return figures(spec, bench, rate, ttft, dropped, watch, spec.label == self.interrupted)


def latency(p50: float) -> dict[str, Any]:
    return {"p50": p50, "p90": p50 * 1.5, "p99": p50 * 2, "count": 20}


def figures(spec: BenchSpec, bench: Bench, rate: float, ttft: float, dropped: int,
            watch: SaturationWatch | None, interrupted: bool) -> dict[str, Any]:
    """A point as bench_figures.point_figures and run_point give it (the keys read by the
    sweep, the search, the knee and the report)."""
    lat = {"ttft_ms": latency(ttft), "tpot_ms": latency(10.0), "itl_ms": latency(10.0),
           "e2el_ms": latency(ttft + 90)}
    slo = point_verdicts(bench.objectives, {k[:-3]: v for k, v in lat.items()})
    saturated = "3 request(s) dropped, --max-concurrency in flight" \
        if dropped and watch is not None else None
    return {"label": spec.label, "profile": spec.profile,
            "offered_rate": spec.rate or None, "request_rate": rate, "requests": 20,
            "completed": 20, "failed": 0, "error_rate": 0.0, "dropped": dropped,
            "output_throughput": rate * 10, "total_token_throughput": rate * 30,
            "mean_concurrency": 1.0, "schedule_delay_ms": latency(1.0), "goodput": rate,
            "token_counts": "usage", "prompt_token_counts": "estimate", "failures": {},
            **lat, "slo": slo, "slo_support": [],
            "meets_slo": all(v["ok"] for v in slo) and not dropped and not saturated
            and not interrupted, "saturated": saturated, "interrupted": interrupted,
            "exit_code": ExitCode.EXTERNAL_ABORT if interrupted else 0}


def make_bench(tmp_path: Path, mode: str, *, slo: str = "", sweep_rates: int = 2,
               find_steps: int = 2, max_concurrency: int = 8) -> Bench:
    spec = BenchSpec(model="m", duration="3s", max_concurrency=max_concurrency, slos=slo)
    settings = SimpleNamespace(env={"BASE": "http://127.0.0.1:1"})
    return Bench(spec, settings, mode, parse_slos(slo or None), sweep_rates, find_steps,
                 tmp_path / "bench.json", {}, "synthetic")


def console() -> Console:
    return Console(io.StringIO(), io.StringIO())


def test_a_sweep_measures_rates_evenly_between_its_bounds_and_finds_the_knee(
        tmp_path: Path) -> None:
    server = Server(slots=2)
    bench = make_bench(tmp_path, "sweep", sweep_rates=3)
    run_sweep(bench, console(), server)
    points = {p["label"]: p for p in bench.points}
    assert list(points) == ["synchronous", "throughput", "rate-1", "rate-2", "rate-3"]
    low, top = points["synchronous"]["request_rate"], points["throughput"]["request_rate"]
    assert top == pytest.approx(server.capacity())
    offered = [points[f"rate-{k}"]["offered_rate"] for k in (1, 2, 3)]
    assert offered == pytest.approx([low + (top - low) * k / 4 for k in (1, 2, 3)])
    assert server.watched == ["rate-1", "rate-2", "rate-3"]  # open-loop points only
    # KNEE_RULE: a median TTFT within 2x the unloaded one (100 ms). rate-1: ρ 0.625,
    # TTFT 83 ms, kept up; rate-2: ρ 0.75, 110 ms, did not.
    found = knee(bench.points)
    assert found is not None and (found["label"], found["next"]) == ("rate-1", "rate-2")
    doc = results_doc(bench, None)
    assert doc["knee"] == pytest.approx(offered[0]) and doc["knee"] < top
    saved = (tmp_path / "bench.json").read_text()  # written after each point
    assert '"incomplete: written after point rate-3' in saved
    assert any(line.startswith("  knee: ") for line in report_lines(bench, None))


def test_an_over_saturated_rate_ends_the_sweep(tmp_path: Path) -> None:
    out = console()
    bench = make_bench(tmp_path, "sweep", sweep_rates=2)
    run_sweep(bench, out, Server(slots=2, drops_at=0.6))  # rate-1 is at 0.67 of capacity
    assert [p["label"] for p in bench.points] == ["synchronous", "throughput", "rate-1"]
    assert bench.points[-1]["saturated"].endswith("dropped, --max-concurrency in flight")
    assert "rate-1 over-saturated: the 1 higher rate(s) are skipped" in out.err.getvalue()
    assert results_doc(bench, None)["knee"] is None  # no rate kept up
    lines = report_lines(bench, None)
    assert any(x.startswith("  rate-1: over-saturated, stopped early") for x in lines)


def test_a_sweep_with_nothing_between_its_bounds_measures_no_rate(tmp_path: Path) -> None:
    out = console()
    bench = make_bench(tmp_path, "sweep", max_concurrency=1)  # throughput = synchronous
    run_sweep(bench, out, Server(slots=2))
    assert [p["label"] for p in bench.points] == ["synchronous", "throughput"]
    assert "no rates between them to measure" in out.err.getvalue()


def test_the_search_bisects_to_the_highest_rate_meeting_the_slo(tmp_path: Path) -> None:
    # TTFT p99 = 2 × (50 + 20 ρ / (1 - ρ)) ms < 300 ms while ρ < 5/6: up to 11.9/s
    server, steps = Server(slots=2), 5
    bench = make_bench(tmp_path, "find", slo="ttft:p99<300ms", find_steps=steps)
    answer = run_find(bench, console(), server)
    points = {p["label"]: p for p in bench.points}
    assert list(points) == ["synchronous", "throughput", *(f"search-{k}"
                                                          for k in range(1, steps + 1))]
    low, high = points["synchronous"]["request_rate"], points["throughput"]["request_rate"]
    for k in range(1, steps + 1):  # each rate halves the bracket the points before left
        rate = points[f"search-{k}"]["offered_rate"]
        assert rate == pytest.approx((low + high) / 2)
        low, high = (rate, high) if points[f"search-{k}"]["meets_slo"] else (low, rate)
    limit = server.capacity() * 5 / 6
    assert answer["max_rate"] == low < limit < answer["above"] == high
    assert answer["above"] - answer["max_rate"] == pytest.approx(
        (server.capacity() - 1 / SERVICE_S) / 2 ** steps)
    assert answer["uncertainty"] == pytest.approx((answer["above"] - answer["max_rate"]) / 2)
    assert points[answer["point"]]["meets_slo"]
    assert not points[answer["above_point"]]["meets_slo"]
    assert server.watched == [f"search-{k}" for k in range(1, steps + 1)]
    lines = report_lines(bench, answer)
    assert f"  max rate meeting the SLO: {answer['max_rate']:.4g} req/s" in "\n".join(lines)
    # --fail-below: the CI gate, judged on the answer
    code, problem = final_exit_code(bench, answer, 100)
    assert code == ExitCode.THRESHOLDS_FAILED and problem is not None
    assert f"({answer['max_rate']:.4g} req/s) is below --fail-below 100" in problem
    assert final_exit_code(bench, answer, 5) == (ExitCode.OK, None)


def test_an_over_saturated_search_point_misses_the_slo(tmp_path: Path) -> None:
    # dropping from 0.7 of capacity: the first midpoint (0.75, TTFT p99 220 ms) misses
    # the SLO for it
    bench = make_bench(tmp_path, "find", slo="ttft:p99<300ms", find_steps=1)
    answer = run_find(bench, console(), Server(slots=2, drops_at=0.7))
    assert answer["point"] == "synchronous" and answer["above_point"] == "search-1"
    assert bench.points[-1]["dropped"] and bench.points[-1]["ttft_ms"]["p99"] < 10_000


def test_an_interrupted_search_answers_with_what_it_measured(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, "find", slo="ttft:p99<300ms", find_steps=4)
    answer = run_find(bench, console(), Server(slots=2, interrupted="search-2"))
    assert [p["label"] for p in bench.points][-1] == "search-2"  # no point after it
    assert answer["point"] == "search-1"  # the bracket search-1 left
    assert bench.exit_code == ExitCode.EXTERNAL_ABORT


def test_a_search_where_every_rate_meets_the_slo_says_at_least(tmp_path: Path) -> None:
    """docs/guarantees.md: the limit lies above what --max-concurrency reached."""
    from indigo_loadtest.report.sweep import write_sweep_report

    bench = make_bench(tmp_path, "find", slo="ttft:p99<10s", max_concurrency=2)
    answer = run_find(bench, console(), Server(slots=2))
    assert answer["at_least"] and answer["above"] is None and answer["point"] == "throughput"
    assert [p["label"] for p in bench.points] == ["synchronous", "throughput"]
    shown = f"{answer['max_rate']:.4g} req/s"
    assert f"  max rate meeting the SLO: at least {shown}" in "\n".join(
        report_lines(bench, answer))
    assert final_exit_code(bench, answer, None) == (ExitCode.OK, None)
    html = write_sweep_report(tmp_path / "bench.html", results_doc(bench, answer))
    assert f"is at least {shown}" in html.read_text()


def test_a_search_with_no_rate_meeting_the_slo_fails(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, "find", slo="ttft:p99<1ms")
    answer = run_find(bench, console(), Server(slots=2))
    assert answer["max_rate"] is None and [p["label"] for p in bench.points] == ["synchronous"]
    code, problem = final_exit_code(bench, answer, None)
    assert code == ExitCode.THRESHOLDS_FAILED
    assert problem == ("no rate meets the SLO: the unloaded (synchronous) point misses the "
                       "SLO")
