"""The run record (time series, read from the live metrics), `--dashboard`, and the
HTML report written from the record."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..outputs.base import unwritable_reason
from ..scenario.discovery import display_path
from ..scenario.errors import ExitCode, ScenarioError
from ..scenario.options import (
    describe_scenario,
)
from .limits import plan_max_vus, planned_duration
from .outcome import Outcome, verdict_text
from .settings import Console

if TYPE_CHECKING:
    from .engine import Engine
    from .prepare import Prepared


def record_paths(prepared: Prepared) -> tuple[Path | None, Path | None]:
    """Where the run record and the HTML report go: beside the summary export."""
    from ..report.record import default_report_path, record_path

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
    from ..report.record import LiveRecording

    execution = engine.execution
    recording = LiveRecording(engine.live_registry, planned_duration(prepared),
                              clock=lambda: execution.elapsed, as_of=execution.live_as_of)
    recording.start()
    if prepared.settings.dashboard is not None:
        from ..report.dashboard import Dashboard

        dashboard = Dashboard(recording, shown_identity(prepared))
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
    from ..report.record import write_record

    await recording.finish(prepared.registry, elapsed)
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
    from ..report.html import write_report

    write_report(path, record)


def shown_identity(prepared: Prepared) -> dict[str, str]:
    """The run's scenario and target as the record and the dashboard show them (the
    target without the credentials and query its URL may carry)."""
    from ..report.record import safe_target

    return {"scenario": prepared.scenario.name, "target": safe_target(prepared.target)}


def run_record(prepared: Prepared, outcome: Outcome, elapsed: float,
               recording: Any) -> dict[str, Any]:
    from ..report.record import build_record, machine

    plan = prepared.options.plan
    meta = {
        "tool": "indigo-loadtest", "version": __version__, **shown_identity(prepared),
        "scenario_file": display_path(prepared.scenario.path),
        "testid": plan.tags.get("testid", ""),
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
