"""After the test: thresholds, the summary (or handleSummary), the summary export and
the markdown summary, and the exit code (`finish`)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from ..http.redact import mask_secrets
from ..metrics.thresholds import ThresholdResult
from ..scenario.errors import ExitCode
from .outcome import Outcome, lost_workers, verdict_text
from .settings import Console

if TYPE_CHECKING:
    from .prepare import Prepared


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
    thresholds_failed = not all(r.ok for r in outcome.threshold_results)
    if outcome.error:
        pass  # exit code already set
    elif outcome.interrupted:
        outcome.exit_code = ExitCode.EXTERNAL_ABORT
    elif thresholds_failed or outcome.aborted_by is not None:
        outcome.exit_code = ExitCode.THRESHOLDS_FAILED
    elif outcome.problems:
        outcome.exit_code = outcome.problems[0][0]
    if outcome.exit_code == ExitCode.OK:  # only a run about to pass needs the warning
        warn_unjudged_failures(prepared, console)
    # Both state the exit code, so they are written once it is known.
    if not write_summary_export(prepared, outcome, elapsed, console) \
            and outcome.exit_code == ExitCode.OK:
        outcome.exit_code = ExitCode.OUTPUT_FAILED
    write_summary_markdown(prepared, outcome, elapsed, console)
    report_thresholds(console, outcome.threshold_results)
    for _, reason in outcome.problems:
        console.error(reason)


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


def warn_generator_health(prepared: Prepared, console: Console) -> None:
    """Say so when the generator itself was the bottleneck (see engine/health.py)."""
    from ..engine.health import health_warnings

    for line in health_warnings(prepared.registry):
        console.warn(line)


def warn_unjudged_failures(prepared: Prepared, console: Console) -> None:
    from ..verdict import unjudged_failures

    line = unjudged_failures(prepared.registry, prepared.thresholds.metric_names())
    if line:
        console.warn(line)


def output_summary_lines(prepared: Prepared) -> list[str]:
    """What outputs report about themselves after the run (e.g. remote-write pushes)."""
    lines = []
    for output in prepared.outputs:
        summary_line = getattr(output, "summary_line", None)
        if summary_line is not None:
            lines.append(summary_line())
    return lines


def summary_color(prepared: Prepared) -> bool:
    color = prepared.settings.color
    return console_is_tty() if color is None else color


def render(prepared: Prepared, outcome: Outcome, elapsed: float) -> str:
    from ..metrics.summary import render_summary

    text = render_summary(prepared.registry, outcome.threshold_results, prepared.run_info,
                          elapsed, summary_trend_stats=prepared.trend_stats,
                          color=summary_color(prepared),
                          summary_time_unit=prepared.settings.summary_time_unit)
    if prepared.settings.summary_mode == "full":
        from ..metrics.endpoints import endpoint_lines

        text += "\n".join(endpoint_lines(prepared.registry, elapsed,
                                          prepared.settings.summary_time_unit)) + "\n"
    return text


def print_summary(prepared: Prepared, console: Console, outcome: Outcome,
                  elapsed: float) -> bool:
    """The summary on stdout, or what the scenario's handleSummary(data) returns
    instead (True then). A failing hook is a problem of the run, in one line, and the
    default summary is printed after all (False then), as k6 does."""
    from .. import summary_hook
    from ..metrics.endpoints import endpoint_rows
    from ..outputs.summary_export import build_summary_export

    hook = summary_hook.find_hook(prepared.module)
    if hook is None:
        console.print(render(prepared, outcome, elapsed))
        return False
    export = build_summary_export(prepared.registry, outcome.threshold_results, elapsed,
                                  summary_trend_stats=prepared.trend_stats)
    data = summary_hook.summary_data(export, prepared.registry, elapsed,
                                     trend_stats=prepared.trend_stats,
                                     time_unit=prepared.settings.summary_time_unit,
                                     color=summary_color(prepared),
                                     endpoints=endpoint_rows(prepared.registry, elapsed))
    try:
        for path in summary_hook.write_results(summary_hook.call_hook(hook, data),
                                               console.out, console.err):
            console.note(f"handleSummary() wrote {path}")
    except summary_hook.SummaryHookError as exc:
        if exc.exit_code == ExitCode.OUTPUT_FAILED:  # the hook's stdout may be written
            outcome.problem(exc.exit_code, str(exc))
            return True
        outcome.problem(exc.exit_code, f"{exc} (the default summary was printed instead)")
        console.print(render(prepared, outcome, elapsed))
        return False
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
    from ..outputs.summary_export import write_summary_export as write_export

    try:
        write_export(path, prepared.registry, outcome.threshold_results, elapsed,
                     summary_trend_stats=prepared.trend_stats,
                     verdict=export_verdict(outcome))
    except OSError as exc:
        outcome.problem(ExitCode.OUTPUT_FAILED,
                        f"cannot write the summary export {path}: {exc.strerror or exc}")
        return False
    console.note(f"summary export written to {path}")
    return True


def export_verdict(outcome: Outcome) -> dict[str, Any]:
    """The run's verdict in the summary export (k6 tooling ignores the key): a CI reading
    only the export sees a degraded run (a lost worker, a failed output, nothing
    measured) as the exit code does, with the reasons printed as `error:` lines."""
    errors = ([outcome.error] if outcome.error else []) + [r for _, r in outcome.problems]
    return {"exit_code": int(outcome.exit_code), "passed": outcome.exit_code == ExitCode.OK,
            "text": mask_secrets(verdict_text(outcome)),
            "errors": [mask_secrets(e) for e in errors]}


def write_summary_markdown(prepared: Prepared, outcome: Outcome, elapsed: float,
                           console: Console) -> None:
    """--summary-markdown, written once the exit code is known (it states the verdict);
    like the export, a failure to write it is an output failure."""
    path = prepared.settings.summary_markdown
    if not path:
        return
    from ..outputs.summary_markdown import write_summary_markdown as write_markdown

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
