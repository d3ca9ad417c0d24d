"""What a Jan scenario file shares: its metrics, its options and its guest sessions.

A scenario creates one `Flow` at import time. With SINGLE_RUN=true its options are
one VU and one iteration (the functional flow, `default`); otherwise two open-loop
constant-arrival-rate scenarios run side by side for DURATION_MIN minutes: `nonstream`
at NONSTREAM_RPS and `stream` at STREAM_RPS iterations per second, each naming the
module function of the same name.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from ..api import sleep
from ..scenario import config as run_config
from .api import JanAPI
from .metrics import FlowMetrics
from .session import JanConfig, JanConfigError, Session, SessionPool, log

HTTP_REQ_FAILED = {"http_req_failed": ["rate<0.05"]}
LOGIN_THRESHOLDS = {"guest_login_time_ms": "p(95)<2000", "refresh_token_time_ms": "p(95)<2000"}


@dataclass(frozen=True)
class LoadSettings:
    """SINGLE_RUN, DURATION_MIN, NONSTREAM_RPS, STREAM_RPS, THINK_TIME_S, MAX_VUS."""

    single_run: bool = False
    duration_min: float = 5.0
    nonstream_rps: float = 2.0
    stream_rps: float = 1.0
    think_time: float = 1.0  # seconds between the functional flow's steps (as the seed)
    max_vus: int = 0  # 0: derived from the rates

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LoadSettings:
        settings = cls(
            single_run=env.get("SINGLE_RUN", "").strip().lower() in {"1", "true", "yes", "on"},
            duration_min=_number(env, "DURATION_MIN", 5.0),
            nonstream_rps=_number(env, "NONSTREAM_RPS", 2.0),
            stream_rps=_number(env, "STREAM_RPS", 1.0),
            think_time=_number(env, "THINK_TIME_S", 1.0),
            max_vus=int(_number(env, "MAX_VUS", 0)),
        )
        if not settings.single_run:
            if settings.duration_min <= 0:
                raise JanConfigError(f"DURATION_MIN={env.get('DURATION_MIN')!r}: must be > 0")
            if settings.nonstream_rps <= 0 and settings.stream_rps <= 0:
                raise JanConfigError("NONSTREAM_RPS and STREAM_RPS are both 0: nothing to run")
        return settings


def _number(env: Mapping[str, str], key: str, default: float) -> float:
    raw = (env.get(key) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise JanConfigError(f"{key}={raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise JanConfigError(f"{key}={raw!r}: must be a number ≥ 0")
    return value


def arrival_scenario(exec_name: str, rate: float, duration_s: float,
                     max_vus: int = 0) -> dict[str, Any]:
    """An open-loop constant-arrival-rate scenario; VUs are sized for slow LLM replies."""
    pre = max(1, math.ceil(rate * 2))
    return {
        "executor": "constant-arrival-rate",
        "exec": exec_name,
        "rate": rate,
        "timeUnit": "1s",
        "duration": duration_s,
        "preAllocatedVUs": pre,
        "maxVUs": max(pre, max_vus or max(10, math.ceil(rate * 60))),
    }


class Flow:
    """One Jan scenario's shared state. Build at import time:

    `flow = Flow("completion-standard", "completion", {"models_time_ms": "p(95)<2000"})`
    declares the step Trends (with their thresholds), the `completion_successes` and
    `completion_errors` Counters, and the llm_* metrics, and reads the configuration.
    """

    def __init__(self, test_case: str, counter_prefix: str, steps: Mapping[str, str],
                 env: Mapping[str, str] | None = None) -> None:
        env = run_config.env if env is None else env
        self.test_case = test_case
        self.config = JanConfig.from_env(env)
        self.load = LoadSettings.from_env(env)
        step_thresholds = {**LOGIN_THRESHOLDS, **steps}
        self.metrics = FlowMetrics(counter_prefix, step_thresholds)
        self.thresholds: dict[str, list[str]] = {
            **HTTP_REQ_FAILED, **{name: [expr] for name, expr in step_thresholds.items()},
        }
        self.pool = SessionPool(self.config, self.metrics)

    def options(self, nonstream: str = "nonstream", stream: str = "stream") -> dict[str, Any]:
        """k6-style options: one pass with SINGLE_RUN, else the two arrival-rate scenarios
        running the module functions named `nonstream` and `stream`."""
        base: dict[str, Any] = {
            "thresholds": self.thresholds,
            "tags": {"test_case": self.test_case},
            "discardResponseBodies": False,
        }
        load = self.load
        if load.single_run:
            return {"vus": 1, "iterations": 1, **base}
        duration_s = load.duration_min * 60.0
        scenarios = {}
        if load.nonstream_rps > 0:
            scenarios["nonstream"] = arrival_scenario(
                nonstream, load.nonstream_rps, duration_s, load.max_vus)
        if load.stream_rps > 0:
            scenarios["stream"] = arrival_scenario(stream, load.stream_rps, duration_s,
                                                   load.max_vus)
        return {"scenarios": scenarios, **base}

    def log(self, message: str) -> None:
        log(self.config, message)

    async def pause(self, seconds: float = 1.0) -> None:
        """The functional flow's pause between steps (scaled by THINK_TIME_S); none
        under load, where the arrival rate sets the pace."""
        if self.load.single_run and self.load.think_time > 0:
            await sleep(seconds * self.load.think_time)

    @asynccontextmanager
    async def session(self, vu: Any) -> AsyncIterator[JanAPI | None]:
        """The API as a guest: logged in and refreshed (the seed's steps 1 and 2), new
        or from the pool (SESSION_MODE). None if the guest login failed."""
        http = vu.http
        if self.config.session_mode == "pool" and not self.load.single_run:
            async with self.pool.lend(http) as pooled:
                yield JanAPI(http, pooled, self.metrics) if pooled else None
            return
        session = Session(self.config, self.metrics)
        if not await session.login(http):
            self.log("❌ Guest login failed, aborting the flow")
            yield None
            return
        await self.pause()
        await session.refresh(http)
        await self.pause()
        yield JanAPI(http, session, self.metrics)

    def banner(self, title: str) -> None:
        """The functional flow's header: base URL, model, debug mode (never secrets)."""
        cfg = self.config
        self.log(f"\n========================================\n  {title}\n"
                 f"========================================\nBase URL: {cfg.base}\n"
                 f"Model: {cfg.model}\nToken refresh: {cfg.refresh}\n")
