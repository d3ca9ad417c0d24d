"""The plan's size: the VU and rate limits it is held to, its planned length, and
how many worker processes it runs in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine.plan import ScenarioConfig, TestPlan
from ..scenario.config import Env
from ..scenario.errors import ExitCode, ScenarioError
from .outputs import parse_out_specs
from .settings import RunSettings

if TYPE_CHECKING:
    from .prepare import Prepared


# Every VU is an object, a task and (once it sends) an HTTP client with its connections, all
# created when the VU starts: an absurd plan (`vus: 10**12`) would grow memory without end
# instead of failing. 100 000 VUs per run is far above what one machine drives usefully.
DEFAULT_VUS_LIMIT = 100_000
VUS_LIMIT_ENV = "INDIGO_VUS_LIMIT"

# An arrival rate the generator cannot follow only produces dropped iterations, counted one
# by one: one process starts at most some 10^5 iterations per second, so 10^6 per second
# (all scenarios together, at their peak) is far above any useful plan.
DEFAULT_RATE_LIMIT = 1_000_000
RATE_LIMIT_ENV = "INDIGO_RATE_LIMIT"
STRICT_THRESHOLDS_ENV = "INDIGO_STRICT_THRESHOLDS"


def plan_limit(flag_value: int | None, env: Env, variable: str, default: int) -> int:
    """The flag, else the environment variable, else the default."""
    if flag_value is not None:
        return flag_value
    limit = env.int(variable, default)
    if limit < 1:
        raise ScenarioError(f"{variable}={limit}: must be at least 1", ExitCode.INVALID_CONFIG)
    return limit


def check_plan_limits(plan: TestPlan, settings: RunSettings, env: Env) -> None:
    """Reject, before any traffic, a plan that may run more VUs than the VU limit (VUs,
    preAllocatedVUs and maxVUs are what the executors allocate up front; iteration counts
    allocate nothing per item) or start more iterations per second than the rate limit."""
    where = (f"scenario {plan.scenarios[0].name!r}" if len(plan.scenarios) == 1
             else "the scenarios together")
    checks = (
        (plan_max_vus(plan), settings.vus_limit, VUS_LIMIT_ENV, DEFAULT_VUS_LIMIT,
         "VUs", "--vus-limit"),
        (plan_peak_rate(plan), settings.rate_limit, RATE_LIMIT_ENV, DEFAULT_RATE_LIMIT,
         "iterations per second", "--rate-limit"),
    )
    for total, flag_value, variable, default, what, flag in checks:
        limit = plan_limit(flag_value, env, variable, default)
        if total > limit:
            raise ScenarioError(
                f"{where}: up to {total:g} {what}, more than the limit of {limit} per run "
                f"(raise it with {flag} N or {variable}=N)", ExitCode.INVALID_CONFIG)


def plan_peak_rate(plan: TestPlan) -> float:
    """The most iterations per second the arrival-rate scenarios may start at once."""
    peak = 0.0
    for sc in plan.scenarios:
        if sc.executor == "constant-arrival-rate":
            peak += sc.rate / sc.time_unit
        elif sc.executor == "ramping-arrival-rate":
            peak += max([sc.start_rate, *(s.target for s in sc.stages)]) / sc.time_unit
    return peak


RAW_SAMPLE_OUTPUTS = ("json", "csv")  # record every sample where it is measured


def asks_raw_outputs(settings: RunSettings) -> bool:
    """Whether `--out` asks for an output that records raw samples in this process."""
    return any(kind in RAW_SAMPLE_OUTPUTS for kind, _ in parse_out_specs(settings.outs))


def worker_count(settings: RunSettings, plan: TestPlan) -> int:
    """`--workers N` as given; otherwise the cores, but never more processes than the plan
    has concurrent VUs (a 1-VU run stays in one process), and one process when raw-sample
    outputs are requested (they record in this process)."""
    if settings.workers is not None:
        return settings.workers
    if asks_raw_outputs(settings):
        return 1
    from ..engine.workers import default_workers

    return max(1, min(default_workers(), plan_max_vus(plan)))


def check_outputs_fit_workers(settings: RunSettings) -> None:
    """Raw-sample outputs listen on this process's registry: no `--workers N` above 1."""
    if asks_raw_outputs(settings) and settings.workers is not None and settings.workers > 1:
        raise ScenarioError("--out json/csv record raw samples in this process; they "
                            "cannot be used with --workers above 1", ExitCode.USAGE)


def plan_max_vus(plan: TestPlan) -> int:
    """The most VUs the plan's scenarios may run at once (an upper bound: scenarios with
    different start times are counted as if they overlapped)."""
    return sum(scenario_max_vus(sc) for sc in plan.scenarios)


def scenario_max_vus(sc: ScenarioConfig) -> int:
    if sc.executor == "shared-iterations":  # k6 starts no more VUs than iterations
        return min(sc.vus, sc.iterations)
    return max(sc.vus, sc.max_vus)


def planned_duration(prepared: Prepared) -> float | None:
    """The longest scenario's planned end (for `elapsed/total`); None if open-ended."""
    ends = []
    for sc in prepared.options.plan.scenarios:
        if sc.executor in ("constant-vus", "constant-arrival-rate"):
            ends.append(sc.start_time + sc.duration)
        elif sc.executor in ("ramping-vus", "ramping-arrival-rate"):
            ends.append(sc.start_time + sum(s.duration for s in sc.stages))
        else:
            return None  # iteration-based: ends when the iterations are done
    return max(ends) if ends else None
