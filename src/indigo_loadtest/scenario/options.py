"""k6 `options` → `engine.plan.TestPlan`.

Accepts k6's camelCase keys and their snake_case forms, durations as Go-style strings
("30s", "5m", "1h30m", "500ms") or numbers of seconds, and applies k6's rules: the
shortcuts `iterations` (shared-iterations), `duration` (constant-vus) and `stages`
(ramping-vus), or a `scenarios` map with one executor each; with nothing set, one VU
runs one iteration. Command-line overrides form a higher layer, as in k6: if they set
any of duration/iterations, the script's whole execution block is replaced.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..durations import parse_duration as parse_duration_text
from ..engine.plan import EXECUTORS, ScenarioConfig, Stage, TestPlan
from .errors import ScenarioError

DEFAULT_SCENARIO = "default"
_ACRONYM = re.compile(r"VUs|VU|TLS|IPs|IP|HTTP|URL|DNS|ID|SSE")
_SCENARIO_NAME = re.compile(r"^[0-9A-Za-z_-]+$")

# Top-level options we act on, and k6 options accepted (kept in plan.extra) without effect.
_EXECUTION_KEYS = {"vus", "iterations", "duration", "stages", "scenarios"}
_PLAN_KEYS = {"thresholds", "tags", "setup_timeout", "teardown_timeout", "no_setup", "no_teardown"}
_EXTRA_KEYS = {
    "no_connection_reuse", "no_vu_connection_reuse", "insecure_skip_tls_verify",
    "discard_response_bodies", "summary_trend_stats", "summary_time_unit", "user_agent",
    "http_debug", "max_redirects", "batch", "batch_per_host", "throw", "min_iteration_duration",
    "dns", "hosts", "blacklist_ip", "block_hostnames", "local_ips", "tls_version",
    "tls_cipher_suites", "tls_auth", "system_tags", "no_cookies_reset", "rps", "paused",
    "no_usage_report", "ext", "cloud", "console_output", "exec", "timeout",
    # response limits (http.limits)
    "max_response_body_size", "max_header_line_size", "max_header_count",
    "max_sse_event_size", "max_stream_events",
}

_COMMON_SCENARIO_KEYS = {"executor", "exec", "start_time", "graceful_stop", "env", "tags"}
_EXECUTOR_KEYS: dict[str, set[str]] = {
    "shared-iterations": {"vus", "iterations", "max_duration"},
    "per-vu-iterations": {"vus", "iterations", "max_duration"},
    "constant-vus": {"vus", "duration"},
    "ramping-vus": {"start_vus", "stages", "graceful_ramp_down"},
    "constant-arrival-rate": {"rate", "time_unit", "duration", "pre_allocated_vus", "max_vus",
                              "arrivals", "burstiness", "seed"},
    "ramping-arrival-rate": {"start_rate", "time_unit", "stages", "pre_allocated_vus", "max_vus"},
}
_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "constant-vus": ("duration",),
    "ramping-vus": ("stages",),
    "constant-arrival-rate": ("rate", "duration", "pre_allocated_vus"),
    "ramping-arrival-rate": ("stages", "pre_allocated_vus"),
}


@dataclass
class Overrides:
    """Command-line settings that take precedence over the script's options."""

    vus: int | None = None
    iterations: int | None = None
    duration: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    stages: list[dict[str, Any]] | None = None  # --stage 30s:10


@dataclass
class ParsedOptions:
    plan: TestPlan
    thresholds: dict[str, Any]
    warnings: list[str]


# --- value parsing ----------------------------------------------------------------------

def snake(key: str) -> str:
    """camelCase (k6) → snake_case: preAllocatedVUs → pre_allocated_vus."""
    s = _ACRONYM.sub(lambda m: m.group(0).capitalize(), key)  # maxVUs -> maxVus
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.replace("-", "_").lower()


