"""`compare` and `report` on damaged, foreign or odd run records (docs/guarantees.md,
"Benchmarks and comparisons (audit)"): the real CLI on the record of a real run and on
copies of it edited as a disk, another tool or a hand could have left them."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli
from test_bench import bench

from indigo_loadtest.scenario.errors import ExitCode

Record = dict[str, Any]


@pytest.fixture(scope="module")
def record_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run record of a short real benchmark point (nothing failed, nothing dropped)."""
    tmp = tmp_path_factory.mktemp("record")
    proc, _ = bench(tmp, "--iterations", "3", "--output-tokens", "2", "--summary-export",
                    str(tmp / "run.json"), "--no-report", ttft_ms="2", tokens_per_sec="0")
    assert proc.returncode == 0, proc.stderr
    return tmp / "run.timeseries.json.gz"


def edited(record_file: Path, tmp_path: Path, edit: Callable[[Record], Any],
           raw: Callable[[str], str] = lambda text: text) -> Path:
    record = json.loads(gzip.decompress(record_file.read_bytes()))
    edit(record)
    out = tmp_path / "edited.timeseries.json.gz"
    out.write_bytes(gzip.compress(raw(json.dumps(record)).encode()))
    return out


def compare(base: Path, cand: Path, *rules: str) -> Any:
    args = [a for r in rules for a in ("--fail-on", r)]
    return run_cli("compare", str(base), str(cand), "--no-color", *args, cwd=base.parent)


DAMAGES: dict[str, Callable[[Record], Any]] = {
    "no totals": lambda r: r.pop("totals"),
    "a statistic that is text": lambda r: r["totals"]["llm_ttft_ms"].update(p95="fast"),
    "a series column cut short": lambda r: r["series"]["metrics"]["http_reqs"]["cols"]
    .update(value=[]),
    "meta without testid": lambda r: r["meta"].pop("testid"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_record_is_one_line_not_a_traceback(record_file: Path, tmp_path: Path,
                                                      damage: str) -> None:
    """A record whose format tag is right but whose parts are missing or of another
    type: compare and report ended in a KeyError or TypeError traceback."""
    bad = edited(record_file, tmp_path, DAMAGES[damage])
    for proc in (compare(record_file, bad, "llm_ttft_ms:p(95)>+10%"),
                 run_cli("report", str(bad), "-o", str(tmp_path / "r.html"), cwd=tmp_path)):
        assert proc.returncode == ExitCode.USAGE, proc.stderr
        assert proc.stderr.startswith(f"error: {bad}: a damaged run record (")
        assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize("constant", ["NaN", "Infinity"])
def test_a_value_that_is_no_number_fails_the_rule(record_file: Path, tmp_path: Path,
                                                  constant: str) -> None:
    """NaN (which Python's JSON writes) compared false with every limit: a rule on it
    would pass; it ended in a traceback while the table was printed."""
    odd = edited(record_file, tmp_path, lambda r: r["totals"]["llm_ttft_ms"].update(p95=-1),
                 lambda text: text.replace('"p95": -1', f'"p95": {constant}'))
    proc = compare(record_file, odd, "llm_ttft_ms:p(95)>+10%")
    assert proc.returncode == 99, proc.stderr
    assert "✗ llm_ttft_ms:p(95)>+10%: cannot evaluate" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_a_counter_that_counted_nothing_is_zero(record_file: Path) -> None:
    """`iteration_errors:count>0` failed whenever the run had no error (a Counter with
    no samples was 'cannot evaluate'), and a relative change from 0 to 0 too."""
    proc = compare(record_file, record_file, "iteration_errors:count>0",
                   "dropped_iterations:count>+10%")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ iteration_errors:count>0: ok (count 0)" in proc.stdout
    assert "✓ dropped_iterations:count>+10%: ok (count +0.00%)" in proc.stdout


def test_a_counter_rising_from_zero_is_an_unbounded_rise(record_file: Path,
                                                        tmp_path: Path) -> None:
    def dropped(r: Record) -> None:
        r["totals"]["dropped_iterations"].update(samples=1, count=3, value=3)

    proc = compare(record_file, edited(record_file, tmp_path, dropped),
                   "dropped_iterations:count>+10%")
    assert proc.returncode == 99, proc.stderr
    assert "✗ dropped_iterations:count>+10%: FAILED (count +inf%)" in proc.stdout


def test_a_metric_only_one_run_has_is_named(record_file: Path, tmp_path: Path) -> None:
    """It had no row and no word: a metric that vanished from the candidate went unseen."""
    def lose_ttft(r: Record) -> None:
        for key in [k for k in r["totals"] if k.startswith("llm_ttft_ms")]:
            del r["totals"][key]

    proc = compare(record_file, edited(record_file, tmp_path, lose_ttft))
    assert proc.returncode == 0, proc.stderr
    assert "warning: metrics only in the baseline, not compared: llm_ttft_ms" in \
        proc.stderr.splitlines()
    assert "candidate, not compared" not in proc.stderr


def test_runs_of_another_model_or_load_compare_with_a_warning(record_file: Path,
                                                              tmp_path: Path) -> None:
    """Every bench point is the scenario llm-bench: a candidate measured on another model
    or under another load compared without a word."""
    def other(r: Record) -> None:
        r["meta"]["model"] = "other-model"
        r["meta"]["planned"]["scenarios"] = ["bench: 64 looping VUs for 30s"]

    proc = compare(record_file, edited(record_file, tmp_path, other))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert "warning: the runs have different models: 'jan-v1-4b' and 'other-model'" in lines
    assert any(x.startswith("warning: the runs have different load plans: ") for x in lines)
    same = compare(record_file, record_file)
    assert "warning" not in same.stderr


def test_a_bench_results_file_is_named_as_such(record_file: Path) -> None:
    """It was told 'only runs of indigo-loadtest write one' of indigo-loadtest's own file."""
    results = record_file.parent / "bench.json"
    proc = compare(results, results)
    assert proc.returncode == ExitCode.USAGE
    assert proc.stderr == (f"error: {results}: the results file of `bench` (its points), "
                           "not a run record: compare the records of two points (each "
                           "beside its summary export), or draw this one with `report`\n")
