"""`indigo-loadtest report` and `indigo-loadtest compare` (registered by cli.py)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..scenario.errors import ExitCode, ScenarioError

if TYPE_CHECKING:
    from .compare import Row, ThresholdPair

# The parser registers these commands on every start: the report modules are imported
# only when one of them runs.

RESULTS_HELP = ("a run's record (results/<scenario>_<time>.timeseries.json.gz) or the "
                "summary export beside it")
REPORT_HELP = RESULTS_HELP + ", or the results file of `bench` (a sweep report)"


def add_commands(sub: Any) -> None:
    p = sub.add_parser("report", help="write the HTML report of a finished run")
    p.add_argument("results", metavar="RESULTS", help=REPORT_HELP)
    p.add_argument("-o", "--output", metavar="FILE", help="where the report goes (default: "
                   "beside the results, <scenario>_<time>.html)")

    p = sub.add_parser("compare", help="compare two runs (table, HTML, CI rules)")
    p.add_argument("baseline", metavar="BASELINE", help=RESULTS_HELP)
    p.add_argument("candidate", metavar="CANDIDATE", help=RESULTS_HELP)
    p.add_argument("--fail-on", action="append", default=[], metavar="RULE",
                   help="exit 99 when the rule holds, e.g. \"http_req_duration:p(95)>+10%%\" "
                        "(repeatable)")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the comparison as HTML")
    p.add_argument("--all", action="store_true", help="list every sub-metric, not only the "
                   "metrics as a whole and the endpoints")
    p.add_argument("--no-color", action="store_true", help="plain text")


def _load(path: str) -> dict[str, Any]:
    from .record import RecordError, load_record
    from .sweep import read_bench_results

    try:
        return load_record(path)
    except RecordError as exc:
        message = str(exc)
    with contextlib.suppress(RecordError):
        if read_bench_results(path) is not None:  # not "only runs of indigo-loadtest..."
            message = (f"{path}: the results file of `bench` (its points), not a run "
                       "record: compare the records of two points (each beside its "
                       "summary export), or draw this one with `report`")
    raise ScenarioError(message, ExitCode.USAGE)


def _write(path: Path, write: Any, what: str) -> None:
    try:
        write(path)
    except OSError as exc:
        raise ScenarioError(f"cannot write the {what} {path}: {exc.strerror or exc}",
                            ExitCode.USAGE) from None
    print(f"{what} written to {path}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    from .html import write_report
    from .record import RecordError, default_report_path
    from .sweep import read_bench_results, write_sweep_report

    out = Path(args.output) if args.output else default_report_path(Path(args.results))
    try:
        bench = read_bench_results(args.results)
        if bench is not None:  # `bench`'s results file: the sweep report
            _write(out, lambda p: write_sweep_report(p, bench), "report")
            return ExitCode.OK
    except RecordError as exc:
        raise ScenarioError(str(exc), ExitCode.USAGE) from None
    record = _load(args.results)
    _write(out, lambda p: write_report(p, record), "report")
    return ExitCode.OK


def cmd_compare(args: argparse.Namespace) -> int:
    from . import compare as cmp
    from .html import render_compare, write_html

    try:
        rules = [cmp.parse_rule(r) for r in args.fail_on]
    except cmp.RuleError as exc:
        raise ScenarioError(str(exc), ExitCode.USAGE) from None
    base, cand = _load(args.baseline), _load(args.candidate)
    rows = cmp.compare_rows(base, cand)
    pairs = cmp.shared_thresholds(base, cand)
    warns = cmp.warnings(base, cand)
    results = cmp.evaluate_rules(rules, base, cand)
    color = _color(args)
    for w in warns:
        print(f"warning: {w}", file=sys.stderr)
    legend = cmp.legend(rows)  # of every row judged, shown or not
    if not args.all:  # the metrics as a whole and by endpoint
        rows = [r for r in rows if "{" not in r.key or "{name:" in r.key]
    print("\n".join(table_lines(base, cand, rows, pairs, color)))
    print(f"  {legend}")
    for failed, line in results:
        print(("✗ " if failed else "✓ ") + line)
    # Its own run failed: no comparison with it passes CI; a rule that holds is 99.
    code, verdict = cmp.comparison_verdict(cand, results)
    if args.output:
        text = render_compare(base, cand, rows=rows, thresholds=pairs, warnings=warns,
                              rules=results, verdict=(code, verdict))
        _write(Path(args.output), lambda p: write_html(p, text), "comparison")
    failure = cmp.candidate_failure(cand)
    if failure is not None:
        print(f"error: {failure[1]}", file=sys.stderr)
    return code


def _color(args: argparse.Namespace) -> bool:
    from ..run.summary import console_is_tty

    return not args.no_color and console_is_tty()


COLORS = {"better": "32", "worse": "31", "noise": "2", "same": "2"}


def table_lines(base: dict[str, Any], cand: dict[str, Any], rows: list[Row],
                pairs: list[ThresholdPair], color: bool) -> list[str]:
    from .html import compare_value, observed_text

    lines = [f"  baseline:  {base['meta']['testid']} ({base['verdict']['text']})",
             f"  candidate: {cand['meta']['testid']} ({cand['verdict']['text']})", ""]
    table = [("metric", "stat", "baseline", "candidate", "change", "")]
    for r in rows:
        change = "" if r.change is None else f"{r.change:+.1f}%"
        label = {"noise": "~ within noise", "better": "better", "worse": "worse",
                 "same": "same"}.get(r.verdict, "")
        table.append((r.key, r.stat, compare_value(r, r.base), compare_value(r, r.cand),
                      change, label))
    for p in pairs:
        marks = ["✓" if side["ok"] else "✗" for side in (p.base, p.cand)]
        verdict = ("better" if marks == ["✗", "✓"] else "worse" if marks == ["✓", "✗"]
                   else "same")
        b, c = p.base["observed"], p.cand["observed"]
        change = f"{100 * (c - b) / abs(b):+.1f}%" if b and c is not None else ""
        table.append((f"threshold {p.key}", p.expression,
                      f"{marks[0]} {observed_text(p.base, base['totals'])}",
                      f"{marks[1]} {observed_text(p.cand, cand['totals'])}", change, verdict))
    widths = [max(len(row[i]) for row in table) for i in range(6)]
    for i, row in enumerate(table):
        text = "  " + "  ".join(cell.ljust(w) if k < 2 or k == 5 else cell.rjust(w)
                                for k, (cell, w) in enumerate(zip(row, widths, strict=True)))
        verdict = row[5].split()[-1] if row[5] and i else ""
        code = COLORS.get(verdict)
        lines.append(f"\x1b[{code}m{text.rstrip()}\x1b[0m" if color and code else text.rstrip())
    return lines

