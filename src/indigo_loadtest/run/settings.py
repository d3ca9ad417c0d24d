"""What the command line says about one run (`RunSettings`), and where the run
talks (`Console`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from ..http.redact import mask_secrets


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
    ray: str | None = None  # --ray [ADDRESS]: "" = RAY_ADDRESS or a local instance (run/ray.py)
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
