"""The run's outputs (`--out`, the summary export's path): built and checked while
preparing, started before the test, pointed at the live metrics, stopped after it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..outputs.base import Output, unwritable_reason
from ..scenario.config import Env
from ..scenario.errors import ExitCode, ScenarioError
from .settings import Console

if TYPE_CHECKING:
    from .engine import Engine
    from .interrupts import Interrupts
    from .outcome import Outcome
    from .prepare import Prepared


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
            from ..outputs.json_output import JsonOutput

            path = Path(arg) if arg else result_path(prepared, ".ndjson")
            outputs.append(JsonOutput(path, prepared.thresholds))
        elif kind == "csv":
            from ..outputs.csv_output import CsvOutput

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
    from ..outputs.prometheus_rw import PrometheusRemoteWriteOutput, PrometheusRWConfigError

    try:
        return PrometheusRemoteWriteOutput.from_config(env, arg)
    except PrometheusRWConfigError as exc:
        raise ScenarioError(str(exc), ExitCode.INVALID_CONFIG) from None


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
