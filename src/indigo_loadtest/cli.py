"""The `indigo-loadtest` command: list, check, run, new, serve, monitoring."""

from __future__ import annotations

from .startup import checkpoint, end_startup, hold_startup

if __name__ == "__main__":  # `python -m indigo_loadtest.cli`: held before the imports below
    hold_startup()

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from . import __version__
from .scenario.config import build_env, parse_assignments
from .scenario.discovery import (
    BUILTIN_SCENARIOS_DIR,
    builtins_not_in,
    discover,
    display_path,
    scenarios_dir,
)
from .scenario.errors import ExitCode, ScenarioError
from .scenario.templates import create_scenario
from .signal_forwarding import SignalForwarder

DELEGATED = {
    "serve": ("indigo_loadtest.simulator.cli", "the embedded simulator"),
    "monitoring": ("indigo_loadtest.monitoring.stack", "the monitoring stack"),
}


class UsageError(ScenarioError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `error:` line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitCode.USAGE, f"error: {message} (see `{self.prog} --help`)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_scenario_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenarios-dir", metavar="DIR",
                   help="folder of scenario files (default: $INDIGO_SCENARIOS_DIR, "
                        "./scenarios, then the built-in scenarios)")
    p.add_argument("--env-file", metavar="FILE", help="read configuration from FILE "
                   "instead of ./.env")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V",
                   help="set a configuration value (overrides .env and the environment)")


def add_run_flags(p: argparse.ArgumentParser) -> None:
    add_scenario_source(p)
    p.add_argument("-u", "--vus", type=positive_int, help="number of VUs")
    p.add_argument("-i", "--iterations", type=positive_int, help="total iterations "
                   "(replaces the scenario's execution options)")
    p.add_argument("-d", "--duration", metavar="DURATION", help="test duration, e.g. 30s, "
                   "5m (replaces the scenario's execution options)")
    p.add_argument("--tag", action="append", default=[], metavar="K=V",
                   help="add a tag to every sample (repeatable)")
    p.add_argument("-o", "--out", action="append", default=[], metavar="OUTPUT",
                   help="json[=FILE], csv[=FILE] or prometheus-rw[=URL] (repeatable)")
    p.add_argument("--summary-export", metavar="FILE", help="write the end-of-test summary "
                   "JSON here (default: results/<scenario>_<timestamp>.json)")
    p.add_argument("--summary-trend-stats", metavar="STATS", help="trend columns of the "
                   "summary and the export, e.g. \"avg,med,p(99),p(99.9)\" (default: the "
                   "scenario's summaryTrendStats, else avg,min,med,max,p(90),p(95))")
    p.add_argument("--results-dir", default="results", metavar="DIR",
                   help="folder for result files (default: results)")
    p.add_argument("--no-summary", action="store_true", help="do not print the summary")
    p.add_argument("-q", "--quiet", action="store_true", help="no header, no progress line")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="run the test in N processes")
    p.add_argument("--dry-run", action="store_true",
                   help="import and validate the scenario, send no traffic")
    p.add_argument("--no-color", action="store_true", help="plain text summary")
    p.add_argument("--monitor", action="store_true", help="check that Prometheus accepts "
                   "remote writes, push metrics there and print the Grafana dashboard URL")
    p.add_argument("--strict-thresholds", action="store_true", help="a threshold on a "
                   "metric that got no samples fails the run (default: reported, not judged; "
                   "also INDIGO_STRICT_THRESHOLDS=true)")
    p.add_argument("--vus-limit", type=positive_int, metavar="N", help="reject plans that "
                   "may run more than N VUs (default: $INDIGO_VUS_LIMIT, else 100000)")
    p.add_argument("--rate-limit", type=positive_int, metavar="N", help="reject plans "
                   "whose arrival rates may exceed N iterations/s (default: $INDIGO_RATE_LIMIT, "
                   "else 1000000)")
    add_report_flags(p)
    add_k6_flags(p)


