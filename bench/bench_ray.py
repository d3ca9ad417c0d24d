"""Ray backend: the engine-only workload as 2 Ray actors (`--ray --workers 2`, a local
Ray instance) against 2 worker processes (`--workers 2`), and the start skew between the
actors.

The workload is bench_workers.py's (iterations that need no server: a check, a Trend and
a Counter per iteration), so the figure is the engine and the metrics, not a target.
Iterations/s is the merged iteration count over the planned duration: both backends
release their shards at one instant and run the plan's duration from it, while the time
before (processes spawned, a Ray instance started, actors created) differs by seconds
and is no part of the load. Per CPU-second: each shard process writes down its
iterations and its CPU time (`time.process_time()`, all its threads, Ray's included)
since its first iteration; the iterations over the shards' summed CPU time. On a busy
machine the wall figure also depends on the share of the cores each process gets (Ray
starts its workers in sessions of their own, which Linux's autogroup scheduling treats
as separate claimants); the per-CPU-second figure does not. Rounds are interleaved;
medians of `--runs`.

    python bench/bench_ray.py [--runs 3] [--duration 10]
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from bench_workers import NO_TARGET_SCENARIO, VUS
from common import Measure, Row, bench_main, interleaved, log, ours_cmd, run, summary_metric

SKEW = re.compile(r"start skew ([\d.]+) ms")

# Appended to bench_workers' scenario: every 2,000 iterations, this process's count and
# CPU time since its first one.
CPU_STATS = """
import os
import time
from pathlib import Path

from indigo_loadtest import env

STATS = {"n": 0, "cpu0": None}
_default = default


async def default(vu):  # noqa: F811 - the same iteration, counted
    if STATS["cpu0"] is None:
        STATS["cpu0"] = time.process_time()
    await _default(vu)
    STATS["n"] += 1
    if STATS["n"] % 2000 == 0:
        cpu = time.process_time() - STATS["cpu0"]
        Path(env["STATS_DIR"], str(os.getpid())).write_text(f"{STATS['n']} {cpu}")
"""


def scenario(duration: float) -> str:
    return NO_TARGET_SCENARIO % {"vus": VUS, "duration": duration} + CPU_STATS


def ours_rate(backend: tuple[str, ...], duration: float,
              skews: list[float]) -> tuple[float, float]:
    """(iterations per second of the plan, iterations per CPU-second of the shards)."""
    with tempfile.TemporaryDirectory(prefix="indigo-bench-") as d:
        tmp = Path(d)
        script = tmp / "bench_ray.py"
        script.write_text(scenario(duration))
        stats = tmp / "stats"
        stats.mkdir()
        export = tmp / "summary.json"
        cmd = ours_cmd("run", str(script), *backend, "--quiet", "--no-report",
                       "--summary-export", str(export), "--env", f"STATS_DIR={stats}")
        res = run(cmd, timeout=duration + 120, cwd=tmp)
        found = SKEW.search(res.stderr)
        if found:
            skews.append(float(found.group(1)))
        count = summary_metric(json.loads(export.read_text()), "iterations", "count")
        shards = [tuple(map(float, f.read_text().split())) for f in stats.iterdir()]
        per_cpu = sum(n for n, _ in shards) / sum(cpu for _, cpu in shards)
        return count / duration, per_cpu


def bench(runs: int, duration: float) -> list[Row]:
    skews: list[float] = []
    rates = interleaved(runs, {
        "Ray, 2 actors": (lambda: ours_rate(("--ray", "--workers", "2"), duration, skews),
                          "it/s"),
        "2 workers": (lambda: ours_rate(("--workers", "2"), duration, []), "it/s"),
    })
    main_row = Row("13. --ray (2 actors) vs --workers 2, no target", rates["Ray, 2 actors"],
                   rates["2 workers"], "≥ 0.9×")
    cpu_row = Row("13. the same, per CPU-second of the shards",
                  rates["Ray, 2 actors"].per_cpu(), rates["2 workers"].per_cpu(), "≥ 0.9×")
    for row in (main_row, cpu_row):
        if row.ratio is not None:
            row.verdict = row.ratio >= 0.9
    log(f"start skew between the 2 actors (ms): {skews}")
    skew = Measure("first to last actor", "ms", list(skews))
    return [main_row, cpu_row, Row("13. start skew between the Ray actors", skew, None, "",
                          higher_is_better=False)]


def main() -> None:
    bench_main(__doc__, bench)


if __name__ == "__main__":
    main()