def normalize_keys(mapping: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise ScenarioError(f"{where}: option names must be strings, got {key!r}")
        name = snake(key)
        if name in out:
            raise ScenarioError(f"{where}: option {key!r} is given twice (camelCase, snake_case)")
        out[name] = value
    return out


def parse_duration(value: Any, name: str = "duration") -> float:
    """Seconds from "1h30m", "500ms", "2.5s", a numeric string or a number of seconds."""
    if isinstance(value, bool):
        raise ScenarioError(f"{name}: invalid duration {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration_string(value.strip(), name)
    else:
        raise ScenarioError(f"{name}: invalid duration {value!r} (use e.g. \"30s\", \"5m\" or 90)")
    if not math.isfinite(seconds) or seconds < 0:
        raise ScenarioError(f"{name}: invalid duration {value!r} (must be 0 or more)")
    return seconds


def _parse_duration_string(text: str, name: str) -> float:
    if not text:
        raise ScenarioError(f"{name}: empty duration")
    try:
        return parse_duration_text(text)
    except ValueError:
        raise ScenarioError(
            f"{name}: invalid duration {text!r} (use e.g. \"30s\", \"5m\", \"1h30m\", \"500ms\")"
        ) from None


def parse_int(value: Any, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ScenarioError(f"{name}: expected a whole number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ScenarioError(f"{name}: expected a whole number, got {value!r}") from None
    if not number.is_integer():
        raise ScenarioError(f"{name}: expected a whole number, got {value!r}")
    if number < minimum:
        raise ScenarioError(f"{name}: must be at least {minimum}, got {value!r}")
    return int(number)


def parse_number(value: Any, name: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ScenarioError(f"{name}: expected a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ScenarioError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(number) or number < minimum:
        raise ScenarioError(f"{name}: must be a number ≥ {minimum:g}, got {value!r}")
    return number


def parse_stages(value: Any, name: str) -> list[Stage]:
    if not isinstance(value, list | tuple) or not value:
        raise ScenarioError(f"{name}: expected a non-empty list of {{duration, target}}")
    stages = []
    for i, raw in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(raw, Mapping):
            raise ScenarioError(f"{where}: expected {{duration, target}}, got {raw!r}")
        stage = normalize_keys(raw, where)
        unknown = set(stage) - {"duration", "target"}
        if unknown:
            raise ScenarioError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        if "duration" not in stage:
            raise ScenarioError(f"{where}: missing 'duration'")
        stages.append(Stage(
            duration=parse_duration(stage["duration"], f"{where}.duration"),
            target=parse_number(stage.get("target", 0), f"{where}.target"),
        ))
    return stages


def parse_str_map(value: Any, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{name}: expected a mapping of names to values, got {value!r}")
    return {str(k): _tag_text(v) for k, v in value.items()}


def _tag_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# --- scenarios --------------------------------------------------------------------------

def scenario_from_mapping(name: str, raw: Any) -> ScenarioConfig:
    """One entry of `options["scenarios"]`, with k6's defaults and validation."""
    where = f"scenarios.{name}"
    if not _SCENARIO_NAME.match(name):
        raise ScenarioError(f"{where}: invalid scenario name (use letters, digits, '_' and '-')")
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: expected a mapping, got {raw!r}")
    cfg = normalize_keys(raw, where)
    executor = cfg.get("executor")
    if executor not in EXECUTORS:
        hint = f"unknown executor {executor!r}" if executor else "missing 'executor'"
        raise ScenarioError(f"{where}: {hint}; one of: {', '.join(EXECUTORS)}")
    allowed = _COMMON_SCENARIO_KEYS | _EXECUTOR_KEYS[executor]
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ScenarioError(f"{where}: option {unknown[0]!r} is not valid for executor {executor}")
    for key in _REQUIRED_KEYS.get(executor, ()):
        if key not in cfg:
            raise ScenarioError(f"{where}: executor {executor} needs {key!r}")

    sc = ScenarioConfig(name=name, executor=executor)
    exec_name = cfg.get("exec", "default")
    if not isinstance(exec_name, str) or not exec_name.isidentifier():
        raise ScenarioError(f"{where}.exec: expected a function name, got {exec_name!r}")
    sc.exec_name = exec_name
    sc.start_time = parse_duration(cfg.get("start_time", 0), f"{where}.startTime")
    sc.graceful_stop = parse_duration(cfg.get("graceful_stop", "30s"), f"{where}.gracefulStop")
    sc.env = parse_str_map(cfg.get("env"), f"{where}.env")
    sc.tags = parse_str_map(cfg.get("tags"), f"{where}.tags")
    _EXECUTOR_PARSERS[executor](sc, cfg, where)
    return sc


def _iterations_executor(sc: ScenarioConfig, cfg: dict[str, Any], where: str) -> None:
    sc.vus = parse_int(cfg.get("vus", 1), f"{where}.vus", 1)
    sc.iterations = parse_int(cfg.get("iterations", 1), f"{where}.iterations", 1)
    sc.max_duration = parse_duration(cfg.get("max_duration", "10m"), f"{where}.maxDuration")
    if sc.max_duration <= 0:
        raise ScenarioError(f"{where}.maxDuration: must be more than 0")
    if sc.executor == "shared-iterations" and sc.iterations < sc.vus:
        raise ScenarioError(
            f"{where}: the number of iterations ({sc.iterations}) can't be less than "
            f"the number of VUs ({sc.vus})"
        )


def _constant_vus(sc: ScenarioConfig, cfg: dict[str, Any], where: str) -> None:
    sc.vus = parse_int(cfg.get("vus", 1), f"{where}.vus", 1)
    sc.duration = _positive_duration(cfg["duration"], f"{where}.duration")


def _ramping_vus(sc: ScenarioConfig, cfg: dict[str, Any], where: str) -> None:
    sc.start_vus = parse_int(cfg.get("start_vus", 1), f"{where}.startVUs", 0)
    sc.stages = parse_stages(cfg["stages"], f"{where}.stages")
    sc.graceful_ramp_down = parse_duration(
        cfg.get("graceful_ramp_down", "30s"), f"{where}.gracefulRampDown"
    )
    for i, stage in enumerate(sc.stages):
        if not float(stage.target).is_integer():
            raise ScenarioError(f"{where}.stages[{i}].target: VUs must be a whole number")
    sc.vus = max([sc.start_vus, *(int(s.target) for s in sc.stages)])
    if sc.vus < 1:
        raise ScenarioError(f"{where}: startVUs and stage targets are all 0; no VU would run")


def _arrival_rate(sc: ScenarioConfig, cfg: dict[str, Any], where: str) -> None:
    sc.time_unit = _positive_duration(cfg.get("time_unit", "1s"), f"{where}.timeUnit")
    sc.pre_allocated_vus = parse_int(cfg["pre_allocated_vus"], f"{where}.preAllocatedVUs", 0)
    sc.max_vus = parse_int(cfg.get("max_vus", sc.pre_allocated_vus), f"{where}.maxVUs", 0)
    if sc.max_vus < sc.pre_allocated_vus:
        raise ScenarioError(f"{where}: maxVUs can't be less than preAllocatedVUs")
    if sc.max_vus < 1:
        raise ScenarioError(f"{where}: preAllocatedVUs or maxVUs must be more than 0")
    if sc.executor == "constant-arrival-rate":
        sc.rate = parse_number(cfg["rate"], f"{where}.rate")
        if sc.rate <= 0:
            raise ScenarioError(f"{where}.rate: must be more than 0")
        sc.duration = _positive_duration(cfg["duration"], f"{where}.duration")
        _arrival_distribution(sc, cfg, where)
    else:
        sc.start_rate = parse_number(cfg.get("start_rate", 0), f"{where}.startRate")
        sc.stages = parse_stages(cfg["stages"], f"{where}.stages")
    sc.vus = sc.pre_allocated_vus


ARRIVALS = ("constant", "poisson", "gamma")


def _arrival_distribution(sc: ScenarioConfig, cfg: dict[str, Any], where: str) -> None:
    """constant-arrival-rate's optional `arrivals` (constant | poisson | gamma), with
    `burstiness` (gamma's shape) and `seed` for the random ones."""
    arrivals = cfg.get("arrivals", "constant")
    if arrivals not in ARRIVALS:
        raise ScenarioError(f"{where}.arrivals: expected one of {', '.join(ARRIVALS)}, "
                            f"got {arrivals!r}")
    sc.arrivals = arrivals
    sc.burstiness = parse_number(cfg.get("burstiness", 1.0), f"{where}.burstiness")
    if sc.burstiness <= 0:
        raise ScenarioError(f"{where}.burstiness: must be more than 0")
    if "burstiness" in cfg and arrivals != "gamma":
        raise ScenarioError(f"{where}.burstiness: only for arrivals 'gamma'")
    sc.seed = parse_int(cfg.get("seed", 0), f"{where}.seed", 0)


def _positive_duration(value: Any, name: str) -> float:
    seconds = parse_duration(value, name)
    if seconds <= 0:
        raise ScenarioError(f"{name}: must be more than 0")
    return seconds


_EXECUTOR_PARSERS = {
    "shared-iterations": _iterations_executor,
    "per-vu-iterations": _iterations_executor,
    "constant-vus": _constant_vus,
    "ramping-vus": _ramping_vus,
    "constant-arrival-rate": _arrival_rate,
    "ramping-arrival-rate": _arrival_rate,
}


# --- shortcuts and layering -------------------------------------------------------------

def _apply_overrides(opts: dict[str, Any], over: Overrides | None) -> list[str]:
    """The command line as a higher k6 config layer; returns warnings."""
    if over is None:
        return []
    if over.duration is not None or over.iterations is not None or over.stages:
        # As in k6: a higher layer that sets execution replaces the lower one's execution.
        for key in ("duration", "iterations", "stages", "scenarios"):
            opts.pop(key, None)
        if over.duration is not None:
            opts["duration"] = over.duration
        if over.iterations is not None:
            opts["iterations"] = over.iterations
        if over.stages:
            opts["stages"] = over.stages
    warnings = []
    if over.vus is not None:
        opts["vus"] = over.vus
        if "scenarios" in opts:
            warnings.append("--vus is ignored with the scenario's `scenarios`; "
                            "add --duration or --iterations to replace them")
    return warnings


def _derive_scenarios(opts: dict[str, Any]) -> tuple[list[ScenarioConfig], list[str]]:
    """k6's DeriveScenariosFromShortcuts."""
    has = {k for k in ("iterations", "duration", "stages", "scenarios") if opts.get(k) is not None}
    vus = opts.get("vus")
    if "iterations" in has or "duration" in has:
        shortcut = "iterations" if "iterations" in has else "duration"
        for other in ("stages", "scenarios"):
            if other in has:
                conflict = (f"multiple execution config shortcuts (`{shortcut}` and `stages`)"
                            if other == "stages" else
                            f"an execution configuration shortcut (`{shortcut}`) and `scenarios`")
                raise ScenarioError(f"using {conflict} simultaneously is not allowed")
    elif "stages" in has and "scenarios" in has:
        raise ScenarioError(
            "using an execution configuration shortcut (`stages`) and `scenarios` "
            "simultaneously is not allowed"
        )

    raw: dict[str, Any]
    if "iterations" in has:
        raw = {"executor": "shared-iterations", "iterations": opts["iterations"],
               "vus": 1 if vus is None else vus}
        if "duration" in has:
            raw["max_duration"] = opts["duration"]
    elif "duration" in has:
        raw = {"executor": "constant-vus", "duration": opts["duration"],
               "vus": 1 if vus is None else vus}
    elif "stages" in has:
        raw = {"executor": "ramping-vus", "stages": opts["stages"],
               "start_vus": 1 if vus is None else vus}
    elif "scenarios" in has:
        scenarios = opts["scenarios"]
        if not isinstance(scenarios, Mapping) or not scenarios:
            raise ScenarioError("scenarios: expected a non-empty mapping of name to settings")
        return [scenario_from_mapping(str(n), c) for n, c in scenarios.items()], []
    else:
        warnings = []
        if vus is not None and vus != 1:
            warnings.append(f"the `vus={vus}` option is ignored; it only works together with "
                            "`iterations`, `duration` or `stages`")
        raw = {"executor": "per-vu-iterations", "vus": 1, "iterations": 1}
        return [scenario_from_mapping(DEFAULT_SCENARIO, raw)], warnings
    return [_shortcut_scenario(raw)], []


def _shortcut_scenario(raw: dict[str, Any]) -> ScenarioConfig:
    # Errors should name the top-level option the user wrote, not "scenarios.default".
    try:
        return scenario_from_mapping(DEFAULT_SCENARIO, raw)
    except ScenarioError as exc:
        exc.message = exc.message.replace(f"scenarios.{DEFAULT_SCENARIO}.", "").replace(
            f"scenarios.{DEFAULT_SCENARIO}: ", "")
        raise


def parse_options(raw: Any, overrides: Overrides | None = None) -> ParsedOptions:
    """Turn a scenario's `options` (plus command-line overrides) into a TestPlan."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"options: expected a dict, got {type(raw).__name__}")
    opts = normalize_keys(raw, "options")
    warnings = _apply_overrides(opts, overrides)
    unknown = sorted(set(opts) - _EXECUTION_KEYS - _PLAN_KEYS - _EXTRA_KEYS)
    warnings += [f"unknown option {key!r} is ignored" for key in unknown]
    if opts.get("vus") is not None:
        opts["vus"] = parse_int(opts["vus"], "vus", 0)
    scenarios, derive_warnings = _derive_scenarios(opts)
    warnings += derive_warnings

    thresholds = opts.get("thresholds") or {}
    if not isinstance(thresholds, Mapping):
        raise ScenarioError("thresholds: expected a mapping of metric to a list of expressions")
    tags = parse_str_map(opts.get("tags"), "tags")
    if overrides is not None:
        tags.update(overrides.tags)
    plan = TestPlan(
        scenarios=scenarios,
        tags=tags,
        setup_timeout=parse_duration(opts.get("setup_timeout", "60s"), "setupTimeout"),
        teardown_timeout=parse_duration(opts.get("teardown_timeout", "60s"), "teardownTimeout"),
        no_setup=bool(opts.get("no_setup", False)),
        no_teardown=bool(opts.get("no_teardown", False)),
        extra={k: v for k, v in opts.items() if k in _EXTRA_KEYS},
    )
    return ParsedOptions(plan=plan, thresholds=dict(thresholds), warnings=warnings)


def check_exec_functions(plan: TestPlan, module: Any) -> None:
    """Every scenario's `exec` must name a function of the scenario module."""
    for sc in plan.scenarios:
        fn = getattr(module, sc.exec_name, None)
        if not callable(fn):
            what = ("no `default` function (one iteration)" if sc.exec_name == "default"
                    else f"no function {sc.exec_name!r} (scenarios.{sc.name}.exec)")
            raise ScenarioError(f"the scenario has {what}")


def describe_scenario(sc: ScenarioConfig) -> str:
    """k6's one-line description of a scenario's schedule, for the run header."""
    d, gs = _fmt_duration, _fmt_duration(sc.graceful_stop)
    match sc.executor:
        case "shared-iterations":
            text = (f"{sc.iterations} iterations shared among {sc.vus} VUs "
                    f"(maxDuration: {d(sc.max_duration)}, gracefulStop: {gs})")
        case "per-vu-iterations":
            text = (f"{sc.iterations} iterations for each of {sc.vus} VUs "
                    f"(maxDuration: {d(sc.max_duration)}, gracefulStop: {gs})")
        case "constant-vus":
            text = f"{sc.vus} looping VUs for {d(sc.duration)} (gracefulStop: {gs})"
        case "ramping-vus":
            total = sum(s.duration for s in sc.stages)
            text = (f"Up to {sc.vus} looping VUs for {d(total)} over {len(sc.stages)} stages "
                    f"(gracefulRampDown: {d(sc.graceful_ramp_down)}, gracefulStop: {gs})")
        case "constant-arrival-rate":
            spread = "" if sc.arrivals == "constant" else f" ({arrivals_text(sc)})"
            text = (f"{sc.rate:g} iterations/{d(sc.time_unit)}{spread} for {d(sc.duration)} "
                    f"(maxVUs: {sc.pre_allocated_vus}-{sc.max_vus}, gracefulStop: {gs})")
        case _:
            total = sum(s.duration for s in sc.stages)
            peak = max([sc.start_rate, *(s.target for s in sc.stages)])
            text = (f"Up to {peak:g} iterations/{d(sc.time_unit)} for {d(total)} over "
                    f"{len(sc.stages)} stages (maxVUs: {sc.pre_allocated_vus}-{sc.max_vus}, "
                    f"gracefulStop: {gs})")
    start = f", starting at {d(sc.start_time)}" if sc.start_time else ""
    exec_note = f", exec: {sc.exec_name}" if sc.exec_name != "default" else ""
    return f"{sc.name}: {text}{start}{exec_note}"


def arrivals_text(sc: ScenarioConfig) -> str:
    if sc.arrivals == "gamma":
        return f"gamma arrivals, burstiness {sc.burstiness:g}, seed {sc.seed}"
    return f"{sc.arrivals} arrivals, seed {sc.seed}"


def _fmt_duration(seconds: float) -> str:
    """Go-style: 1h30m0s, 5m0s, 30s, 500ms."""
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    whole = int(seconds)
    frac = seconds - whole
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    sec = f"{s + frac:g}s"
    if h:
        return f"{h}h{m}m{sec}"
    if m:
        return f"{m}m{sec}"
    return sec
