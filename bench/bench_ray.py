"""Ray backend: the engine-only workload as 2 Ray actors (`--ray --workers 2`, a local
Ray instance) against 2 worker processes (`--workers 2`), and the start skew between the
actors.

The workload is bench_workers.py's (iterations that need no server: a check, a Trend and
a Counter per iteration), so the figure is the engine and the metrics, not a target.
Iterations/s is the merged iteration count over the planned duration: both backends
release their shards at one instant and run the plan's duration from it, while the time
before (processes spawned, a Ray instance started, actors created) differs by seconds
and is no part of the load. Rounds are interleaved; medians of `--runs`.

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


def ours_rate(backend: tuple[str, ...], duration: float, skews: list[float]) -> float:
    with tempfile.TemporaryDirectory(prefix="indigo-bench-") as d:
        tmp = Path(d)
        script = tmp / "bench_ray.py"
        script.write_text(NO_TARGET_SCENARIO % {"vus": VUS, "duration": duration})
        export = tmp / "summary.json"
        cmd = ours_cmd("run", str(script), *backend, "--quiet", "--no-report",
                       "--summary-export", str(export))
        res = run(cmd, timeout=duration + 120, cwd=tmp)
        found = SKEW.search(res.stderr)
        if found:
            skews.append(float(found.group(1)))
        count = summary_metric(json.loads(export.read_text()), "iterations", "count")
        return count / duration


def bench(runs: int, duration: float) -> list[Row]:
    skews: list[float] = []
    rates = interleaved(runs, {
        "Ray, 2 actors": (lambda: ours_rate(("--ray", "--workers", "2"), duration, skews),
                          "it/s"),
        "2 workers": (lambda: ours_rate(("--workers", "2"), duration, []), "it/s"),
    })
    main_row = Row("13. --ray (2 actors) vs --workers 2, no target", rates["Ray, 2 actors"],
                   rates["2 workers"], "≥ 0.9×")
    if main_row.ratio is not None:
        main_row.verdict = main_row.ratio >= 0.9
    log(f"start skew between the 2 actors (ms): {skews}")
    skew = Measure("first to last actor", "ms", [s for s in skews])
    return [main_row, Row("13. start skew between the Ray actors", skew, None, "",
                          higher_is_better=False)]


def main() -> None:
    bench_main(__doc__, bench)


if __name__ == "__main__":
    main()
