"""One run: scenario → config → module → plan → (simulator) → engine → summary, files, exit code.

`prepare()` does everything that needs no traffic (so `check` and `--dry-run` stop
there, and every mistake is reported before the first request); `execute()` runs the
prepared test. Errors meant for the user are `ScenarioError`s: one line, an exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO
from urllib.parse import urlsplit

from . import __version__
from .engine.plan import ScenarioConfig, TestPlan
from .http.redact import mask_secrets
from .metrics.registry import Registry
from .metrics.thresholds import ThresholdError, ThresholdResult, ThresholdSet, parse_thresholds
from .outputs.base import Output, RunInfo, unwritable_reason
from .progress import ProgressLine, Snapshot
from .scenario import config as config_mod
from .scenario.config import Env, build_env
from .scenario.discovery import ScenarioFile, display_path, resolve, scenarios_dir
from .scenario.errors import ExitCode, ScenarioError
from .scenario.loader import load_module
from .scenario.options import (
    Overrides,
    ParsedOptions,
    check_exec_functions,
    describe_scenario,
    parse_duration,
    parse_options,
)
from .scenario.target_use import reads_base

# How often abortOnFail thresholds are evaluated while the test runs (k6: every 2 s).
ABORT_CHECK_INTERVAL = 2.0
SIMULATOR_PLACEHOLDER = "http://127.0.0.1:0"  # BASE during --dry-run: never contacted


@dataclass
class RunSettings:
    """Everything the command line can say about one run."""

    scenario: str
    scenarios_dir: str | None = None
    env_file: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    vus: int | None = None
    iterations: int | None = None
    duration: str | None = None
    outs: list[str] = field(default_factory=list)
    summary_export: str | None = None
    summary_markdown: str | None = None  # --summary-markdown FILE (outputs/summary_markdown)
    summary_trend_stats: str | None = None  # --summary-trend-stats "avg,p(99)"
    no_summary: bool = False
    quiet: bool = False
    workers: int | None = None
    dry_run: bool = False
    results_dir: str = "results"
    color: bool | None = None
    monitor: bool = False  # push to Prometheus (checked first) and print the Grafana URL
    strict_thresholds: bool = False  # a threshold on a metric without samples fails
    vus_limit: int | None = None  # --vus-limit: most VUs a plan may have (check_plan_limits)
    rate_limit: int | None = None  # --rate-limit: most iterations/s it may start
    report: str | None = None  # --report FILE (None: beside the summary export)
    no_report: bool = False  # --no-report: no HTML report (the run record is still written)
    dashboard: int | None = None  # --dashboard [PORT]: live charts on 127.0.0.1:PORT
    # k6's flags (also K6_*/INDIGO_* variables, see k6compat)
    stages: list[str] = field(default_factory=list)  # --stage 30s:10 (repeatable)
    no_thresholds: bool = False  # --no-thresholds: thresholds are not evaluated
    summary_time_unit: str | None = None  # --summary-time-unit s|ms|us
    summary_mode: str | None = None  # --summary-mode full: per-endpoint statistics too
    http_debug: str | None = None  # --http-debug[=full]
    log_output: str | None = None  # --log-output stderr|stdout|none|file=PATH
    throw: bool = False  # --throw: a failed request raises in the iteration


class Console:
    """Where the run talks: results on stdout, progress and diagnostics on stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    # Everything the run prints is masked: an error message or a check name that quotes a
    # URL with a key, a JWT or a known secret (API_KEY, LOADTEST_TOKEN...).
    def print(self, text: str = "") -> None:
        self.out.write(mask_secrets(text) + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        self.err.write(mask_secrets(text) + "\n")
        self.err.flush()

    def warn(self, text: str) -> None:
        self.note(f"warning: {text}")

    def error(self, text: str) -> None:
        self.note(f"error: {text}")


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


# --- preparation (no traffic) ------------------------------------------------------------

def overrides_from(settings: RunSettings) -> Overrides:
    duration = None
    if settings.duration is not None:
        duration = parse_duration(settings.duration, "--duration")
        if duration <= 0:
            raise ScenarioError("--duration: must be more than 0", ExitCode.USAGE)
    for flag, value in (("--vus", settings.vus), ("--iterations", settings.iterations)):
        if value is not None and value < 1:
            raise ScenarioError(f"{flag}: must be at least 1", ExitCode.USAGE)
    from .k6compat import parse_stage

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
    options = {"api_key": api_key, **settings} if api_key else dict(settings)
    try:
        from .simulator.process import start_simulator_process

        return start_simulator_process(host="127.0.0.1", port=0, **options)
    except Exception as exc:
        raise ScenarioError(
            f"could not start the embedded simulator: {exc}", ExitCode.GENERIC_ENGINE
        ) from None


def enable_monitoring(settings: RunSettings, env: Env) -> None:
    """`run --monitor`: Prometheus must accept remote writes; then add the output."""
    from .monitoring_stack import ensure_prometheus

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
    from .k6compat import apply_environment, check_settings, naming_sources

    sources = apply_environment(settings)  # K6_VUS...: below the flags, above the options
    with naming_sources(sources):
        check_settings(settings)
        overrides = overrides_from(settings)
        check_outputs_fit_workers(settings)  # also reports a typo in --out before anything
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


def _prepare_loaded(settings: RunSettings, console: Console, overrides: Overrides, env: Env,
                    scenario: ScenarioFile, simulator: Any) -> Prepared:
    config_mod.activate(env)
    registry = Registry()
    declare_health_metrics(registry)  # before the module: thresholds may name them
    module = load_module(scenario.path, registry)
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
    return prepared


def summary_trend_stats(settings: RunSettings, extra: dict[str, Any]) -> tuple[str, ...]:
    """The trend columns: --summary-trend-stats, else the summaryTrendStats option, else
    k6's default."""
    from .metrics.summary import DEFAULT_TREND_STATS, parse_trend_stats

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


# --- plan bounds -------------------------------------------------------------------------

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


# --- workers -----------------------------------------------------------------------------

RAW_SAMPLE_OUTPUTS = ("json", "csv")  # record every sample where it is measured


def worker_count(settings: RunSettings, plan: TestPlan) -> int:
    """`--workers N` as given; otherwise the cores, but never more processes than the plan
    has concurrent VUs (a 1-VU run stays in one process), and one process when raw-sample
    outputs are requested (they record in this process)."""
    if settings.workers is not None:
        return settings.workers
    if any(kind in RAW_SAMPLE_OUTPUTS for kind, _ in parse_out_specs(settings.outs)):
        return 1
    from .engine.workers import default_workers

    return max(1, min(default_workers(), plan_max_vus(plan)))


def check_outputs_fit_workers(settings: RunSettings) -> None:
    """Raw-sample outputs listen on this process's registry: no `--workers N` above 1."""
    raw = any(kind in RAW_SAMPLE_OUTPUTS for kind, _ in parse_out_specs(settings.outs))
    if raw and settings.workers is not None and settings.workers > 1:
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


# --- outputs -----------------------------------------------------------------------------

def result_path(prepared: Prepared, suffix: str) -> Path:
    name = f"{prepared.scenario.name}_{prepared.timestamp}{suffix}"
    return Path(prepared.settings.results_dir) / name


def summary_export_path(prepared: Prepared) -> Path:
    if prepared.settings.summary_export:
        return Path(prepared.settings.summary_export)
    return result_path(prepared, ".json")


OUTPUT_KINDS = {"json": "json", "csv": "csv", "prometheus-rw": "prometheus-rw",
                "experimental-prometheus-rw": "prometheus-rw"}  # k6's name for the latter


def parse_out_specs(outs: list[str]) -> list[tuple[str, str]]:
    """`--out` values as (kind, argument) pairs."""
    specs = []
    for spec in outs:
        name, _, arg = spec.partition("=")
        kind = OUTPUT_KINDS.get(name.strip().lower())
        if kind is None:
            raise ScenarioError(
                f"--out {spec!r}: unknown output (use json[=FILE], csv[=FILE] or "
                "prometheus-rw[=URL])", ExitCode.USAGE,
            )
        specs.append((kind, arg.strip()))
    return specs


def build_outputs(prepared: Prepared) -> list[Output]:
    """`--out json[=FILE]`, `csv[=FILE]`, `prometheus-rw[=URL]`."""
    outputs: list[Output] = []
    for kind, arg in parse_out_specs(prepared.settings.outs):
        if kind == "json":
            from .outputs.json_output import JsonOutput

            path = Path(arg) if arg else result_path(prepared, ".ndjson")
            outputs.append(JsonOutput(path, prepared.thresholds))
        elif kind == "csv":
            from .outputs.csv_output import CsvOutput

            outputs.append(CsvOutput(Path(arg) if arg else result_path(prepared, ".csv")))
        else:
            outputs.append(_prometheus_output(prepared.env, arg or None))
    return outputs


def result_files(prepared: Prepared) -> list[tuple[str, Path]]:
    """(what, path) of every file the run will write."""
    files = [(f"the {output.name} output", output.path) for output in prepared.outputs
             if isinstance(getattr(output, "path", None), Path)]
    if prepared.summary_path is not None:
        files.append(("the summary export", prepared.summary_path))
    if prepared.settings.summary_markdown:
        files.append(("the markdown summary", Path(prepared.settings.summary_markdown)))
    return files


def check_result_files(prepared: Prepared) -> None:
    for what, path in result_files(prepared):
        reason = unwritable_reason(path)
        if reason is not None:
            raise ScenarioError(f"cannot write {what} {path}: {reason}", ExitCode.INVALID_CONFIG)


def _prometheus_output(env: Env, arg: str | None) -> Output:
    from .outputs.prometheus_rw import PrometheusRemoteWriteOutput, PrometheusRWConfigError

    try:
        return PrometheusRemoteWriteOutput.from_config(env, arg)
    except PrometheusRWConfigError as exc:
        raise ScenarioError(str(exc), ExitCode.INVALID_CONFIG) from None


# --- the header ----------------------------------------------------------------------------

def header_lines(prepared: Prepared) -> list[str]:
    """k6-like run header. Secrets appear only as [CONFIGURED]."""
    env, plan = prepared.env, prepared.options.plan
    rows = [
        ("scenario", f"{prepared.scenario.name} ({display_path(prepared.scenario.path)})"),
        ("target", prepared.target),
        ("model", env.get("MODEL", "")),
    ]
    for key in ("API_KEY", "LOADTEST_TOKEN"):
        if env.get(key):
            rows.append((key.lower(), env.display(key)))
    if env.bool("DEBUG") or prepared.settings.http_debug:
        from .k6compat import debug_header

        rows.append(("debug", debug_header(prepared.settings)))
    rows.append(("testid", plan.tags.get("testid", "")))
    outs = [o.description() for o in prepared.outputs]
    if prepared.summary_path is not None:
        outs.append(f"summary export ({prepared.summary_path})")
    if prepared.settings.summary_markdown:
        outs.append(f"markdown summary ({prepared.settings.summary_markdown})")
    if prepared.settings.dry_run and outs:  # nothing is written without a run
        rows.append(("output", "would write " + ", ".join(outs)))
    else:
        rows.append(("output", ", ".join(outs) or "-"))
    if prepared.workers > 1:
        rows.append(("workers", str(prepared.workers)))
    from .event_loop import loop_name  # timings differ by loop (docs/platforms.md)

    rows.append(("event loop", loop_name()))
    if prepared.settings.monitor and not prepared.settings.dry_run:
        from .monitoring_stack import dashboard_url

        rows.append(("grafana", dashboard_url(plan.tags.get("testid"), env)))
    width = max(len(k) for k, _ in rows)
    lines = ["", f"  indigo-loadtest v{__version__}", ""]
    lines += [f"  {k.rjust(width)}: {v}" for k, v in rows]
    lines += ["", f"  scenarios: {scenarios_overview(prepared)}:"]
    lines += [f"  * {describe_scenario(sc)}" for sc in plan.scenarios]
    lines.append("")
    return lines


def scenarios_overview(prepared: Prepared) -> str:
    plan = prepared.options.plan
    count = len(plan.scenarios)
    noun = "scenario" if count == 1 else "scenarios"
    return f"{count} {noun}, {plan_max_vus(plan)} max VUs"


# --- execution -----------------------------------------------------------------------------

@dataclass
class Outcome:
    exit_code: int
    threshold_results: list[ThresholdResult] = field(default_factory=list)
    interrupted: bool = False
    aborted_by: ThresholdResult | None = None
    error: str | None = None
    # Why the measurement is incomplete (a dead worker, a failed output, nothing measured):
    # each is (exit code, one-line reason); the run is reported as failed with the first.
    problems: list[tuple[int, str]] = field(default_factory=list)
    elapsed: float = 0.0  # seconds the test ran (for rates computed after the run)

    def problem(self, exit_code: int, reason: str) -> None:
        self.problems.append((int(exit_code), reason))


def client_config(env: Env, extra: dict[str, Any], settings: RunSettings | None = None) -> Any:
    """The HTTP clients' settings from env (DEBUG, LOADTEST_TOKEN), the options and the
    flags (--http-debug, --log-output, --throw)."""
    from .http.config import ClientConfig
    from .http.limits import Limits

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
        from .k6compat import client_flags

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


class Interrupts:
    """SIGINT/SIGTERM: the first stops gracefully, the second stops at once (in-flight
    iterations cancelled), a third abandons teardown too. After the test, while the
    outputs stop, a signal cuts their final write short (e.g. a stalled push); the
    summary and the files are written whatever the timing.

    The handlers are Python-level (`signal.signal`), not the loop's: they run between two
    bytecodes even while CPU-bound scenario code blocks the loop. Then a second signal
    breaks that code (see `engine.unblock`), and a third, if the code swallowed the break,
    writes what it can and exits at once (`last_resort`)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, console: Console, engine: Engine,
                 run_task: asyncio.Future[Any]) -> None:
        from .engine.unblock import LoopWatch, Unblocker

        self.console = console
        self.engine = engine
        self.run_task = run_task
        self.count = 0
        self.finishing = False  # the test is over; outputs, summary and files are written
        self.last_resort: Callable[[], None] | None = None
        self.watch = LoopWatch()
        self.unblocker = Unblocker(self.watch)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Future[Any] | None = None  # an output's stop(), cut short

    def _on_signal(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.watch.blocked():
            self._while_blocked(signum)
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(self, signum)

    def __call__(self, signum: int) -> None:
        """A signal, handled on the event loop."""
        name = signal.Signals(signum).name
        if self.finishing:
            self._cut_short(name)
        elif self.count == 1:
            self.console.note(f"\n{name} received: stopping gracefully "
                              "(press Ctrl-C again to stop at once)")
            self.engine.stop(f"interrupted by {name}")
        elif self.count == 2:
            self._hard_stop(name)
        else:
            self.run_task.cancel()

    def _note(self, text: str) -> None:
        with contextlib.suppress(RuntimeError):  # stderr was being written when interrupted
            self.console.note(text)

    def _hard_stop(self, name: str) -> None:
        self._note(f"{name} received again: stopping now; what was measured is still written")
        self.engine.stop(f"interrupted by {name}", hard=True)
        self.unblocker.keep_breaking()  # CPU-bound code would never see the stop

    def _cut_short(self, name: str) -> None:
        task = self._stopping
        if task is not None and not task.done():
            self._note(f"\n{name} received: the outputs' final write is cut short; "
                       "the summary and files are still written")
            task.cancel()

    def _while_blocked(self, signum: int) -> None:
        """In the main thread, inside whatever code blocks the loop. While the results
        are written (our own code) a signal changes nothing: they are written."""
        if self.finishing:
            return
        name = signal.Signals(signum).name
        if self.count == 1:
            self._note(f"\n{name} received: stopping gracefully; CPU-bound code blocks "
                       "the event loop: press Ctrl-C again to break it")
            self.engine.stop(f"interrupted by {name}")
            return
        if self.unblocker.break_swallowed() and self.last_resort is not None:
            self.last_resort()  # write what can be written, and exit
        self._hard_stop(name)
        self.unblocker.break_now()

    def finish(self) -> None:
        """The test is over: from now on only our own code runs, which is never broken."""
        self.finishing = True
        self.unblocker.active = False

    async def cut_short_on_signal(self, stopping: Awaitable[None]) -> bool:
        """Await an output's stop(); False if a signal cut it short."""
        task = self._stopping = asyncio.ensure_future(stopping)
        try:
            await asyncio.wait([task])
        finally:
            self._stopping = None
        if task.cancelled():
            return False
        task.result()
        return True

    @contextlib.contextmanager
    def installed(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        self._loop = loop
        self.unblocker.spare = (self.run_task, asyncio.current_task())  # never broken
        self.watch.start(loop)
        self.unblocker.install()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in self.SIGNALS}
        hold = previous[signal.SIGINT]
        if isinstance(hold, SignalHold):  # signals from before the run's start
            for signum in hold.take():
                self._on_signal(signum, None)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.unblocker.uninstall()
            self.watch.stop()


class Engine:
    """The run's execution: `engine.execution.Execution` in this process, or
    `engine.workers.WorkersExecution` across `--workers N` processes (same interface)."""

    def __init__(self, prepared: Prepared, console: Console) -> None:
        from .engine.executors import EngineError
        from .http.client import Client

        registry, plan, env = prepared.registry, prepared.options.plan, prepared.env
        config = client_config(env, plan.extra, prepared.settings)
        factory = lambda: Client(registry, config)  # noqa: E731 - one Client per VU
        self.registry = registry
        self.planned_vus = plan_max_vus(plan)  # shown until the VUs are allocated
        workers = prepared.workers
        try:
            if workers > 1:
                self.execution = self._workers(prepared, factory, config, console, workers)
            else:
                from .engine.execution import Execution

                self.execution = Execution(plan, prepared.module, registry, factory,
                                           env=dict(env), error_stream=console.err)
        except EngineError as exc:
            raise ScenarioError(str(exc), ExitCode.INVALID_CONFIG) from None

    @staticmethod
    def _workers(prepared: Prepared, factory: Callable[[], Any], config: Any,
                 console: Console, workers: int) -> Any:
        from .engine.workers import WorkersExecution

        return WorkersExecution(
            prepared.options.plan, prepared.module, prepared.registry, factory,
            workers=workers, scenario_path=prepared.scenario.path, client_config=config,
            env=dict(prepared.env), error_stream=console.err,
            snapshot_interval=snapshot_interval(prepared.outputs),
        )

    async def run(self) -> Any:
        return await self.execution.run()

    def stop(self, reason: str, *, hard: bool = False) -> None:
        self.execution.stop(reason, hard=hard)

    def live_registry(self) -> Registry:
        """Metrics so far (with workers: a merged copy of their latest snapshots)."""
        live = getattr(self.execution, "live_registry", None)
        return live() if live is not None else self.registry

    def snapshot(self) -> Snapshot:
        p = self.execution.progress()
        reqs = self.live_registry().builtin.http_reqs.aggregate().value  # type: ignore[union-attr]
        rate = getattr(self.execution, "request_rate", None)
        req_rate = rate() if rate is not None else None
        if rate is not None and req_rate is None:  # workers: until each has sent twice
            req_rate = reqs / p.elapsed if p.elapsed > 0 else 0.0
        return Snapshot(elapsed=p.elapsed, vus=p.vus, vus_max=p.vus_max or self.planned_vus,
                        iterations=p.iterations, http_reqs=int(reqs),
                        dropped_iterations=p.dropped, req_rate=req_rate)


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


async def _watch_thresholds(prepared: Prepared, engine: Engine,
                            started: float, outcome: Outcome) -> None:
    """abortOnFail: evaluated every ABORT_CHECK_INTERVAL seconds while the test runs."""
    while True:
        await asyncio.sleep(ABORT_CHECK_INTERVAL)
        crossed = prepared.thresholds.should_abort(engine.live_registry(),
                                                   time.monotonic() - started)
        if crossed is not None:
            outcome.aborted_by = crossed
            engine.stop(f"threshold {crossed.key} '{crossed.expression}' crossed (abortOnFail)")
            return


async def execute(prepared: Prepared, console: Console) -> Outcome:
    """Run the prepared test; outputs, summary and files are written however it ends."""
    settings = prepared.settings
    outcome = Outcome(exit_code=ExitCode.OK)
    engine = Engine(prepared, console)
    started = time.monotonic()
    follow_live_metrics(prepared.outputs, engine)
    tell_output_failures(prepared.outputs, console)
    await _start_outputs(prepared, console)
    recording = await start_recording(prepared, engine, console)
    loop = asyncio.get_running_loop()
    run_task = asyncio.ensure_future(engine.run())
    interrupts = Interrupts(console, engine, run_task)
    interrupts.last_resort = lambda: _last_resort(prepared, console, outcome, started)
    helpers = []
    if prepared.thresholds:
        helpers.append(asyncio.ensure_future(
            _watch_thresholds(prepared, engine, started, outcome)))
    helpers += [asyncio.ensure_future(watch(engine)) for watch in prepared.watchers]
    if not settings.quiet:
        progress = ProgressLine(engine.snapshot, console.err,
                                total_duration=planned_duration(prepared))
        helpers.append(asyncio.ensure_future(progress.run()))
    result = None
    # Installed until the files are written: a signal at any point still gets them.
    with interrupts.installed(loop):
        try:
            try:
                result = await run_task
            except asyncio.CancelledError:
                if interrupts.count < 3:
                    raise
            except ScenarioError as exc:
                outcome.error = str(exc)
                outcome.exit_code = exc.exit_code
            except Exception as exc:  # an engine fault: still write what was measured
                outcome.error = f"{type(exc).__name__}: {exc}"
                outcome.exit_code = ExitCode.GENERIC_ENGINE
                if prepared.env.bool("DEBUG"):
                    console.note("".join(traceback.format_exception(exc)))
            finally:
                for task in helpers:
                    task.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
        finally:
            interrupts.finish()
            await _stop_outputs(prepared.outputs, console, interrupts)
        report_output_failures(prepared.outputs, outcome)
        elapsed = getattr(result, "elapsed", None) or (time.monotonic() - started)
        outcome.elapsed = elapsed
        outcome.interrupted = interrupts.count > 0
        setup_error = getattr(result, "setup_error", None)
        if setup_error and not outcome.error:
            outcome.error = f"setup() failed: {setup_error}"
            outcome.exit_code = hook_exit_code(setup_error, ExitCode.SETUP_TIMEOUT)
        for line in lost_workers(result):
            outcome.problem(ExitCode.WORKER_DIED, line)
        judge_measurement(prepared, outcome, result, hard_stopped=interrupts.count > 1)
        finish(prepared, console, outcome, elapsed, result)
        await finish_recording(recording, prepared, console, outcome, elapsed)
    return outcome


def hook_exit_code(error: str, timeout_code: int) -> int:
    """107 for a setup()/teardown() that raised, k6's 100/101 for one that timed out."""
    from .engine.execution import HookTimeout

    return timeout_code if isinstance(error, HookTimeout) else ExitCode.SCRIPT_EXCEPTION


def judge_measurement(prepared: Prepared, outcome: Outcome, result: Any, *,
                      hard_stopped: bool) -> None:
    """teardown() failing is a script error (unless a second Ctrl-C skipped it); a run
    that measured nothing is a problem (see `verdict.nothing_measured`). An error or an
    interruption already explains an empty run and sets the exit code."""
    teardown_error = getattr(result, "teardown_error", None)
    if teardown_error and not outcome.error and not hard_stopped:
        outcome.error = f"teardown() failed: {teardown_error}"
        outcome.exit_code = hook_exit_code(teardown_error, ExitCode.TEARDOWN_TIMEOUT)
    if outcome.error or outcome.interrupted or result is None:
        return
    from .verdict import nothing_measured

    reason = nothing_measured(prepared.registry)
    if reason is not None:
        outcome.problem(ExitCode.NOTHING_MEASURED, reason)


def _last_resort(prepared: Prepared, console: Console, outcome: Outcome,
                 started: float) -> None:
    """Scenario code that swallowed the break still blocks the loop after a third signal:
    write what can be written without the loop (files, summary, export), then exit."""
    console.note("the scenario code does not stop: writing the results, then exiting")
    for output in prepared.outputs:
        close_now = getattr(output, "close_now", None)  # raw-sample files; no pushes
        if close_now is not None:
            with contextlib.suppress(Exception):
                close_now()
    report_output_failures(prepared.outputs, outcome)
    outcome.interrupted = True
    with contextlib.suppress(Exception):
        finish(prepared, console, outcome, time.monotonic() - started, None)
    prepared.close()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(outcome.exit_code or ExitCode.EXTERNAL_ABORT)


# Workers send their metrics every second (progress line, abortOnFail), or as often as a
# periodic output pushes, but not more often than this.
MIN_SNAPSHOT_INTERVAL = 0.1


def snapshot_interval(outputs: list[Output]) -> float:
    """How often workers send their live metrics: a periodic output pushing every 300 ms
    would otherwise push the same snapshot three times."""
    pushes = [output.config.push_interval for output in outputs  # type: ignore[attr-defined]
              if hasattr(output, "source")]
    return max(MIN_SNAPSHOT_INTERVAL, min([1.0, *pushes]))


def follow_live_metrics(outputs: list[Output], engine: Engine) -> None:
    """Periodic outputs (those with a `source`) read the engine's live metrics: with
    workers, the run's registry is filled only when they finish, so live charts would
    otherwise stay empty until the end. Their final write still reads the run's registry."""
    for output in outputs:
        if hasattr(output, "source"):
            output.source = engine.live_registry


async def _start_outputs(prepared: Prepared, console: Console) -> None:
    started: list[Output] = []
    for output in prepared.outputs:
        try:
            await output.start(prepared.registry, prepared.run_info)
        except Exception as exc:
            await _stop_outputs(started, console)  # no session or task left behind
            raise ScenarioError(f"output {output.description()}: {exc}",
                                ExitCode.INVALID_CONFIG) from None
        started.append(output)


async def _stop_outputs(outputs: list[Output], console: Console,
                        interrupts: Interrupts | None = None) -> None:
    for output in outputs:
        try:
            if interrupts is None:
                await output.stop()
            elif not await interrupts.cut_short_on_signal(output.stop()):
                console.warn(f"output {output.description()}: final write cut short by "
                             "a signal")
        except Exception as exc:  # one broken output must not lose the others' data
            console.warn(f"output {output.description()}: {exc}")


def tell_output_failures(outputs: list[Output], console: Console) -> None:
    """An output that cannot write (disk full, file removed) says so when it happens."""
    for output in outputs:
        if hasattr(output, "on_failure"):
            output.on_failure = lambda reason: console.warn(f"{reason}; the test goes on")


def report_output_failures(outputs: list[Output], outcome: Outcome) -> None:
    for output in outputs:
        failure = getattr(output, "failure", None)
        if failure:
            outcome.problem(ExitCode.OUTPUT_FAILED, failure)


def finish(prepared: Prepared, console: Console, outcome: Outcome, elapsed: float,
           result: Any) -> None:
    """Thresholds, summary, summary export and the exit code."""
    settings = prepared.settings
    outcome.threshold_results = prepared.thresholds.evaluate(prepared.registry, elapsed)
    if outcome.error:
        console.error(outcome.error)
    if not settings.no_summary:
        # handleSummary() owns stdout: the lines about the run go to stderr then.
        say = console.note if print_summary(prepared, console, outcome, elapsed) \
            else console.print
        say(f"  target: {prepared.target}")
        for line in output_summary_lines(prepared):
            say(f"  {line}")
        for line in lost_workers(result):
            say(f"  degraded: {line}")
        reason = getattr(result, "stop_reason", None)
        if outcome.aborted_by is not None:
            say(f"  aborted: threshold {outcome.aborted_by.key} "
                f"'{outcome.aborted_by.expression}' crossed (abortOnFail)")
        elif outcome.interrupted:
            say(f"  interrupted: {reason or 'stopped by a signal'}")
    warn_generator_health(prepared, console)
    write_summary_export(prepared, outcome, elapsed, console)
    thresholds_failed = not all(r.ok for r in outcome.threshold_results)
    if outcome.error:
        pass  # exit code already set
    elif outcome.interrupted:
        outcome.exit_code = ExitCode.EXTERNAL_ABORT
    elif thresholds_failed or outcome.aborted_by is not None:
        outcome.exit_code = ExitCode.THRESHOLDS_FAILED
    elif outcome.problems:
        outcome.exit_code = outcome.problems[0][0]
    write_summary_markdown(prepared, outcome, elapsed, console)  # it states the exit code
    report_thresholds(console, outcome.threshold_results)
    for _, reason in outcome.problems:
        console.error(reason)


def lost_workers(result: Any) -> list[str]:
    """One line per `--workers` process that did not run its share of the test to the
    end (it died, or was sent a signal of its own); empty for a one-process run."""
    return list(getattr(result, "lost_workers", ()))


def declare_health_metrics(registry: Registry) -> None:
    from .engine.health import declare_metrics

    declare_metrics(registry)


def warn_generator_health(prepared: Prepared, console: Console) -> None:
    """Say so when the generator itself was the bottleneck (see engine/health.py)."""
    from .engine.health import health_warnings

    for line in health_warnings(prepared.registry):
        console.warn(line)


def report_thresholds(console: Console, results: list[ThresholdResult]) -> None:
    """One line for the crossed thresholds, one for those whose metric got no samples
    (an error under --strict-thresholds, else a warning: they were not judged)."""
    def names(rs: list[ThresholdResult]) -> str:
        return ", ".join(f"{r.key} '{r.expression}'" for r in rs)

    crossed = [r for r in results if not r.ok and not r.no_samples]
    if crossed:
        console.error(f"thresholds on metrics {names(crossed)} have been crossed")
    empty = [r for r in results if r.no_samples]
    if any(not r.ok for r in empty):
        console.error(f"thresholds on metrics without samples fail (--strict-thresholds): "
                      f"{names(empty)}")
    elif empty:
        console.warn(f"thresholds on metrics without samples were not evaluated: "
                     f"{names(empty)} (--strict-thresholds makes them fail)")


def output_summary_lines(prepared: Prepared) -> list[str]:
    """What outputs report about themselves after the run (e.g. remote-write pushes)."""
    lines = []
    for output in prepared.outputs:
        summary_line = getattr(output, "summary_line", None)
        if summary_line is not None:
            lines.append(summary_line())
    return lines


def render(prepared: Prepared, outcome: Outcome, elapsed: float) -> str:
    from .metrics.summary import render_summary

    color = prepared.settings.color
    if color is None:
        color = console_is_tty()
    text = render_summary(prepared.registry, outcome.threshold_results, prepared.run_info,
                          elapsed, summary_trend_stats=prepared.trend_stats, color=color,
                          summary_time_unit=prepared.settings.summary_time_unit)
    if prepared.settings.summary_mode == "full":
        from .metrics.endpoints import endpoint_lines

        text += "\n".join(endpoint_lines(prepared.registry, elapsed,
                                          prepared.settings.summary_time_unit)) + "\n"
    return text


def print_summary(prepared: Prepared, console: Console, outcome: Outcome,
                  elapsed: float) -> bool:
    """The summary on stdout, or what the scenario's handleSummary(data) returns
    instead (True then); a failing hook is a problem of the run, in one line."""
    from . import summary_hook
    from .metrics.endpoints import endpoint_rows
    from .outputs.summary_export import build_summary_export

    hook = summary_hook.find_hook(prepared.module)
    if hook is None:
        console.print(render(prepared, outcome, elapsed))
        return False
    export = build_summary_export(prepared.registry, outcome.threshold_results, elapsed,
                                  summary_trend_stats=prepared.trend_stats)
    data = summary_hook.summary_data(export, elapsed, trend_stats=prepared.trend_stats,
                                     time_unit=prepared.settings.summary_time_unit,
                                     endpoints=endpoint_rows(prepared.registry, elapsed))
    try:
        for path in summary_hook.write_results(summary_hook.call_hook(hook, data),
                                               console.out, console.err):
            console.note(f"handleSummary() wrote {path}")
    except summary_hook.SummaryHookError as exc:
        outcome.problem(exc.exit_code, str(exc))
    return True


def console_is_tty() -> bool:
    """Colour only on a terminal, and never when NO_COLOR (no-color.org) or k6's
    K6_NO_COLOR is set to a non-empty value."""
    if os.environ.get("NO_COLOR") or os.environ.get("K6_NO_COLOR"):
        return False
    return sys.stdout.isatty()


def write_summary_export(prepared: Prepared, outcome: Outcome, elapsed: float,
                         console: Console) -> bool:
    """False if the export could not be written: an output failure of the run (its
    path was checked before the run, but the disk filled or the folder changed since)."""
    path = prepared.summary_path
    if path is None:
        return True
    from .outputs.summary_export import write_summary_export as write_export

    try:
        write_export(path, prepared.registry, outcome.threshold_results, elapsed,
                     summary_trend_stats=prepared.trend_stats)
    except OSError as exc:
        outcome.problem(ExitCode.OUTPUT_FAILED,
                        f"cannot write the summary export {path}: {exc.strerror or exc}")
        return False
    console.note(f"summary export written to {path}")
    return True


def write_summary_markdown(prepared: Prepared, outcome: Outcome, elapsed: float,
                           console: Console) -> None:
    """--summary-markdown, written once the exit code is known (it states the verdict);
    like the export, a failure to write it is an output failure."""
    path = prepared.settings.summary_markdown
    if not path:
        return
    from .outputs.summary_markdown import write_summary_markdown as write_markdown

    try:
        write_markdown(path, prepared.registry, outcome.threshold_results, elapsed,
                       title=f"indigo-loadtest: {prepared.scenario.name}",
                       verdict=mask_secrets(verdict_text(outcome)),
                       passed=outcome.exit_code == ExitCode.OK)
    except OSError as exc:
        outcome.problem(ExitCode.OUTPUT_FAILED,
                        f"cannot write the markdown summary {path}: {exc.strerror or exc}")
        if outcome.exit_code == ExitCode.OK:  # written after the exit code was decided
            outcome.exit_code = ExitCode.OUTPUT_FAILED
        return
    console.note(f"markdown summary written to {path}")


# --- the run record (time series) and the HTML report --------------------------------------

def record_paths(prepared: Prepared) -> tuple[Path | None, Path | None]:
    """Where the run record and the HTML report go: beside the summary export."""
    from .report.record import default_report_path, record_path

    if prepared.summary_path is None:
        return None, None
    settings = prepared.settings
    report = None if settings.no_report else (
        Path(settings.report) if settings.report else default_report_path(prepared.summary_path))
    return record_path(prepared.summary_path), report


def check_record_paths(prepared: Prepared) -> None:
    for what, path in zip(("the run record", "the report"), record_paths(prepared),
                          strict=True):
        reason = unwritable_reason(path) if path is not None else None
        if reason is not None:
            raise ScenarioError(f"cannot write {what} {path}: {reason}", ExitCode.INVALID_CONFIG)


async def start_recording(prepared: Prepared, engine: Engine, console: Console) -> Any:
    """The time series, read from the live metrics once per interval (nothing on the
    hot path; see metrics.timeseries), and `--dashboard` showing it live."""
    from .report.record import LiveRecording

    recording = LiveRecording(engine.live_registry, planned_duration(prepared))
    recording.start()
    if prepared.settings.dashboard is not None:
        from .report.dashboard import Dashboard

        dashboard = Dashboard(recording, {"scenario": prepared.scenario.name,
                                          "target": prepared.target})
        try:
            url = await dashboard.start(prepared.settings.dashboard)
        except OSError as exc:  # a convenience: the test runs without it
            console.warn(f"--dashboard: cannot listen on 127.0.0.1:"
                         f"{prepared.settings.dashboard}: {exc.strerror or exc}")
        else:
            recording.dashboard = dashboard
            console.note(f"dashboard: {url} (live while the test runs)")
    return recording


async def finish_recording(recording: Any, prepared: Prepared, console: Console,
                           outcome: Outcome, elapsed: float) -> None:
    """Write the run record, then the report; a file that cannot be written fails a run
    that had passed (OUTPUT_FAILED), after the summary."""
    from .report.record import write_record

    await recording.finish(prepared.registry)
    path, report_path = record_paths(prepared)
    # They go beside the summary export: without it (it could not be written, and the run
    # failed for that) a run leaves none of its result files half done.
    if path is None or prepared.summary_path is None or not prepared.summary_path.is_file():
        return
    record = run_record(prepared, outcome, elapsed, recording)
    for what, target, write in (("run record", path, write_record),
                                ("report", report_path, _write_report)):
        if target is None:
            continue
        try:
            write(target, record)
        except OSError as exc:
            console.error(f"cannot write the {what} {target}: {exc.strerror or exc}")
            if outcome.exit_code == ExitCode.OK:
                outcome.exit_code = ExitCode.OUTPUT_FAILED
            return
    if report_path is not None:
        console.note(f"report written to {report_path}")


def _write_report(path: Path, record: dict[str, Any]) -> None:
    from .report.html import write_report

    write_report(path, record)


def run_record(prepared: Prepared, outcome: Outcome, elapsed: float,
               recording: Any) -> dict[str, Any]:
    from .report.record import build_record, machine, safe_target

    plan = prepared.options.plan
    meta = {
        "tool": "indigo-loadtest", "version": __version__,
        "scenario": prepared.scenario.name,
        "scenario_file": display_path(prepared.scenario.path),
        "testid": plan.tags.get("testid", ""), "target": safe_target(prepared.target),
        "model": prepared.env.get("MODEL", ""),
        "started_at": recording.started_at, "ended_at": recording.started_at + elapsed,
        "elapsed": elapsed, "workers": prepared.workers, "machine": machine(),
        "tags": dict(plan.tags),
        "planned": {"scenarios": [describe_scenario(sc) for sc in plan.scenarios],
                    "duration": planned_duration(prepared),
                    "max_vus": plan_max_vus(plan)},
    }
    verdict = {"exit_code": int(outcome.exit_code), "text": verdict_text(outcome)}
    return build_record(meta=meta, verdict=verdict, registry=prepared.registry,
                        results=outcome.threshold_results, elapsed=elapsed,
                        recorder=recording.recorder)


def verdict_text(outcome: Outcome) -> str:
    if outcome.exit_code == ExitCode.OK:
        return "passed"
    if outcome.exit_code == ExitCode.THRESHOLDS_FAILED:
        return "failed: thresholds crossed"
    reason = outcome.error or (outcome.problems[0][1] if outcome.problems else None)
    if outcome.interrupted and not reason:
        reason = "interrupted"
    return f"failed (exit code {int(outcome.exit_code)})" + (f": {reason}" if reason else "")


# --- entry points ----------------------------------------------------------------------------

def run(settings: RunSettings, console: Console | None = None) -> int:
    """One scenario, start to end; returns the process exit code."""
    console = console or Console()
    try:
        prepared = prepare(settings, console)
    except ScenarioError as exc:
        console.error(str(exc))
        return exc.exit_code
    try:
        if not settings.quiet:
            console.print("\n".join(header_lines(prepared)))
        if settings.dry_run:
            console.print(dry_run_report(prepared))
            return ExitCode.OK
        with signals_held():
            outcome = run_event_loop(execute(prepared, console))
            prepared.close()
        return outcome.exit_code
    except ScenarioError as exc:
        console.error(str(exc))
        return exc.exit_code
    finally:
        prepared.close()


class SignalHold:
    """The SIGINT/SIGTERM handler around the event loop, outside `Interrupts`: a signal
    before the run's own handlers are installed is held for them (they replay it); one
    after they are gone finds the results written and nothing left to stop, and must not
    turn into a KeyboardInterrupt on the way out."""

    def __init__(self) -> None:
        self.pending: list[int] = []

    def __call__(self, signum: int, frame: object) -> None:
        self.pending.append(signum)

    def take(self) -> list[int]:
        pending, self.pending = self.pending, []
        return pending


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    hold = SignalHold()
    previous = {sig: signal.signal(sig, hold) for sig in Interrupts.SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check(settings: RunSettings, console: Console | None = None) -> int:
    """Import and validate (options, thresholds, exec functions) without traffic."""
    console = console or Console()
    settings.dry_run = True
    try:
        prepared = prepare(settings, console, start_target=False)
    except ScenarioError as exc:
        console.error(str(exc))
        return exc.exit_code
    prepared.close()
    console.print(dry_run_report(prepared))
    return ExitCode.OK


def dry_run_report(prepared: Prepared) -> str:
    plan = prepared.options.plan
    n = len(prepared.thresholds)
    return (f"✓ {prepared.scenario.name}: scenario imports; {len(plan.scenarios)} "
            f"scenario(s) and {n} threshold(s) valid; no traffic sent")


def run_event_loop(coro: Any) -> Any:
    from .event_loop import run as run_loop

    return run_loop(coro)
