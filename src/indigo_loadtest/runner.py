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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO
from urllib.parse import urlsplit

from . import __version__
from .engine.plan import ScenarioConfig, TestPlan
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
    summary_trend_stats: str | None = None  # --summary-trend-stats "avg,p(99)"
    no_summary: bool = False
    quiet: bool = False
    workers: int | None = None
    dry_run: bool = False
    results_dir: str = "results"
    color: bool | None = None
    monitor: bool = False  # push to Prometheus (checked first) and print the Grafana URL


class Console:
    """Where the run talks: results on stdout, progress and diagnostics on stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        self.err.write(text + "\n")
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
    return Overrides(vus=settings.vus, iterations=settings.iterations, duration=duration,
                     tags=dict(settings.tags))


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
    return urlsplit(base).hostname or base


def prepare(settings: RunSettings, console: Console, *, start_target: bool = True) -> Prepared:
    """Resolve, configure, import and validate; starts the embedded simulator when BASE is
    unset and `start_target` (not for --dry-run). The caller must `close()` the result."""
    overrides = overrides_from(settings)
    check_outputs_fit_workers(settings)  # also reports a typo in --out before anything starts
    env = build_env(settings.env_file, settings.env)
    if settings.monitor and not settings.dry_run:
        enable_monitoring(settings, env)
    folder = scenarios_dir(settings.scenarios_dir, env)
    scenario = resolve(settings.scenario, folder)
    check_syntax(scenario.path)

    simulator = None
    embedded = not env.get("BASE")
    if embedded:
        values = dict(env)
        if start_target and not settings.dry_run:
            simulator = start_simulator(env.get("API_KEY", ""))
            values["BASE"] = simulator.url
        else:
            values["BASE"] = SIMULATOR_PLACEHOLDER
        env = Env(values)
    try:
        prepared = _prepare_loaded(settings, console, overrides, env, scenario, simulator)
    except BaseException:
        if simulator is not None:
            simulator.stop()
        raise
    prepared.embedded = embedded
    return prepared


def _prepare_loaded(settings: RunSettings, console: Console, overrides: Overrides, env: Env,
                    scenario: ScenarioFile, simulator: Any) -> Prepared:
    config_mod.activate(env)
    registry = Registry()
    module = load_module(scenario.path, registry)
    options = parse_options(getattr(module, "options", None), overrides)
    for warning in options.warnings:
        console.warn(warning)
    check_exec_functions(options.plan, module)
    try:
        thresholds = parse_thresholds(options.thresholds)
        thresholds.validate(registry)
    except ThresholdError as exc:
        raise ScenarioError(str(exc), ExitCode.INVALID_CONFIG) from None
    trend_stats = summary_trend_stats(settings, options.plan.extra)

    now = datetime.now()
    timestamp = now.strftime("%Y%m%d-%H%M%S")
    plan = options.plan
    base_tags = {
        "testid": f"{scenario.name}-{timestamp}",
        "test_case": scenario.name,
        "environment": base_url_tag(env["BASE"], env["BASE"] == SIMULATOR_PLACEHOLDER
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
    if env.bool("DEBUG"):
        rows.append(("debug", "every request and response is printed (secrets masked)"))
    rows.append(("testid", plan.tags.get("testid", "")))
    outs = [o.description() for o in prepared.outputs]
    if prepared.summary_path is not None:
        outs.append(f"summary export ({prepared.summary_path})")
    if prepared.settings.dry_run and outs:  # nothing is written without a run
        rows.append(("output", "would write " + ", ".join(outs)))
    else:
        rows.append(("output", ", ".join(outs) or "-"))
    if prepared.workers > 1:
        rows.append(("workers", str(prepared.workers)))
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


def client_config(env: Env, extra: dict[str, Any]) -> Any:
    """The HTTP clients' settings from env (DEBUG, LOADTEST_TOKEN) and the options."""
    from .http.config import ClientConfig

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
    if extra.get("user_agent"):
        kwargs["user_agent"] = str(extra["user_agent"])
    if extra.get("timeout") is not None:
        kwargs["timeout"] = extra["timeout"]
    if extra.get("max_redirects") is not None:
        kwargs["max_redirects"] = int(extra["max_redirects"])
    try:
        return ClientConfig(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"options: {exc}") from None


