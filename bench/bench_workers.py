"""Target 4: throughput with `--workers 2` against one worker.

The machine has two cores, so a target server would have to share them with two
workers; to measure the generator where the target is not the bottleneck, the main
figure uses iterations that need no server (each runs a check and records a custom
Trend and Counter: the engine and the metrics, without the network). For context,
the same comparison against nginx (not pinned), which then competes with the
workers for the two cores.

    python bench/bench_workers.py [--runs 3] [--duration 10]
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from common import Row, bench_main, interleaved, nginx, ours_cmd, run, summary_metric

VUS = 50

NO_TARGET_SCENARIO = '''"""Bench: iterations that need no server (engine + metrics only)."""
from indigo_loadtest import Counter, Trend, check, sleep

options = {"vus": %(vus)d, "duration": "%(duration)ss"}
work = Trend("work_value")
done = Counter("work_done")


async def default(vu):
    value = sum(range(200))
    check(value, {"sum is right": lambda v: v == 19900})
    work.add(value)
    done.add(1)
    await sleep(0)
'''

HTTP_SCENARIO = '''"""Bench: a trivial GET in a closed loop."""
from indigo_loadtest import env

options = {"vus": %(vus)d, "duration": "%(duration)ss"}
URL = env["BENCH_URL"]


async def default(vu):
    await vu.http.get(URL)
'''


def ours_rate(source: str, metric: str, workers: int, duration: float,
              extra: tuple[str, ...] = ()) -> float:
    with tempfile.TemporaryDirectory(prefix="indigo-bench-") as d:
        tmp = Path(d)
        script = tmp / "bench_workers.py"
        script.write_text(source % {"vus": VUS, "duration": duration})
        export = tmp / "summary.json"
        cmd = ours_cmd("run", str(script), "--workers", str(workers), "--quiet",
                       "--summary-export", str(export), *extra)
        run(cmd, timeout=duration + 90, cwd=tmp)
        return summary_metric(json.loads(export.read_text()), metric, "rate")


def bench(runs: int, duration: float) -> list[Row]:
    cpu = interleaved(runs, {
        f"{w} worker{'s' if w > 1 else ''}": (
            lambda w=w: ours_rate(NO_TARGET_SCENARIO, "iterations", w, duration), "it/s")
        for w in (1, 2)
    })
    main_row = Row("4. --workers 2 vs 1, no target (engine+metrics)", cpu["2 workers"],
                   cpu["1 worker"], "≥ 1.8×")
    if main_row.ratio is not None:
        main_row.verdict = main_row.ratio >= 1.8
    with nginx(core=None) as url:  # the scheduler shares both cores among all three
        http = interleaved(runs, {
            f"{w} worker{'s' if w > 1 else ''}": (
                lambda w=w: ours_rate(HTTP_SCENARIO, "http_reqs", w, duration,
                                      ("--env", f"BENCH_URL={url}/")), "req/s")
            for w in (1, 2)
        })
    http_row = Row("4. --workers 2 vs 1, nginx sharing the 2 cores", http["2 workers"],
                   http["1 worker"], "")
    return [main_row, http_row]


def main() -> None:
    bench_main(__doc__, bench)


if __name__ == "__main__":
    main()
