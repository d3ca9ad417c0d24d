"""`indigo-loadtest bench`: benchmark any OpenAI-compatible server with no scenario file.

Each measurement point is a run of the generated scenario `bench_scenario/llm-bench.py`
through `run.prepare`/`run.execute` (same engine, workers, thresholds and outputs
as `run`); this module only chooses the points (one profile, a sweep, or a max-rate
search), reads each point's figures from its registry, and reports them
(docs/benchmark.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ..metrics.registry import Registry
from ..scenario.config import Env, build_env
from ..scenario.errors import ExitCode, ScenarioError
from ..scenario.options import parse_duration
from .bench_args import MAX_ERROR_RATE
from .bench_failures import FailFastWatch, every_request_failed, failure_mark
from .bench_figures import Figures, point_figures, request_counts
from .bench_report import report_lines, verdict_text, write_results
from .bench_target import open_target
from .benchmark import SPEC_ENV, BenchScenario, BenchSpec
from .slo import Objective, parse_slos
from .stream_metrics import TTFT
from .workload import tokenizer_file

SCENARIO_FILE = Path(__file__).parent / "bench_scenario" / "llm-bench.py"


# --- settings -----------------------------------------------------------------------------

@dataclasses.dataclass
class Bench:
    """One `bench` command: the spec of its points, how to run them, where results go."""

    spec: BenchSpec
    settings: Any  # run.RunSettings
    mode: str  # single | sweep | find
    objectives: list[Objective]
    sweep_rates: int
    find_steps: int
    results_file: Path
    env: Env
    workload: str = ""  # its description, for the report and the results file
    sim_options: dict[str, Any] = dataclasses.field(default_factory=dict)  # --sim
    points: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    exit_code: int = ExitCode.OK
    started_at: float = dataclasses.field(default_factory=time.time)
    report: Path | None = None  # the HTML report of all the points (None: --no-report)
    max_error_rate: float = MAX_ERROR_RATE  # a point failing more fails the run (114)


def bench_from_args(args: argparse.Namespace, settings: Any) -> Bench:
    env = build_env(settings.env_file, settings.env)
    spec = BenchSpec(
        model=args.model or configured_model(env), endpoint=args.endpoint,
        stream=not args.no_stream, itl_per_chunk=args.itl_per_chunk,
        ignore_eos=args.ignore_eos, auth=args.auth or "none",
        dataset=args.dataset or "", dataset_kind=args.dataset_kind or "",
        input_len=args.input_tokens,
        output_len=(args.output_tokens if args.output_tokens is not None
                    else "" if args.dataset else "64"),
        prefix_tokens=args.prefix_tokens, seed=args.seed, tokenizer=args.tokenizer or "",
        multi_turn=args.multi_turn,
        profile=args.profile if args.profile != "sweep" else "synchronous",
        concurrency=settings.vus or 1, rate=args.rate, burstiness=args.burstiness,
        duration=settings.duration or "30s", requests=settings.iterations or 0,
        max_concurrency=args.max_concurrency, slos=args.slo or "", timeout=args.timeout,
        warmup=parse_duration(args.warmup, "--warmup"),
        cooldown=parse_duration(args.cooldown, "--cooldown"),
        thresholds=parse_threshold_flags(args.threshold),
    )
    if args.prefix_tokens < 0 or args.max_concurrency < 1 or args.sweep_rates < 1 \
            or args.find_steps < 1:
        raise ScenarioError("--prefix-tokens must be at least 0; --max-concurrency, "
                            "--sweep-rates and --find-steps at least 1", ExitCode.USAGE)
    if args.tokenizer and not Path(tokenizer_file(args.tokenizer)).is_file():
        raise ScenarioError(f"--tokenizer {args.tokenizer}: no such file", ExitCode.USAGE)
    sim_options = parse_sim_options(args.sim, env)
    mode = "find" if args.find else "sweep" if args.profile == "sweep" else "single"
    objectives = parse_slos(args.slo)
    if mode == "find" and not objectives:
        raise ScenarioError("--find max-rate needs --slo", ExitCode.USAGE)
    if not 0 <= args.max_error_rate <= 1:  # NaN too
        raise ScenarioError("--max-error-rate: a share between 0 and 1", ExitCode.USAGE)
    if args.fail_below is not None and mode != "find":
        raise ScenarioError("--fail-below is for --find max-rate", ExitCode.USAGE)
    if args.fail_below is not None and not 0 <= args.fail_below < math.inf:
        # NaN compares false with every rate: the gate would never close
        raise ScenarioError("--fail-below: a rate of 0 or more", ExitCode.USAGE)
    if mode != "single" and settings.iterations:
        raise ScenarioError("--iterations: a sweep or search measures each point for "
                            "--duration", ExitCode.USAGE)
    # They live in the spec now: given to the runner, they would replace the generated
    # scenario with k6's shortcut one (as `run --duration` does).
    settings.vus = settings.iterations = settings.duration = None
    spec.validate()
    scenario = BenchScenario(spec, Registry())  # every mistake, before any traffic
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    results = Path(args.results_file or Path(settings.results_dir) / f"bench_{stamp}.json")
    report = None if settings.no_report else Path(settings.report or results.with_suffix(".html"))
    return Bench(spec, settings, mode, objectives, args.sweep_rates, args.find_steps,
                 results, env, scenario.workload.describe(), report=report,
                 sim_options=sim_options, max_error_rate=args.max_error_rate)


def parse_sim_options(flags: list[str], env: Env) -> dict[str, Any]:
    """--sim SETTING=VALUE: settings of the embedded simulator, checked before any traffic
    (with the INDIGO_SIM_* environment the simulator will also read)."""
    from ..simulator.config import ConfigError, from_sources, parse_setting

    if not flags:
        return {}
    if env.get("BASE"):
        raise ScenarioError("--sim sets the embedded simulator; with --base (or BASE) "
                            "there is none", ExitCode.USAGE)
    try:
        options = dict(parse_setting(flag) for flag in flags)
        from_sources(options)
    except ConfigError as exc:
        raise ScenarioError(f"--sim {exc}", ExitCode.USAGE) from None
    return options


def configured_model(env: Env) -> str:
    """MODEL when the user set it; not the Jan default, which another server may not serve
    (then the first of /v1/models is asked for)."""
    from ..scenario.config import DEFAULTS

    model = env.get("MODEL", "")
    return model if model != DEFAULTS.get("MODEL") else ""


def parse_threshold_flags(flags: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for flag in flags:
        metric, sep, expr = flag.partition("=")
        if not sep or not metric.strip() or not expr.strip():
            raise ScenarioError(f"--threshold {flag!r}: expected METRIC=EXPRESSION",
                                ExitCode.USAGE)
        out.setdefault(metric.strip(), []).append(expr.strip())
    return out


# --- one point ----------------------------------------------------------------------------

def run_point(bench: Bench, spec: BenchSpec, console: Any, *, single: bool,
              watch: SaturationWatch | None = None) -> dict[str, Any]:
    """One measurement: the generated scenario through the runner; its figures."""
    from ..engine.gc_tuning import freeze_loaded
    from ..http.redact import mask_secrets
    from ..run import execute, prepare, run_event_loop
    from ..run.header import header_lines
    from ..run.outcome import verdict_text as run_verdict

    settings = point_settings(bench, spec)
    if not single:
        settings.no_summary = True
        if settings.summary_export:
            path = Path(settings.summary_export)
            settings.summary_export = str(path.with_name(f"{path.stem}-{spec.label}"
                                                         f"{path.suffix}"))
    prepared = prepare(settings, console)
    if watch is not None:
        prepared.watchers.append(watch)
    prepared.judges.append(no_completion(spec))
    if single and bench.objectives:
        prepared.pass_marks.append(slo_mark(spec, bench.objectives))
    if bench.mode != "find" or spec.profile == "synchronous":
        # a search measures past the limit on purpose: there, failures miss the SLO
        prepared.pass_marks.append(failure_mark(
            spec.label, lambda registry: request_counts(spec, registry), bench.max_error_rate))
    fail_fast = FailFastWatch()
    prepared.watchers.append(fail_fast)
    try:
        if single and not settings.quiet:
            console.print("\n".join(header_lines(prepared)))
        elif not settings.quiet:
            console.note(f"point {spec.label}: {describe_point(spec)}")
        freeze_loaded()
        outcome = run_event_loop(execute(prepared, console))
        point = point_figures(spec, prepared.registry, outcome.elapsed, bench.objectives)
        point["exit_code"] = int(outcome.exit_code)
        point["verdict"] = mask_secrets(run_verdict(outcome))  # as its export says
        point["interrupted"] = outcome.interrupted
        point["saturated"] = watch.reason if watch is not None else None
        point["stopped_early"] = fail_fast.reason
        # stopped before its planned end (saturated, or a signal): it did not hold the load
        if (point["saturated"] or point["interrupted"]) and point["meets_slo"]:
            point["meets_slo"] = False
        return point
    finally:
        prepared.close()


def describe_point(spec: BenchSpec) -> str:
    if spec.profile == "synchronous":
        return "one request at a time"
    if spec.profile in ("concurrency", "throughput"):
        return f"{spec.vus()} concurrent requests (closed loop)"
    extra = f", burstiness {spec.burstiness:g}" if spec.profile == "gamma" else ""
    return f"{spec.rate:.4g} requests/s, {spec.profile} arrivals{extra}"


def no_completion(spec: BenchSpec) -> Callable[[Registry], str | None]:
    """The point's judge (Prepared.judges): a point in which no request completed
    measured nothing, and its summary export says so, as the exit code does."""
    def judge(registry: Registry) -> str | None:
        total, errors = request_counts(spec, registry)
        return None if total > errors else f"no request completed in point {spec.label}"
    return judge


def slo_mark(spec: BenchSpec, objectives: list[Objective]
             ) -> Callable[[Registry], tuple[int, str] | None]:
    """A single point's pass mark (Prepared.pass_marks): a missed --slo fails its run,
    so the point's summary export, record and report carry the bench's exit code, 99."""
    def mark(registry: Registry) -> tuple[int, str] | None:
        point = point_figures(spec, registry, 0.0, objectives)
        return None if point["meets_slo"] else (ExitCode.THRESHOLDS_FAILED, slo_missed(point))
    return mark


def slo_missed(point: dict[str, Any]) -> str:
    from .bench_report import slo_misses

    return f"point {point['label']} misses the SLO: {slo_misses(point)}"


# --- over-saturation ---------------------------------------------------------------------

SATURATION_CHECK = 0.5  # seconds between looks at the live metrics
SATURATION_TTFT = 10.0  # median TTFT above this multiple of the unloaded one: saturated
SATURATION_DELAY = 0.25  # share of the point after which the TTFT test applies


@dataclasses.dataclass
class SaturationWatch:
    """Stops an open-loop point once the server is clearly over-saturated: a request was
    dropped (--max-concurrency already in flight: the offered rate is not being sent),
    or the median TTFT has passed SATURATION_TTFT times the unloaded one (the queue
    keeps growing). `reason` says which."""

    ttft_limit_ms: float | None
    after_s: float
    reason: str | None = None

    async def __call__(self, engine: Any) -> None:
        started = time.monotonic()
        while self.reason is None:
            await asyncio.sleep(SATURATION_CHECK)
            late = time.monotonic() - started >= self.after_s
            self.reason = saturation(engine.live_registry(),
                                     self.ttft_limit_ms if late else None)
        engine.stop(f"over-saturated: {self.reason}")


def saturation(registry: Registry, ttft_limit_ms: float | None) -> str | None:
    figures = Figures(registry)
    dropped = figures.agg("dropped_iterations")
    if dropped is not None and dropped.value > 0:
        return f"{int(dropped.value)} request(s) dropped, --max-concurrency in flight"
    ttft = figures.agg(TTFT) if ttft_limit_ms else None
    if ttft is not None and ttft.count >= 5 and ttft.med > (ttft_limit_ms or 0):
        return (f"median TTFT {ttft.med:.0f} ms, over {SATURATION_TTFT:g}x the unloaded "
                f"{(ttft_limit_ms or 0) / SATURATION_TTFT:.0f} ms")
    return None


def saturation_watch(bench: Bench, spec: BenchSpec) -> SaturationWatch:
    sync = next((p for p in bench.points if p["profile"] == "synchronous"), None)
    unloaded = sync["ttft_ms"]["p50"] if sync is not None else None
    return SaturationWatch(unloaded * SATURATION_TTFT if unloaded else None,
                           SATURATION_DELAY * spec.duration_s())


# --- modes --------------------------------------------------------------------------------

def run_single(bench: Bench, console: Any) -> None:
    spec = dataclasses.replace(bench.spec, label=bench.spec.profile)
    bench.points.append(run_point(bench, spec, console, single=True))


# How a sweep or search measures one point: run_point in a real run; the search and
# sweep logic is also driven with a deterministic one (tests/llm/test_bench_search.py).
PointRunner = Callable[[Bench, BenchSpec, Any, SaturationWatch | None], dict[str, Any]]


def run_measured_point(bench: Bench, spec: BenchSpec, console: Any,
                       watch: SaturationWatch | None) -> dict[str, Any]:
    return run_point(bench, spec, console, single=False, watch=watch)


def run_sweep(bench: Bench, console: Any, run: PointRunner = run_measured_point) -> None:
    """synchronous, throughput, then N rates evenly between their achieved rates."""
    sync = measure(bench, console, "synchronous", "synchronous", run=run)
    if sync is None or all_failed(sync, console):
        return
    top = measure(bench, console, "throughput", "throughput", run=run)
    if top is None or all_failed(top, console):
        return
    low, high = sync["request_rate"] or 0.0, top["request_rate"] or 0.0
    if high <= low:
        console.warn(f"throughput ({high:.3g}/s) is not above the synchronous rate "
                     f"({low:.3g}/s): no rates between them to measure")
        return
    n = bench.sweep_rates
    for k in range(1, n + 1):
        rate = low + (high - low) * k / (n + 1)
        point = measure(bench, console, rate_profile(bench.spec), f"rate-{k}", rate, run)
        if point is None or all_failed(point, console):
            return
        if point["saturated"] and k < n:  # higher rates would only saturate sooner
            console.note(f"rate-{k} over-saturated: the {n - k} higher rate(s) are skipped")
            return


def all_failed(point: dict[str, Any], console: Any) -> bool:
    """A sweep stops after a point whose every request failed: the next ones, at more
    load, would only fail the same way (its reasons are in the table's notes)."""
    if not every_request_failed(point):
        return False
    console.note(f"every request of point {point['label']} failed: the sweep stops there")
    return True


def run_find(bench: Bench, console: Any,
             run: PointRunner = run_measured_point) -> dict[str, Any]:
    """Bisection for the highest rate whose point meets every SLO, between the
    synchronous rate (which must meet them) and the throughput point's rate."""
    sync = measure(bench, console, "synchronous", "synchronous", run=run)
    if sync is None or not sync["meets_slo"]:
        return {"max_rate": None, "reason": "the unloaded (synchronous) point misses the SLO"
                if sync is not None else "interrupted"}
    top = measure(bench, console, "throughput", "throughput", run=run)
    if top is None:
        return {"max_rate": None, "reason": "interrupted"}
    low, low_label = sync["request_rate"] or 0.0, "synchronous"
    high, high_label = top["request_rate"] or 0.0, "throughput"
    if top["meets_slo"]:
        # No rate measured misses the SLO: the limit was not found, only a lower bound
        # (the throughput point ran with --max-concurrency in flight, not without limit).
        return {"max_rate": high, "at_least": True, "point": "throughput", "above": None,
                "reason": "every rate measured meets the SLO, the throughput point too "
                          f"(--max-concurrency {bench.spec.max_concurrency})"}
    achieved = low
    for step in range(1, bench.find_steps + 1):
        rate = (low + high) / 2
        label = f"search-{step}"
        point = measure(bench, console, rate_profile(bench.spec), label, rate, run)
        if point is None:
            break
        if point["meets_slo"]:
            low, low_label, achieved = rate, label, point["request_rate"] or 0.0
        else:
            high, high_label = rate, label
    # The answer is the rate the passing point achieved (a short Poisson point may draw
    # fewer arrivals than its nominal rate); the bisection's bounds stay offered rates.
    return {"max_rate": achieved, "offered_rate": low, "point": low_label, "above": high,
            "above_point": high_label, "uncertainty": (high - low) / 2,
            "reason": f"meets the SLO offered {low:.4g}/s, misses it offered {high:.4g}/s"}


def rate_profile(spec: BenchSpec) -> str:
    return "gamma" if spec.burstiness != 1.0 else "poisson"


def measure(bench: Bench, console: Any, profile: str, label: str, rate: float = 0.0,
            run: PointRunner = run_measured_point) -> dict[str, Any] | None:
    """One point of a sweep or search; None when the run was interrupted (stop there)."""
    spec = dataclasses.replace(bench.spec, profile=profile, label=label, rate=rate,
                               seed=bench.spec.seed + len(bench.points),
                               concurrency=bench.spec.max_concurrency
                               if profile == "throughput" else bench.spec.concurrency,
                               burstiness=bench.spec.burstiness if profile == "gamma" else 1.0)
    watch = saturation_watch(bench, spec) if rate else None
    point = run(bench, spec, console, watch)
    bench.points.append(point)
    if point["exit_code"] and not bench.exit_code:
        bench.exit_code = point["exit_code"]
    save_progress(bench)
    return None if point["interrupted"] else point


def save_progress(bench: Bench) -> None:
    """The results so far, after each point of a sweep or search, marked incomplete: a
    run killed later (SIGKILL, the out-of-memory killer) keeps the points it measured.
    The final write replaces it (and reports a file that cannot be written)."""
    verdict = {"exit_code": None, "text": f"incomplete: written after point "
               f"{bench.points[-1]['label']}; the benchmark went on, or was killed"}
    with contextlib.suppress(OSError):
        write_results(bench, None, verdict)


# --- entry point --------------------------------------------------------------------------

def run_bench(args: argparse.Namespace, settings: Any) -> int:
    """The `bench` command; returns the exit code."""
    from ..outputs.base import unwritable_reason
    from ..run import Console
    from ..run.interrupts import signals_held

    console = Console()
    settings.scenario = str(SCENARIO_FILE)
    if args.base:
        settings.env["BASE"] = args.base
    if args.api_key:
        settings.env["API_KEY"] = args.api_key
    bench = bench_from_args(args, settings)
    for what, path in (("results file", bench.results_file), ("report", bench.report)):
        reason = unwritable_reason(path) if path is not None else None
        if reason is not None:
            raise ScenarioError(f"cannot write the {what} {path}: {reason}",
                                ExitCode.INVALID_CONFIG)
    if settings.dry_run:
        return dry_run(bench, console)
    answer = None
    # Outside a point's run (the model lookup, between two points) no run's handler is
    # installed: a SIGINT/SIGTERM there is held and acted on by the next point's (it
    # stops at once, interrupted), rather than kill the process with nothing written.
    with signals_held():
        simulator = open_target(bench, console)
        try:
            modes: dict[str, Callable[[Bench, Any], Any]] = {
                "single": run_single, "sweep": run_sweep, "find": run_find}
            answer = modes[bench.mode](bench, console)
            if bench.mode == "single":
                bench.exit_code = bench.points[0]["exit_code"]
        except KeyboardInterrupt:  # what was measured is still written
            console.note("interrupted")
            bench.exit_code = ExitCode.EXTERNAL_ABORT
        finally:
            if simulator is not None:
                simulator.stop()
    code, problem = final_exit_code(bench, answer, args.fail_below)
    doc, unwritten = save_results(bench, answer, code, problem)
    for line in report_lines(bench, answer):
        console.print(line)
    for line in (None if said_by_points(bench, problem) else problem, unwritten):
        if line:
            console.error(line)
    failed = ExitCode.OUTPUT_FAILED if unwritten else ExitCode.OK
    return write_report(bench, doc, console, code or failed)


def save_results(bench: Bench, answer: dict[str, Any] | None, code: int,
                 problem: str | None) -> tuple[dict[str, Any], str | None]:
    """The results file's content, and why it could not be written (a full disk): then
    the table and the report still show the points, and the run fails (OUTPUT_FAILED)."""
    from .bench_report import results_doc

    try:
        return write_results(bench, answer, verdict_text(bench, code, problem)), None
    except OSError as exc:
        reason = f"cannot write the results file {bench.results_file}: {exc.strerror or exc}"
        verdict = verdict_text(bench, code or ExitCode.OUTPUT_FAILED, problem or reason)
        return results_doc(bench, answer, verdict), reason


def final_exit_code(bench: Bench, answer: dict[str, Any] | None,
                    fail_below: float | None) -> tuple[int, str | None]:
    """The first point's failure; else NOTHING_MEASURED when a point completed nothing;
    else THRESHOLDS_FAILED when the max rate meeting the SLO is below --fail-below.
    With the reason of the last two."""
    nothing = nothing_completed(bench)
    if bench.exit_code:
        return bench.exit_code, nothing if bench.exit_code == ExitCode.NOTHING_MEASURED else None
    if nothing:
        return ExitCode.NOTHING_MEASURED, nothing
    missed = slo_failure(bench, answer)
    if missed:
        return ExitCode.THRESHOLDS_FAILED, missed
    if answer is not None and fail_below is not None:
        found = answer.get("max_rate")
        if found is None or found < fail_below:
            shown = "none" if found is None else f"{found:.4g} req/s"
            return ExitCode.THRESHOLDS_FAILED, (f"the max rate meeting the SLO ({shown}) is "
                                                f"below --fail-below {fail_below:g}")
    return ExitCode.OK, None


def nothing_completed(bench: Bench) -> str | None:
    empty = [p["label"] for p in bench.points if not p["completed"]]
    return f"no request completed in point(s) {', '.join(empty)}" if empty else None


def said_by_points(bench: Bench, problem: str | None) -> bool:
    """Whether `problem` is the "no request completed" that each empty point's own run
    has already printed as its `error:` line (its exit code NOTHING_MEASURED): bench
    printed it a second time. It stays the results file's verdict."""
    empty = [p for p in bench.points if not p["completed"]]
    return (problem is not None and problem == nothing_completed(bench)
            and all(p["exit_code"] == ExitCode.NOTHING_MEASURED for p in empty))


def slo_failure(bench: Bench, answer: dict[str, Any] | None) -> str | None:
    """--slo is the pass mark of a single point, and a search that finds no rate meeting
    it fails (a sweep only reports each point's verdict: it measures past the limit)."""
    if not bench.objectives or not bench.points:
        return None
    if bench.mode == "single" and not bench.points[0]["meets_slo"]:
        return slo_missed(bench.points[0])
    if bench.mode == "find" and answer is not None and answer.get("max_rate") is None:
        return f"no rate meets the SLO: {answer.get('reason', '')}"
    return None


def write_report(bench: Bench, doc: dict[str, Any], console: Any, code: int) -> int:
    """The HTML report of the points beside the results file, as `run` writes its own;
    one that cannot be written fails a benchmark that had passed (OUTPUT_FAILED)."""
    from ..report.sweep import write_sweep_report

    if bench.report is None:
        return code
    try:
        write_sweep_report(bench.report, doc)
    except OSError as exc:
        console.error(f"cannot write the report {bench.report}: {exc.strerror or exc}")
        return code or ExitCode.OUTPUT_FAILED
    console.note(f"report written to {bench.report}")
    return code


def dry_run(bench: Bench, console: Any) -> int:
    """The first point's header and checks, no target started, nothing sent."""
    from ..run import run

    if not bench.spec.model:
        bench.spec.model = "(the first of /v1/models)"
    spec = dataclasses.replace(bench.spec, label=bench.spec.profile)
    return run(point_settings(bench, spec), console)


def point_settings(bench: Bench, spec: BenchSpec) -> Any:
    """The run settings of one point: its spec in the env (and its model, for the header)."""
    spec = dataclasses.replace(spec, epoch=time.time())
    env = {**bench.settings.env, SPEC_ENV: spec.to_json(), "MODEL": spec.model}
    # --report FILE names the benchmark's report: each point's goes beside its export.
    return dataclasses.replace(bench.settings, env=env, report=None)
