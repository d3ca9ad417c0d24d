"""The runner, now the `run` package (see docs/architecture.md): kept so that
`from indigo_loadtest.runner import X` still works for every name it had."""

from __future__ import annotations

from .run.commands import (  # noqa: F401
    check,
    run,
    run_event_loop,
)
from .run.engine import (  # noqa: F401
    Engine,
)
from .run.execute import (  # noqa: F401
    ABORT_CHECK_INTERVAL,
    _last_resort,
    _watch_thresholds,
    execute,
)
from .run.header import (  # noqa: F401
    dry_run_report,
    header_lines,
    scenarios_overview,
)
from .run.interrupts import (  # noqa: F401
    Interrupts,
    SignalHold,
    signals_held,
)
from .run.limits import (  # noqa: F401
    DEFAULT_RATE_LIMIT,
    DEFAULT_VUS_LIMIT,
    RATE_LIMIT_ENV,
    RAW_SAMPLE_OUTPUTS,
    STRICT_THRESHOLDS_ENV,
    VUS_LIMIT_ENV,
    check_outputs_fit_workers,
    check_plan_limits,
    plan_limit,
    plan_max_vus,
    plan_peak_rate,
    planned_duration,
    scenario_max_vus,
    worker_count,
)
from .run.outcome import (  # noqa: F401
    Outcome,
    hook_exit_code,
    judge_measurement,
    lost_workers,
    verdict_text,
)
from .run.outputs import (  # noqa: F401
    MIN_SNAPSHOT_INTERVAL,
    OUTPUT_KINDS,
    _prometheus_output,
    _start_outputs,
    _stop_outputs,
    build_outputs,
    check_result_files,
    follow_live_metrics,
    parse_out_specs,
    report_output_failures,
    result_files,
    result_path,
    snapshot_interval,
    summary_export_path,
    tell_output_failures,
)
from .run.prepare import (  # noqa: F401
    SIMULATOR_PLACEHOLDER,
    Prepared,
    _prepare_loaded,
    base_url_tag,
    check_syntax,
    client_config,
    declare_health_metrics,
    enable_monitoring,
    overrides_from,
    prepare,
    start_simulator,
    summary_trend_stats,
)
from .run.recording import (  # noqa: F401
    _write_report,
    check_record_paths,
    finish_recording,
    record_paths,
    run_record,
    start_recording,
)
from .run.settings import (  # noqa: F401
    Console,
    RunSettings,
)
from .run.summary import (  # noqa: F401
    console_is_tty,
    finish,
    output_summary_lines,
    print_summary,
    render,
    report_thresholds,
    warn_generator_health,
    write_summary_export,
    write_summary_markdown,
)
