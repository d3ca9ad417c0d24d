"""Preparing a run: everything that needs no traffic (resolve, configure, import,
validate, start the embedded simulator), so `check` and `--dry-run` stop here and every
mistake is reported before the first request."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from ..metrics.registry import Registry
from ..metrics.thresholds import ThresholdError, ThresholdSet, parse_thresholds
from ..outputs.base import Output, RunInfo
from ..scenario import config as config_mod
from ..scenario.config import Env, build_env
from ..scenario.discovery import ScenarioFile, display_path, resolve, scenarios_dir
from ..scenario.errors import ExitCode, ScenarioError
from ..scenario.loader import load_module
from ..scenario.options import (
    Overrides,
    ParsedOptions,
    check_exec_functions,
    parse_duration,
    parse_options,
)
from ..scenario.target_use import reads_base
from .limits import (
    STRICT_THRESHOLDS_ENV,
    check_outputs_fit_workers,
    check_plan_limits,
    worker_count,
)
from .outputs import build_outputs, check_result_files, parse_out_specs, summary_export_path
from .ray import check_ray_settings, ray_shard_count
from .recording import check_record_paths
from .settings import Console, RunSettings

SIMULATOR_PLACEHOLDER = "http://127.0.0.1:0"  # BASE during --dry-run: never contacted


@dataclass
class Prepared:
    """A loaded, validated run that has sent nothing yet."""

    settings: RunSettings
    scenario: ScenarioFile
    env: Env
    registry: Registry
    module: ModuleType
    options: ParsedOptions
    thresholds: ThresholdSet
    run_info: RunInfo
    timestamp: str
    trend_stats: tuple[str, ...]  # the summary's and the summary export's trend columns
    simulator: Any = None  # the embedded simulator process, when BASE was unset
    embedded: bool = False  # BASE was unset: the target is (or would be) the simulator
    base_unused: bool = False  # BASE unset and never named by the scenario: no simulator
    outputs: list[Output] = field(default_factory=list)
    summary_path: Path | None = None
    workers: int = 1  # processes the test runs in (see `worker_count`)
    # Coroutine functions run beside the test, like the abortOnFail watch, each given the
    # Engine (`live_registry()`, `stop(reason)`); `bench` stops over-saturated points.
    watchers: list[Callable[[Any], Any]] = field(default_factory=list)
    # Called with the registry once the test ended: why it measured nothing, or None (a
    # problem of the run, exit 113, as `verdict.nothing_measured`); `bench`: no request
    # completed.
    judges: list[Callable[[Any], str | None]] = field(default_factory=list)
    # Called with the registry once the test ended and measured something: a pass mark of
    # the command beyond the thresholds that the run missed, as (exit code, reason), or
    # None; a problem of the run, so every file states it. `bench`: a single point's --slo.
    pass_marks: list[Callable[[Any], tuple[int, str] | None]] = field(default_factory=list)

    @property
    def target(self) -> str:
        if self.simulator is not None:
            return f"embedded simulator at {self.env.get('BASE', '')}"
        if self.base_unused:
            return ("none (BASE unset; embedded simulator not started: the scenario never "
                    "reads BASE)")
        if self.embedded:
            return "embedded simulator (not started: no traffic is sent)"
        return self.env.get("BASE", "")

    def close(self) -> None:
        """Stop the embedded simulator (idempotent)."""
        sim, self.simulator = self.simulator, None
        if sim is not None:
            with contextlib.suppress(Exception):
                sim.stop()


def overrides_from(settings: RunSettings) -> Overrides:
    duration = None
    if settings.duration is not None:
        duration = parse_duration(settings.duration, "--duration")
        if duration <= 0:
            raise ScenarioError("--duration: must be more than 0", ExitCode.USAGE)
    for flag, value in (("--vus", settings.vus), ("--iterations", settings.iterations)):
        if value is not None and value < 1:
            raise ScenarioError(f"{flag}: must be at least 1", ExitCode.USAGE)
    from ..k6compat import parse_stage

    return Overrides(vus=settings.vus, iterations=settings.iterations, duration=duration,
                     tags=dict(settings.tags),
                     stages=[parse_stage(stage) for stage in settings.stages] or None)


def check_syntax(path: Path) -> None:
    """Report a syntax error before anything is started for the run."""
    try:
        compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise ScenarioError(
            f"{display_path(path)}:{exc.lineno}: SyntaxError: {exc.msg}",
            ExitCode.SCRIPT_EXCEPTION,
        ) from None
    except ValueError as exc:  # e.g. null bytes
        raise ScenarioError(f"{display_path(path)}: {exc}", ExitCode.SCRIPT_EXCEPTION) from None


def start_simulator(api_key: str = "", **settings: Any) -> Any:
    """The embedded simulator; it accepts the run's API_KEY as its static bearer key, so a
    scenario written for any OpenAI-compatible server runs against it unchanged.
    `settings` are simulator settings by field name (`bench` sets reply_tokens)."""
    from .. import startup

    startup.checkpoint()  # interrupted while the scenario was imported: start nothing
    options = {"api_key": api_key, **settings} if api_key else dict(settings)
    try:
        from ..simulator.process import start_simulator_process

        return start_simulator_process(host="127.0.0.1", port=0, give_up=startup.pending,
                                       **options)
    except Exception as exc:
        startup.checkpoint()  # a Ctrl-C gave it up: the run ends in one line, exit 105
        raise ScenarioError(
            f"could not start the embedded simulator: {exc}", ExitCode.GENERIC_ENGINE
        ) from None


def enable_monitoring(settings: RunSettings, env: Env) -> None:
    """`run --monitor`: Prometheus must accept remote writes; then add the output."""
    from ..monitoring.stack import ensure_prometheus

    url = next((arg for kind, arg in parse_out_specs(settings.outs)
                if kind == "prometheus-rw" and arg), None)
    problem = ensure_prometheus(url, env)
    if problem:
        raise ScenarioError(problem, ExitCode.INVALID_CONFIG)
    if not any(kind == "prometheus-rw" for kind, _ in parse_out_specs(settings.outs)):
        settings.outs.append("prometheus-rw")


def base_url_tag(base: str, embedded: bool) -> str:
    if embedded:
        return "simulator"
    return urlsplit(base).hostname or base or "none"


def prepare(settings: RunSettings, console: Console, *, start_target: bool = True) -> Prepared:
    """Resolve, configure, import and validate; starts the embedded simulator when BASE is
    unset and `start_target` (not for --dry-run). The caller must `close()` the result."""
    from ..k6compat import apply_environment, check_settings, naming_sources

    sources = apply_environment(settings)  # K6_VUS...: below the flags, above the options
    with naming_sources(sources):
        check_settings(settings)
        overrides = overrides_from(settings)
        check_outputs_fit_workers(settings)  # also reports a typo in --out before anything
        check_ray_settings(settings)
    env = build_env(settings.env_file, settings.env)
    if settings.monitor and not settings.dry_run:
        enable_monitoring(settings, env)
    folder = scenarios_dir(settings.scenarios_dir, env)
    scenario = resolve(settings.scenario, folder)
    check_syntax(scenario.path)

    simulator = None
    embedded = not env.get("BASE")
    base_unused = False
    if not embedded:
        config_mod.check_base_url(env["BASE"])
    if embedded:
        values = dict(env)
        if not start_target or settings.dry_run:
            values["BASE"] = SIMULATOR_PLACEHOLDER
        elif reads_base(scenario.path):
            simulator = start_simulator(env.get("API_KEY", ""))
            values["BASE"] = simulator.url
        else:  # a process the run cannot use would only take CPU from the generator
            base_unused = True
        env = Env(values)
    try:
        prepared = _prepare_loaded(settings, console, overrides, env, scenario, simulator)
    except BaseException:
        if simulator is not None:
            simulator.stop()
        raise
    prepared.embedded = embedded
    prepared.base_unused = base_unused
    return prepared


def declare_llm_metrics(registry: Registry, scenario: Path) -> None:
    """A scenario that uses indigo_loadtest.llm (measure_stream...) records its llm_*
    samples only as answers arrive: declared now, its thresholds may name them (a
    threshold on llm_ttft_ms was an unknown metric). A scenario that never imports the
    module has none of them: a threshold on one stays the typo it is."""
    from ..llm.stream_metrics import LLMMetrics
    from ..scenario.target_use import uses_llm

    if uses_llm(scenario):
        LLMMetrics(registry)


def _prepare_loaded(settings: RunSettings, console: Console, overrides: Overrides, env: Env,
                    scenario: ScenarioFile, simulator: Any) -> Prepared:
    config_mod.activate(env)
    registry = Registry()
    declare_health_metrics(registry)  # before the module: thresholds may name them
    module = load_module(scenario.path, registry)
    declare_llm_metrics(registry, scenario.path)
    options = parse_options(getattr(module, "options", None), overrides)
    for warning in options.warnings:
        console.warn(warning)
    check_exec_functions(options.plan, module)
    check_plan_limits(options.plan, settings, env)
    try:
        thresholds = parse_thresholds({} if settings.no_thresholds else options.thresholds)
        thresholds.validate(registry)
    except ThresholdError as exc:
        raise ScenarioError(str(exc), ExitCode.INVALID_CONFIG) from None
    thresholds.strict = settings.strict_thresholds or env.bool(STRICT_THRESHOLDS_ENV)
    trend_stats = summary_trend_stats(settings, options.plan.extra)
    # HTTP options and limits: checked before traffic
    client_config(env, options.plan.extra, settings)

    now = datetime.now()
    timestamp = now.strftime("%Y%m%d-%H%M%S")
    plan = options.plan
    base_tags = {
        "testid": f"{scenario.name}-{timestamp}",
        "test_case": scenario.name,
        "environment": base_url_tag(env.get("BASE", ""),
                                    env.get("BASE") == SIMULATOR_PLACEHOLDER
                                    or simulator is not None),
    }
    plan.tags = {**base_tags, **plan.tags}
    run_info = RunInfo(
        testid=plan.tags["testid"], test_case=plan.tags["test_case"],
        scenario_file=str(scenario.path), started_at=now.timestamp(), tags=dict(plan.tags),
    )
    prepared = Prepared(
        settings=settings, scenario=scenario, env=env, registry=registry, module=module,
        options=options, thresholds=thresholds, run_info=run_info, timestamp=timestamp,
        trend_stats=trend_stats, simulator=simulator,
    )
    prepared.summary_path = summary_export_path(prepared)
    prepared.outputs = build_outputs(prepared)
    prepared.workers = worker_count(settings, plan)
    check_result_files(prepared)
    check_record_paths(prepared)
    if settings.ray is not None and not settings.dry_run:  # connects: after every check
        prepared.workers = ray_shard_count(settings, plan, scenario.path)
    return prepared


def summary_trend_stats(settings: RunSettings, extra: dict[str, Any]) -> tuple[str, ...]:
    """The trend columns: --summary-trend-stats, else the summaryTrendStats option, else
    k6's default."""
    from ..metrics.summary import DEFAULT_TREND_STATS, parse_trend_stats

    if settings.summary_trend_stats is not None:
        where, value = "--summary-trend-stats", settings.summary_trend_stats
    elif extra.get("summary_trend_stats") is not None:
        where, value = "summaryTrendStats", extra["summary_trend_stats"]
    else:
        return DEFAULT_TREND_STATS
    try:
        return parse_trend_stats(value)
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}", ExitCode.INVALID_CONFIG) from None


