"""Target 5: arrival-rate accuracy and start jitter at 1,000 iterations/s.

Runs the engine's own benchmark (bench/bench_arrival_rate.py: constant-arrival-rate,
each iteration notes its start, compared with its scheduled instant) pinned to the
generator core, and reports the median over runs of the achieved-rate error and of
the p99 of |start − schedule|.

    python bench/bench_arrival.py [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse

from common import BENCH_DIR, GEN_CORE, PYTHON, Measure, Row, log, pinned, run, table

RATE = 1000


def arrival_stats(duration: float) -> dict[str, float]:
    cmd = [PYTHON, str(BENCH_DIR / "bench_arrival_rate.py"), "--rate", str(RATE),
           "--duration", str(duration)]
    out = run(pinned(cmd, GEN_CORE), timeout=duration + 60).stdout
    stats = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                stats[parts[0]] = float(parts[1])
            except ValueError:
                continue
    if "rate_error_pct" not in stats:
        raise RuntimeError(f"unexpected bench_arrival_rate.py output: {out[-300:]}")
    return stats


def bench(runs: int, quick: bool) -> list[Row]:
    duration = 3.0 if quick else 10.0
    error = Measure("achieved-rate error", "%")
    jitter = Measure("p99 of abs(start − schedule)", "ms")
    for i in range(runs):
        s = arrival_stats(duration)
        log(f"arrival run {i + 1}/{runs}: error {s['rate_error_pct']:.4f} %, "
            f"jitter p99 {s['lag_abs_p99_ms']:.3f} ms, dropped {s.get('dropped', 0):.0f}")
        error.samples.append(s["rate_error_pct"])
        jitter.samples.append(s["lag_abs_p99_ms"])
    rate_row = Row("5. arrival rate accuracy at 1,000 it/s", error, None, "within 1%",
                   higher_is_better=False)
    rate_row.verdict = error.median < 1.0
    jitter_row = Row("5. start jitter at 1,000 it/s", jitter, None, "p99 < 1 ms",
                     higher_is_better=False)
    jitter_row.verdict = jitter.median < 1.0
    return [rate_row, jitter_row]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(table(bench(args.runs, args.quick)))


if __name__ == "__main__":
    main()
