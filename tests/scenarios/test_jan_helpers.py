"""The Jan helpers' configuration, headers and cookie handling, and secrets kept out of
the output of a real run."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest

from indigo_loadtest.http.response import Headers
from indigo_loadtest.jan import Flow, JanConfig, JanConfigError, Session, refresh_token_from
from indigo_loadtest.jan.metrics import FlowMetrics
from indigo_loadtest.metrics import Registry, set_active_registry

from .helpers import run_scenario


@pytest.fixture
def metrics() -> FlowMetrics:
    set_active_registry(Registry())
    return FlowMetrics("t")


def test_refresh_token_is_read_from_any_set_cookie_header() -> None:
    headers = Headers([("Set-Cookie", "other=1; Path=/"),
                       ("Set-Cookie", "jan_refresh_token=abc.def; Path=/; HttpOnly")])
    assert refresh_token_from(headers) == "abc.def"
    assert refresh_token_from(Headers([("Content-Type", "text/plain")])) == ""


def test_headers_bearer_precedence_and_loadtest_token(metrics: FlowMetrics) -> None:
    cfg = JanConfig(base="http://127.0.0.1:1", api_key="key-1", loadtest_token="lt-1")
    session = Session(cfg, metrics)
    assert session.headers() == {"Content-Type": "application/json",
                                 "Authorization": "Bearer key-1", "x-loadtest-token": "lt-1"}
    session.access_token = "access-1"
    assert session.headers()["Authorization"] == "Bearer access-1"
    assert "access-1" not in repr(session)


def test_refresh_modes(metrics: FlowMetrics) -> None:
    always = Session(JanConfig(base="", refresh="always"), metrics)
    expiry = Session(JanConfig(base="", refresh="expiry", refresh_margin=60), metrics)
    always.expires_at = expiry.expires_at = time.monotonic() + 3600
    assert always.needs_refresh() and not expiry.needs_refresh()
    expiry.expires_at = time.monotonic() + 30  # inside the margin
    assert expiry.needs_refresh()


def test_config_defaults_follow_single_run() -> None:
    single = JanConfig.from_env({"BASE": "http://h/", "SINGLE_RUN": "true"})
    assert single.base == "http://h" and single.refresh == "always" and single.verbose
    load = JanConfig.from_env({"BASE": "http://h"})
    assert load.refresh == "expiry" and load.session_mode == "new" and not load.verbose
    with pytest.raises(JanConfigError, match="SESSION_MODE"):
        JanConfig.from_env({"SESSION_MODE": "shared"})


def test_load_options_are_two_arrival_rate_scenarios(metrics: FlowMetrics) -> None:
    flow = Flow("case", "c", {"x_time_ms": "p(95)<5"},
                env={"DURATION_MIN": "0.5", "NONSTREAM_RPS": "2.5", "STREAM_RPS": "0"})
    opts = flow.options()
    assert set(opts["scenarios"]) == {"nonstream"}  # a zero rate runs nothing
    sc = opts["scenarios"]["nonstream"]
    assert (sc["executor"], sc["exec"], sc["rate"], sc["duration"]) == (
        "constant-arrival-rate", "nonstream", 2.5, 30.0)
    assert opts["thresholds"]["x_time_ms"] == ["p(95)<5"]
    assert opts["thresholds"]["http_req_failed"] == ["rate<0.05"]
    assert opts["tags"] == {"test_case": "case"}
    single = Flow("case", "c", {}, env={"SINGLE_RUN": "1"}).options()
    assert (single["vus"], single["iterations"]) == (1, 1) and "scenarios" not in single


def test_secrets_never_reach_the_output(tmp_path: Path) -> None:
    secret = "lt-secret-7f3a9c"
    run = run_scenario("test-completion-standard", tmp_path, raw=True, SINGLE_RUN="true",
                       DEBUG="true", LOADTEST_TOKEN=secret)
    assert run.returncode == 0, run.stderr + run.stdout
    assert "x-loadtest-token" in run.stdout + run.stderr.lower()  # DEBUG printed requests
    produced = run.stdout + run.stderr + "".join(  # the run record is gzip JSON
        (gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()).decode()
        for p in tmp_path.iterdir())
    assert secret not in produced
    assert "eyJ" not in produced  # no JWT (access or refresh token)