def client_config(env: Env, extra: dict[str, Any], settings: RunSettings | None = None) -> Any:
    """The HTTP clients' settings from env (DEBUG, LOADTEST_TOKEN), the options and the
    flags (--http-debug, --log-output, --throw)."""
    from ..http.config import ClientConfig
    from ..http.limits import Limits

    headers = {}
    if env.get("LOADTEST_TOKEN"):
        headers["x-loadtest-token"] = env["LOADTEST_TOKEN"]
    kwargs: dict[str, Any] = {
        "debug": env.bool("DEBUG") or bool(extra.get("http_debug")),
        "headers": headers,
        "discard_response_bodies": bool(extra.get("discard_response_bodies", False)),
        "insecure_skip_tls_verify": bool(extra.get("insecure_skip_tls_verify", False)),
        "no_connection_reuse": bool(extra.get("no_connection_reuse", False)),
    }
    if settings is not None:
        from ..k6compat import client_flags

        kwargs.update(client_flags(settings, kwargs["debug"]))
    if extra.get("user_agent"):
        kwargs["user_agent"] = str(extra["user_agent"])
    if extra.get("timeout") is not None:
        kwargs["timeout"] = extra["timeout"]
    if extra.get("max_redirects") is not None:
        kwargs["max_redirects"] = int(extra["max_redirects"])
    try:
        kwargs["limits"] = Limits.from_options(extra)
        return ClientConfig(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"options: {exc}") from None


def declare_health_metrics(registry: Registry) -> None:
    from ..engine.health import declare_metrics

    declare_metrics(registry)