def add_k6_flags(p: argparse.ArgumentParser) -> None:
    """k6's flags of the same names (each also a K6_*/INDIGO_* variable; see k6compat)."""
    p.add_argument("-s", "--stage", action="append", default=[], metavar="DURATION:VUS",
                   help="a ramping-vus stage, e.g. 30s:10 (repeatable; replaces the "
                        "scenario's execution options)")
    p.add_argument("--no-thresholds", action="store_true", help="do not evaluate thresholds")
    p.add_argument("--summary-time-unit", metavar="UNIT", help="show the summary's times "
                   "in s, ms or us (default: whichever reads best)")
    p.add_argument("--summary-mode", metavar="MODE", help="compact (default) or full: "
                   "also a table per endpoint (name, method, requests, failures, median, "
                   "p95, p99, req/s)")
    # As in k6 the mode is given only with '=' (`--http-debug=full`): main() turns that
    # into the hidden --http-debug-mode, so the help shows the flag as it is typed.
    p.add_argument("--http-debug", dest="http_debug", action="store_const", const="headers",
                   help="print every request and response head on stderr "
                        "(--http-debug=full: the bodies too, streamed ones as they "
                        "arrive); secrets masked")
    p.add_argument("--http-debug-mode", dest="http_debug", help=argparse.SUPPRESS)
    p.add_argument("--log-output", metavar="TARGET", help="where --http-debug/DEBUG "
                   "output goes: stderr (default), stdout, none or file=PATH")
    p.add_argument("--throw", action="store_true", help="a failed request raises "
                   "RequestFailed in the iteration (which ends, counted as an error)")


def add_report_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report", metavar="FILE", nargs="?", const=None, help="write the HTML "
                   "report to FILE (default, also without --report: beside the summary "
                   "export, results/<scenario>_<timestamp>.html; --no-report: none)")
    p.add_argument("--no-report", action="store_true", help="no HTML report (the run record "
                   "with the time series is still written)")
    p.add_argument("--dashboard", metavar="PORT", nargs="?", const=5665, type=port_number,
                   help="show the charts live on http://127.0.0.1:PORT while the test runs "
                        "(default port 5665; 0: any free port)")


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


class VersionAction(argparse.Action):
    """--version: the version and whether the stream path is compiled (its modules are
    imported only for this, not for every command's parser)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from ._compiled import describe

        print(f"{parser.prog} {__version__} (stream path: {describe()})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="indigo-loadtest",
        description="Load and flow tests for LLM chat APIs (Indigo/Jan and OpenAI-compatible).",
    )
    parser.add_argument("--version", action=VersionAction, nargs=0,
                        help="show the version and how the stream path runs, and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)

    p = sub.add_parser("list", help="list the scenarios and their descriptions")
    add_scenario_source(p)

    p = sub.add_parser("check", help="import and validate a scenario without traffic")
    p.add_argument("scenario", metavar="SCENARIO", help="scenario name or path to a .py file")
    add_scenario_source(p)

    p = sub.add_parser("run", help="run a scenario (or --all of them)")
    p.add_argument("scenario", metavar="SCENARIO", nargs="?",
                   help="scenario name or path to a .py file")
    p.add_argument("--all", action="store_true", help="run every scenario in turn")
    p.add_argument("--pause", type=non_negative_float, default=2.0, metavar="SECONDS",
                   help="pause between scenarios with --all (default: 2)")
    add_run_flags(p)
    add_ray_flag(p)
    p.add_argument("--summary-markdown", metavar="FILE", help="also write the thresholds "
                   "and key metrics as a markdown table (e.g. for $GITHUB_STEP_SUMMARY)")

    from .llm.bench_args import BENCH_DESCRIPTION
    from .llm.bench_args import add_arguments as add_bench_arguments

    p = sub.add_parser("bench", help="benchmark an OpenAI-compatible server (no scenario file)",
                       description=BENCH_DESCRIPTION)
    add_bench_arguments(p)
    add_run_flags(p)

    p = sub.add_parser("new", help="create a scenario file from the template or another one")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--from", dest="source", metavar="SCENARIO",
                   help="copy this scenario instead of the template")
    p.add_argument("--scenarios-dir", metavar="DIR")

    from .report.commands import add_commands

    add_commands(sub)
    for name, (_, what) in DELEGATED.items():
        sub.add_parser(name, help=f"{what} (see `indigo-loadtest {name} --help`)",
                       add_help=False)
    return parser


# --- commands ---------------------------------------------------------------------------

def folder_from(args: argparse.Namespace) -> Path:
    env = build_env(getattr(args, "env_file", None),
                    parse_assignments(getattr(args, "env", []), "--env"))
    return scenarios_dir(args.scenarios_dir, env)


def cmd_list(args: argparse.Namespace) -> int:
    """The user's folder (when it has scenarios), then the built-ins it does not shadow."""
    folder = folder_from(args)
    sections = [(f"Scenarios in {display_path(folder)}:", discover(folder)),
                ("Built-in scenarios:", builtins_not_in(folder))]
    sections = [(title, found) for title, found in sections if found]
    if not sections:
        print(f"Scenarios in {display_path(folder)}:\n  (none)")
        return ExitCode.OK
    width = max(len(s.name) for _, found in sections for s in found)
    for i, (title, found) in enumerate(sections):
        print(("\n" if i else "") + title)
        for s in found:
            print(f"  {s.name.ljust(width)}  {s.description}".rstrip())
    return ExitCode.OK