class Interrupts:
    """SIGINT/SIGTERM: the first stops gracefully, the second stops at once (in-flight
    iterations cancelled), a third abandons teardown too."""

    def __init__(self, console: Console, engine: Engine,
                 run_task: asyncio.Future[Any]) -> None:
        self.console = console
        self.engine = engine
        self.run_task = run_task
        self.count = 0

    def __call__(self, signum: int) -> None:
        self.count += 1
        name = signal.Signals(signum).name
        if self.count == 1:
            self.console.note(f"\n{name} received: stopping gracefully "
                              "(press Ctrl-C again to stop at once)")
            self.engine.stop(f"interrupted by {name}")
        elif self.count == 2:
            self.console.note(f"{name} received again: stopping now; "
                              "what was measured is still written")
            self.engine.stop(f"interrupted by {name}", hard=True)
        else:
            self.run_task.cancel()

    @contextlib.contextmanager
    def installed(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        sigs = (signal.SIGINT, signal.SIGTERM)
        for sig in sigs:
            loop.add_signal_handler(sig, self, sig)
        try:
            yield
        finally:
            for sig in sigs:
                loop.remove_signal_handler(sig)


class Engine:
    """The run's execution: `engine.execution.Execution` in this process, or
    `engine.workers.WorkersExecution` across `--workers N` processes (same interface)."""

    def __init__(self, prepared: Prepared, console: Console) -> None:
        from .engine.executors import EngineError
        from .http.client import Client

        registry, plan, env = prepared.registry, prepared.options.plan, prepared.env
        config = client_config(env, plan.extra)
        factory = lambda: Client(registry, config)  # noqa: E731 - one Client per VU
        self.registry = registry
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
        return Snapshot(elapsed=p.elapsed, vus=p.vus, vus_max=p.vus_max,
                        iterations=p.iterations, http_reqs=int(reqs),
                        dropped_iterations=p.dropped)


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
    await _start_outputs(prepared, console)
    loop = asyncio.get_running_loop()
    run_task = asyncio.ensure_future(engine.run())
    interrupts = Interrupts(console, engine, run_task)
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
    try:
        with interrupts.installed(loop):
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
        await _stop_outputs(prepared.outputs, console)
    elapsed = getattr(result, "elapsed", None) or (time.monotonic() - started)
    outcome.elapsed = elapsed
    outcome.interrupted = interrupts.count > 0
    setup_error = getattr(result, "setup_error", None)
    if setup_error and not outcome.error:
        outcome.error = f"setup() failed: {setup_error}"
        outcome.exit_code = ExitCode.SCRIPT_EXCEPTION
    for line in lost_workers(result):
        outcome.problem(ExitCode.WORKER_DIED, line)
    finish(prepared, console, outcome, elapsed, result)
    return outcome


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


async def _stop_outputs(outputs: list[Output], console: Console) -> None:
    for output in outputs:
        try:
            await output.stop()
        except Exception as exc:  # one broken output must not lose the others' data
            console.warn(f"output {output.description()}: {exc}")


def finish(prepared: Prepared, console: Console, outcome: Outcome, elapsed: float,
           result: Any) -> None:
    """Thresholds, summary, summary export and the exit code."""
    settings = prepared.settings
    outcome.threshold_results = prepared.thresholds.evaluate(prepared.registry, elapsed)
    if outcome.error:
        console.error(outcome.error)
    if not settings.no_summary:
        console.print(render(prepared, outcome, elapsed))
        console.print(f"  target: {prepared.target}")
        for line in output_summary_lines(prepared):
            console.print(f"  {line}")
        for line in lost_workers(result):
            console.print(f"  degraded: {line}")
        reason = getattr(result, "stop_reason", None)
        if outcome.aborted_by is not None:
            console.print(f"  aborted: threshold {outcome.aborted_by.key} "
                          f"'{outcome.aborted_by.expression}' crossed (abortOnFail)")
        elif outcome.interrupted:
            console.print(f"  interrupted: {reason or 'stopped by a signal'}")
    exported = write_summary_export(prepared, outcome, elapsed, console)
    thresholds_failed = not all(r.ok for r in outcome.threshold_results)
    if outcome.error:
        pass  # exit code already set
    elif outcome.interrupted:
        outcome.exit_code = ExitCode.EXTERNAL_ABORT
    elif thresholds_failed or outcome.aborted_by is not None:
        outcome.exit_code = ExitCode.THRESHOLDS_FAILED
    elif outcome.problems:
        outcome.exit_code = outcome.problems[0][0]
    elif not exported:  # the path was checked before the run, but changed since
        outcome.exit_code = ExitCode.INVALID_CONFIG
    if thresholds_failed:
        failed = [f"{r.key} '{r.expression}'" for r in outcome.threshold_results if not r.ok]
        console.error(f"thresholds on metrics {', '.join(failed)} have been crossed")
    for _, reason in outcome.problems:
        console.error(reason)


def lost_workers(result: Any) -> list[str]:
    """One line per `--workers` process that did not run its share of the test to the
    end (it died, or was sent a signal of its own); empty for a one-process run."""
    return list(getattr(result, "lost_workers", ()))


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
    return render_summary(prepared.registry, outcome.threshold_results, prepared.run_info,
                          elapsed, summary_trend_stats=prepared.trend_stats, color=color)


def console_is_tty() -> bool:
    """Colour only on a terminal, and never when NO_COLOR (no-color.org) or k6's
    K6_NO_COLOR is set to a non-empty value."""
    if os.environ.get("NO_COLOR") or os.environ.get("K6_NO_COLOR"):
        return False
    return sys.stdout.isatty()


def write_summary_export(prepared: Prepared, outcome: Outcome, elapsed: float,
                         console: Console) -> bool:
    """False if the export could not be written (the error is printed)."""
    path = prepared.summary_path
    if path is None:
        return True
    from .outputs.summary_export import write_summary_export as write_export

    try:
        write_export(path, prepared.registry, outcome.threshold_results, elapsed,
                     summary_trend_stats=prepared.trend_stats)
    except OSError as exc:
        console.error(f"cannot write the summary export {path}: {exc.strerror or exc}")
        return False
    console.note(f"summary export written to {path}")
    return True


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
        outcome = run_event_loop(execute(prepared, console))
        return outcome.exit_code
    except ScenarioError as exc:
        console.error(str(exc))
        return exc.exit_code
    finally:
        prepared.close()


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
