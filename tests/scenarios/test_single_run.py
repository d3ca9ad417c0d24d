"""SINGLE_RUN=true: each built-in scenario's functional flow passes every check of the
original scripts against the embedded simulator, through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import run_scenario

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


LOGIN = ["guest login status 200", "guest login has access_token",
         "refresh token status 200", "refresh token has access_token"]
EXPECTED = {
    "test-completion-standard": ([*LOGIN,
        "models status 200", "models has data", "models includes target model",
        "completion status 200", "completion has choices", "completion has content",
        "streaming status 200", "streaming has content", "streaming is event-stream",
    ], ["guest_login_time_ms", "refresh_token_time_ms", "models_time_ms",
        "completion_time_ms", "streaming_time_ms"], "completion"),
    "test-completion-conversation": ([*LOGIN,
        "create conversation status 2xx", "create conversation has id",
        "conversation completion status 200", "conversation completion has choices",
        "streaming completion status 200", "streaming completion has content",
        "streaming completion is event-stream",
        "get conversation status 200", "get conversation has data",
        "list conversations status 200", "list conversations has data",
        "get items status 200", "get items has data",
    ], ["guest_login_time_ms", "refresh_token_time_ms", "conversation_time_ms",
        "completion_time_ms", "list_conversations_time_ms", "conversation_items_time_ms"],
        "conversation"),
    "test-responses": ([*LOGIN,
        "response non-stream status 200", "response non-stream has content",
        "response tools status 200", "response tools has content",
        "response stream status 200", "response stream has content",
        "response stream is event-stream",
        "response stream tools status 200", "response stream tools has content",
        "response stream tools is event-stream",
    ], ["guest_login_time_ms", "refresh_token_time_ms", "response_time_ms",
        "response_time_with_tools_ms", "response_stream_time_ms",
        "response_stream_time_with_tools_ms"], "response"),
}


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_functional_flow_passes_every_check(scenario: str, tmp_path: Path) -> None:
    checks, trends, prefix = EXPECTED[scenario]
    run = run_scenario(scenario, tmp_path, raw=True, SINGLE_RUN="true")
    assert run.returncode == 0, run.stderr + run.stdout
    found = run.checks()
    assert set(checks) <= set(found), sorted(set(checks) - set(found))
    failed = {name: c for name, c in found.items() if c["fails"]}
    assert not failed, failed
    assert run.metric("checks")["value"] == 1.0
    for trend in trends:
        assert run.samples(trend), trend
    assert run.metric(f"{prefix}_errors").get("count", 0) == 0
    assert run.metric(f"{prefix}_successes")["count"] >= len(trends) - 1
    assert run.metric("http_req_failed")["value"] == 0
    # Streamed steps were measured event by event.
    assert run.samples("llm_ttft_ms") and run.samples("llm_itl_ms")
    # The step log never shows a token.
    assert "eyJ" not in run.stderr + run.stdout


def test_unreachable_target_fails_the_flow_with_the_network_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = run_scenario("test-completion-standard", tmp_path, raw=True,
                       SINGLE_RUN="true", BASE=f"http://127.0.0.1:{port}")
    assert run.returncode == 99  # http_req_failed rate<0.05 crossed
    assert "[GUEST LOGIN] ❌ Failed (status 0): dial: connection refused" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    failed = run.samples("http_req_failed")
    assert failed and all(s["value"] == 1 for s in failed)
    assert {s["tags"].get("error") for s in failed} == {"dial: connection refused"}