def settings_from(args: argparse.Namespace, scenario: str):  # -> RunSettings
    from .run import RunSettings

    return RunSettings(
        scenario=scenario,
        scenarios_dir=args.scenarios_dir,
        env_file=args.env_file,
        env=parse_assignments(args.env, "--env"),
        tags=parse_assignments(getattr(args, "tag", []), "--tag"),
        vus=getattr(args, "vus", None),
        iterations=getattr(args, "iterations", None),
        duration=getattr(args, "duration", None),
        outs=list(getattr(args, "out", [])),
        summary_export=getattr(args, "summary_export", None),
        summary_markdown=getattr(args, "summary_markdown", None),
        summary_trend_stats=getattr(args, "summary_trend_stats", None),
        no_summary=getattr(args, "no_summary", False),
        quiet=getattr(args, "quiet", False),
        workers=getattr(args, "workers", None),
        ray=getattr(args, "ray", None),
        dry_run=getattr(args, "dry_run", False),
        results_dir=getattr(args, "results_dir", "results"),
        color=False if getattr(args, "no_color", False) else None,
        monitor=getattr(args, "monitor", False),
        strict_thresholds=getattr(args, "strict_thresholds", False),
        vus_limit=getattr(args, "vus_limit", None),
        rate_limit=getattr(args, "rate_limit", None),
        report=getattr(args, "report", None),
        no_report=getattr(args, "no_report", False),
        dashboard=getattr(args, "dashboard", None),
        stages=list(getattr(args, "stage", [])),
        no_thresholds=getattr(args, "no_thresholds", False),
        summary_time_unit=getattr(args, "summary_time_unit", None),
        summary_mode=getattr(args, "summary_mode", None),
        http_debug=getattr(args, "http_debug", None),
        log_output=getattr(args, "log_output", None),
        throw=getattr(args, "throw", False),
    )


def cmd_check(args: argparse.Namespace) -> int:
    from .run import check

    return check(settings_from(args, args.scenario))


def cmd_run(args: argparse.Namespace) -> int:
    ray_argument_or_scenario(args)
    if args.all:
        if args.scenario:
            raise UsageError("give a scenario or --all, not both")
        return run_all(args)
    if not args.scenario:
        raise UsageError("which scenario? give its name (see `indigo-loadtest list`) or --all")
    from .run import run

    return run(settings_from(args, args.scenario))


def add_ray_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", metavar="ADDRESS", nargs="?", const="",
                   help="run the shards as Ray actors: on the cluster at ADDRESS (host:port, "
                   "ray://host:10001, auto), else $RAY_ADDRESS, else a local Ray instance "
                   "(pip install 'indigo-loadtest[ray]'; see docs/ray.md)")


def ray_argument_or_scenario(args: argparse.Namespace) -> None:
    """`run --ray NAME`: NAME is the scenario unless it reads as an address (has a ':', or
    is auto/local) or a scenario was given too."""
    from .run.ray import looks_like_address

    value = getattr(args, "ray", None)
    if value and not args.scenario and not looks_like_address(value):
        args.scenario, args.ray = value, ""


def cmd_bench(args: argparse.Namespace) -> int:
    """An LLM serving benchmark: a generated scenario run by the runner (llm/bench_cli.py)."""
    from .llm.bench_cli import run_bench

    return run_bench(args, settings_from(args, ""))


def cmd_new(args: argparse.Namespace) -> int:
    folder = folder_from(args)
    path = create_scenario(args.name, folder, args.source)
    print(f"created {display_path(path)}; run it with `indigo-loadtest run {path.stem}`")
    return ExitCode.OK


# --- run --all ------------------------------------------------------------------------

