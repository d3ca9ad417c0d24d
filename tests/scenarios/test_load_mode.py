"""Load mode through the real CLI against the embedded simulator: the two open-loop
arrival-rate scenarios reach their rates, every llm_* metric is recorded and agrees
with the simulator's timing, pooled guests stay fresh, and faults are counted while
the run goes on. Each run lasts DURATION_MIN=0.1 (6 s)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from .helpers import run_scenario

DURATION_S = 6.0
LLM_TRENDS = ("llm_ttft_ms", "llm_itl_ms", "llm_tpot_ms", "llm_tokens_per_sec",
              "llm_output_tokens", "llm_ttfb_ms", "llm_receiving_ms", "llm_total_ms",
              "llm_queue_ms")


def test_arrival_rates_metrics_and_timing_truth(tmp_path: Path) -> None:
    nonstream_rps, stream_rps = 5.0, 3.0
    ttft_ms, tokens_per_sec, tokens = 150.0, 50.0, 10
    run = run_scenario(
        "test-completion-standard", tmp_path, raw=True, DURATION_MIN="0.1",
        NONSTREAM_RPS=str(nonstream_rps), STREAM_RPS=str(stream_rps),
        INDIGO_SIM_TTFT_MS=str(ttft_ms), INDIGO_SIM_TOKENS_PER_SEC=str(tokens_per_sec),
        INDIGO_SIM_REPLY_TOKENS=str(tokens))
    assert run.returncode == 0, run.stderr + run.stdout

    # Open loop: iterations start at the configured rates (±1 at the edges).
    started = run.count_by_tag("iterations", "scenario")
    assert started["nonstream"] == pytest.approx(nonstream_rps * DURATION_S, abs=2)
    assert started["stream"] == pytest.approx(stream_rps * DURATION_S, abs=2)
    assert run.metric("dropped_iterations").get("count", 0) == 0
    assert run.metric("checks")["value"] == 1.0

    for name in LLM_TRENDS:
        assert run.samples(name), name
    by_step = run.values_by_tag("llm_total_ms", "scenario")
    assert set(by_step) == {"completion_nonstream", "completion_stream"}
    (tags,) = {tuple(sorted(s["tags"])) for s in run.samples("llm_ttft_ms")}
    assert {"scenario", "status", "prompt", "testid", "test_case"} <= set(tags)

    # At low concurrency the measured timing is the simulator's within a few ms.
    ttfts = [s["value"] for s in run.samples("llm_ttft_ms")]
    assert len(ttfts) == started["stream"]
    assert statistics.median(ttfts) == pytest.approx(ttft_ms, abs=5)
    itls = [s["value"] for s in run.samples("llm_itl_ms")]
    assert len(itls) == len(ttfts) * (tokens - 1)
    assert statistics.median(itls) == pytest.approx(1000 / tokens_per_sec, abs=2)
    assert all(s["value"] == tokens for s in run.samples("llm_output_tokens"))


def test_pooled_guests_are_refreshed_before_their_tokens_expire(tmp_path: Path) -> None:
    # Access tokens live 3 s; the pool refreshes any lent session within 1.5 s of expiry.
    run = run_scenario(
        "test-completion-standard", tmp_path, raw=True, DURATION_MIN="0.1", NONSTREAM_RPS="4",
        STREAM_RPS="2", SESSION_MODE="pool", REFRESH_MARGIN_S="1.5",
        INDIGO_SIM_TOKEN_EXPIRY_S="3", INDIGO_SIM_TTFT_MS="20",
        INDIGO_SIM_TOKENS_PER_SEC="200")
    assert run.returncode == 0, run.stderr + run.stdout
    assert run.metric("checks")["value"] == 1.0
    assert run.metric("http_req_failed")["value"] == 0
    iterations = run.metric("iterations")["count"]
    logins = len(run.samples("guest_login_time_ms"))
    refreshes = len(run.samples("refresh_token_time_ms"))
    assert logins < iterations / 3  # guests are reused across iterations
    assert refreshes > logins  # each login's own refresh, plus refreshes before expiry


def test_faults_are_counted_and_the_run_goes_on(tmp_path: Path) -> None:
    stream_rps = 5.0
    run = run_scenario(
        "test-completion-standard", tmp_path, raw=True, DURATION_MIN="0.1",
        NONSTREAM_RPS="1", STREAM_RPS=str(stream_rps), INDIGO_SIM_SEED="7",
        INDIGO_SIM_DROP_RATE="0.15", INDIGO_SIM_MALFORMED_RATE="0.15",
        INDIGO_SIM_RATE_LIMIT_RATE="0.15", INDIGO_SIM_TTFT_MS="20",
        INDIGO_SIM_TOKENS_PER_SEC="200")
    # http_req_failed crosses its 5% threshold: k6's exit code for failed thresholds.
    assert run.returncode == 99, run.stderr + run.stdout
    reasons = run.count_by_tag("llm_errors", "reason")
    assert reasons["incomplete"] > 0  # streams cut mid-way
    assert reasons["malformed_json"] > 0
    assert reasons["http_status"] > 0  # 429s
    failed = [s for s in run.samples("http_req_failed") if s["value"]]
    assert {s["tags"]["status"] for s in failed} >= {"200", "429"}
    assert any(s["tags"].get("error") for s in failed)  # the cut streams
    started = run.count_by_tag("iterations", "scenario")
    assert started["stream"] == pytest.approx(stream_rps * DURATION_S, abs=2)


@pytest.mark.parametrize(("scenario", "llm_steps"), [
    ("test-completion-conversation", {"conversation_nonstream", "conversation_stream"}),
    ("test-responses", {"response_nonstream", "response_stream"}),
])
def test_other_flows_under_load(scenario: str, llm_steps: set[str], tmp_path: Path) -> None:
    rps, duration_s = 3.0, 3.0
    run = run_scenario(scenario, tmp_path, raw=True, DURATION_MIN=str(duration_s / 60),
                       NONSTREAM_RPS=str(rps), STREAM_RPS=str(rps), INDIGO_SIM_TTFT_MS="30",
                       INDIGO_SIM_TOKENS_PER_SEC="300")
    assert run.returncode == 0, run.stderr + run.stdout
    assert run.metric("checks")["value"] == 1.0
    started = run.count_by_tag("iterations", "scenario")
    assert started["nonstream"] == pytest.approx(rps * duration_s, abs=2)
    assert started["stream"] == pytest.approx(rps * duration_s, abs=2)
    assert set(run.values_by_tag("llm_total_ms", "scenario")) == llm_steps
    streamed = {s["tags"]["scenario"] for s in run.samples("llm_ttft_ms")}
    assert streamed == {step for step in llm_steps if step.endswith("_stream")}
    if scenario == "test-responses":  # iterations alternate: without and with the tool
        prompts = run.values_by_tag("llm_ttft_ms", "prompt")
        assert set(prompts) == {"no_tools", "with_tools"}
