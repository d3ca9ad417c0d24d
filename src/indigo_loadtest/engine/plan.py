"""The normalized test plan: what the scenario layer hands to the engine.

The scenario layer turns k6-style `options` (shortcuts vus/iterations/duration/
stages, or named `scenarios`) into these dataclasses; the engine only ever sees
this form. Durations are seconds, rates are iterations per second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXECUTORS = (
    "shared-iterations",
    "per-vu-iterations",
    "constant-vus",
    "ramping-vus",
    "constant-arrival-rate",
    "ramping-arrival-rate",
)


@dataclass(frozen=True)
class Stage:
    duration: float  # seconds
    target: float  # VUs (ramping-vus) or iterations per time_unit (ramping-arrival-rate)


@dataclass
class ScenarioConfig:
    name: str
    executor: str
    exec_name: str = "default"  # the scenario module's function to run per iteration
    start_time: float = 0.0
    graceful_stop: float = 30.0
    env: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # shared-iterations / per-vu-iterations / constant-vus
    vus: int = 1
    iterations: int = 1
    max_duration: float = 600.0
    duration: float = 0.0
    # ramping-vus
    start_vus: int = 1
    stages: list[Stage] = field(default_factory=list)
    graceful_ramp_down: float = 30.0
    # arrival-rate executors: `rate` iterations per `time_unit` seconds
    rate: float = 0.0
    start_rate: float = 0.0
    time_unit: float = 1.0
    pre_allocated_vus: int = 1
    max_vus: int = 0  # 0: same as pre_allocated_vus
    # constant-arrival-rate: "constant" gaps (k6), or "poisson"/"gamma" gaps drawn from
    # `seed` (gamma's shape is `burstiness`, vLLM's --burstiness; poisson is burstiness 1)
    arrivals: str = "constant"
    burstiness: float = 1.0
    seed: int = 0


@dataclass
class TestPlan:
    scenarios: list[ScenarioConfig]
    tags: dict[str, str] = field(default_factory=dict)  # test-wide tags (testid, test_case, ...)
    setup_timeout: float = 60.0
    teardown_timeout: float = 60.0
    no_setup: bool = False
    no_teardown: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