@dataclass
class AllResult:
    name: str
    exit_code: int
    seconds: float

    @property
    def verdict(self) -> str:
        return {
            ExitCode.OK: "passed",
            ExitCode.THRESHOLDS_FAILED: "FAILED (thresholds)",
            ExitCode.EXTERNAL_ABORT: "interrupted",
            ExitCode.SCRIPT_EXCEPTION: "FAILED (script error)",
            ExitCode.INVALID_CONFIG: "FAILED (invalid options)",
            ExitCode.WORKER_DIED: "FAILED (a worker died)",
            ExitCode.OUTPUT_FAILED: "FAILED (an output failed)",
            ExitCode.NOTHING_MEASURED: "FAILED (nothing measured)",
        }.get(self.exit_code, f"FAILED (exit code {self.exit_code})")


def child_args(args: argparse.Namespace, folder: Path) -> list[str]:
    """The flags of `run --all` that each scenario's own run gets."""
    out = ["--scenarios-dir", str(folder), "--results-dir", args.results_dir]
    if args.env_file:
        out += ["--env-file", args.env_file]
    for flag, values in (("--env", args.env), ("--tag", args.tag), ("--out", args.out),
                         ("--stage", args.stage)):
        for value in values:
            out += [flag, value]
    for flag in ("vus", "iterations", "duration", "workers", "summary_trend_stats",
                 "vus_limit", "rate_limit", "summary_time_unit", "summary_mode", "log_output"):
        value = getattr(args, flag)
        if value is not None:
            out += ["--" + flag.replace("_", "-"), str(value)]
    for flag in ("no_summary", "quiet", "dry_run", "no_color", "monitor",
                 "strict_thresholds", "no_report", "no_thresholds", "throw"):
        if getattr(args, flag):
            out.append("--" + flag.replace("_", "-"))
    if args.http_debug is not None:
        out.append(f"--http-debug={args.http_debug}")
    if getattr(args, "ray", None) is not None:  # last: a bare --ray takes no value then
        out.append(f"--ray={args.ray}" if args.ray else "--ray")
    return out


def run_all(args: argparse.Namespace) -> int:
    """Every scenario in turn, each in its own process (a clean registry, event loop
    and simulator each), then a pass/fail table."""
    if args.summary_export or args.report or args.summary_markdown:
        raise UsageError("--summary-export, --summary-markdown and --report name one file; "
                         "with --all each "
                         "scenario writes its own under --results-dir")
    if args.dashboard is not None:
        raise UsageError("--dashboard shows one run; use it without --all")
    folder = folder_from(args)
    # The user's folder; the built-ins when it has none (as `run NAME` finds them too).
    scenarios = discover(folder)
    if not scenarios:
        folder, scenarios = BUILTIN_SCENARIOS_DIR, discover(BUILTIN_SCENARIOS_DIR)
    if not scenarios:
        raise UsageError(f"no scenarios in {display_path(folder)}")
    print(planned_all_line(args, folder, [s.name for s in scenarios]), flush=True)
    end_startup()  # from here on each signal is forwarded to the running scenario
    results: list[AllResult] = []
    forwarder = SignalForwarder()
    with forwarder.installed():
        for i, scenario in enumerate(scenarios):
            if forwarder.interrupted:
                break
            if i and args.pause:
                forwarder.sleep(args.pause)
                if forwarder.interrupted:
                    break
            print(f"\n=== [{i + 1}/{len(scenarios)}] {scenario.name} ===", flush=True)
            argv = [sys.executable, "-m", "indigo_loadtest.cli", "run", scenario.name,
                    *child_args(args, folder)]
            started = time.monotonic()
            code = forwarder.run(argv)
            results.append(AllResult(scenario.name, code, time.monotonic() - started))
    print_table(results, len(scenarios))
    return all_exit_code(results, forwarder.interrupted)


def planned_all_line(args: argparse.Namespace, folder: Path, names: list[str]) -> str:
    """`run --all: 3 scenarios, 15m00s of planned load ...`, before anything starts:
    each scenario prepared as `check` does (imported, no traffic)."""
    import io

    from .progress import format_elapsed
    from .run import Console, prepare
    from .run.limits import planned_duration

    total, open_ended = 0.0, 0
    quiet = Console(io.StringIO(), io.StringIO())
    for name in names:
        settings = settings_from(args, name)
        settings.scenarios_dir, settings.dry_run = str(folder), True
        try:
            prepared = prepare(settings, quiet, start_target=False)
        except ScenarioError:
            open_ended += 1  # reported by its own run
            continue
        prepared.close()
        planned = planned_duration(prepared)
        if planned is None:
            open_ended += 1
        else:
            total += planned
    line = (f"run --all: {len(names)} scenarios, {format_elapsed(total)} of planned load"
            f" (plus {args.pause:g}s pauses, setup and teardown)")
    if open_ended:
        line += f"; {open_ended} more end when their iterations are done"
    return line


