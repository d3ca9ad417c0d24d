"""`bench` when no request completes (docs/guarantees.md, "Benchmarks and comparisons
(audit)"): the point's run says so in its `error:` line, and bench said it again in its
own words; one line now, the exit code and the results file's verdict unchanged."""

from __future__ import annotations

from pathlib import Path

from test_bench import bench

from indigo_loadtest.scenario.errors import ExitCode


def nothing_lines(stderr: str) -> list[str]:
    return [x for x in stderr.splitlines() if "no request completed" in x]


def test_a_point_that_completed_nothing_is_said_once(tmp_path: Path) -> None:
    proc, doc = bench(tmp_path, "--iterations", "3", "--output-tokens", "2", "--no-report",
                      error_rate="1", ttft_ms="2", tokens_per_sec="0")
    assert proc.returncode == ExitCode.NOTHING_MEASURED, proc.stderr
    assert nothing_lines(proc.stderr) == ["error: no request completed in point synchronous"]
    assert doc is not None
    assert doc["verdict"]["text"].endswith("no request completed in point(s) synchronous")


def test_the_empty_point_that_stops_a_sweep_is_said_once(tmp_path: Path) -> None:
    proc, _ = bench(tmp_path, "--profile", "sweep", "-d", "1s", "--output-tokens", "2",
                    "--no-report", error_rate="1", ttft_ms="2", tokens_per_sec="0")
    assert proc.returncode == ExitCode.NOTHING_MEASURED, proc.stderr
    # the sweep stops after a point whose every request failed: the throughput point
    # would only have failed the same way
    assert nothing_lines(proc.stderr) == ["error: no request completed in point synchronous"]