def all_exit_code(results: list[AllResult], interrupted: bool) -> int:
    failures = [r.exit_code for r in results if r.exit_code != ExitCode.OK]
    if interrupted:
        return ExitCode.EXTERNAL_ABORT
    if not failures:
        return ExitCode.OK
    if all(code == ExitCode.THRESHOLDS_FAILED for code in failures):
        return ExitCode.THRESHOLDS_FAILED
    return ExitCode.FAILED


def print_table(results: list[AllResult], total: int) -> None:
    for line in table_lines(results):
        print(line)
    passed = sum(r.exit_code == ExitCode.OK for r in results)
    skipped = total - len(results)
    tail = f", {skipped} not run" if skipped else ""
    print(f"\n  {passed}/{total} scenarios passed{tail}\n", flush=True)


def table_lines(results: list[AllResult]) -> list[str]:
    """`run --all`'s result table, its columns as wide as their longest cell."""
    rows = [(r.name, f"{'✓' if r.exit_code == ExitCode.OK else '✗'} {r.verdict}",
             f"{r.seconds:.1f}s") for r in results]
    header = ("scenario", "result", "time")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    return [""] + [f"  {name.ljust(widths[0])}  {result.ljust(widths[1])}  "
                   f"{time_.rjust(widths[2])}" for name, result, time_ in [header, *rows]]


# --- entry point ------------------------------------------------------------------------

COMMANDS = {"list": cmd_list, "check": cmd_check, "run": cmd_run, "new": cmd_new,
            "report": lambda args: report_command("cmd_report", args),
            "compare": lambda args: report_command("cmd_compare", args),
            "bench": cmd_bench}


def report_command(name: str, args: argparse.Namespace) -> int:
    from .report import commands

    return getattr(commands, name)(args)


def delegate(command: str, argv: list[str]) -> int:
    module_name, what = DELEGATED[command]
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f"error: {what} is not available in this installation", file=sys.stderr)
            return ExitCode.USAGE
        raise
    code = module.main(argv)
    return int(code or 0)


# Commands whose start-up (the scenario's import, the embedded simulator) ends in their
# own code (`end_startup`): a signal before that stops them there, with one line.
STARTS_A_RUN = ("run", "bench", "check")


def main(argv: Sequence[str] | None = None) -> int:
    hold_startup()
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except ScenarioError as exc:
        from .http.redact import mask_secrets

        print(f"error: {mask_secrets(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\nerror: interrupted", file=sys.stderr)
        return ExitCode.EXTERNAL_ABORT
    except BrokenPipeError:  # `indigo-loadtest list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    finally:
        end_startup(check=False)


def http_debug_args(parser: argparse.ArgumentParser, args_list: list[str]) -> list[str]:
    """As in k6, `--http-debug` takes its mode only as `--http-debug=full`: the word after
    a bare `--http-debug` is the scenario, not the mode; a mode after a space is refused
    in one line rather than run as a scenario of that name."""
    out: list[str] = []
    for i, a in enumerate(args_list):
        if a == "--http-debug" and args_list[i + 1:i + 2] in (["full"], ["headers"]):
            mode = args_list[i + 1]
            parser.error(f"--http-debug {mode}: the mode takes '=' (--http-debug={mode}, as "
                         f"in k6); for a scenario named {mode!r}, put --http-debug after it")
        out.append("--http-debug-mode=" + a.split("=", 1)[1]
                   if a.startswith("--http-debug=") else a)
    return out


def _main(args_list: list[str]) -> int:
    if args_list and args_list[0] in DELEGATED:
        end_startup()  # `serve` and `monitoring` handle their signals themselves
        return delegate(args_list[0], args_list[1:])
    parser = build_parser()
    args = parser.parse_args(http_debug_args(parser, args_list))
    if args.command is None:
        parser.print_help()
        return ExitCode.USAGE
    if args.command not in STARTS_A_RUN:
        end_startup()
    checkpoint()  # a signal during the imports: nothing more is started
    from .event_loop import loop_name

    loop_name()  # INDIGO_EVENT_LOOP checked before anything starts (the simulator too)
    return int(COMMANDS[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
