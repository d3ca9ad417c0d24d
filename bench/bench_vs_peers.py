"""Target 1: plain request rate per generator core, ours against k6, Locust and wrk.

nginx (one worker) on one core serves a trivial GET; each generator, pinned to the
other core, keeps 50 connections busy for a fixed time. Ours records every built-in
metric, as k6 does. Runs are interleaved (ours, k6, Locust, wrk, ours, ...) so noise
on the shared machine hits every tool alike; the table shows medians.

    python bench/bench_vs_peers.py [--runs 3] [--duration 10]
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from common import (
    GEN_CORE,
    PEERS_DIR,
    Row,
    bench_main,
    interleaved,
    nginx,
    ours_cmd,
    peer_bin,
    per_second,
    pinned,
    run,
    summary_metric,
    wrk_bin,
)

CONNECTIONS = 50

OURS_SCENARIO = '''"""Bench: a trivial GET in a closed loop."""
from indigo_loadtest import env

options = {"vus": %(vus)d, "duration": "%(duration)ss"}
URL = env["BENCH_URL"]


async def default(vu):
    await vu.http.get(URL)
'''


def write_scenario(tmp: Path, source: str, name: str = "bench_plain.py") -> Path:
    path = tmp / name
    path.write_text(source)
    return path


def from_summary(export: Path, res: Any, metric: str = "http_reqs") -> tuple[float, float]:
    """A counter's (per wall second, per CPU-second) from a k6-layout summary export."""
    summary = json.loads(export.read_text())
    count = summary_metric(summary, metric, "count")
    rate = summary_metric(summary, metric, "rate")
    return per_second(count, count / rate if rate else 1.0, res)


def ours_rate(url: str, duration: float, workers: int = 1, core: str = GEN_CORE,
              vus: int = CONNECTIONS) -> tuple[float, float]:
    """Requests per second of our generator (from its summary export), and per CPU-s."""
    with tempfile.TemporaryDirectory(prefix="indigo-bench-") as d:
        tmp = Path(d)
        script = write_scenario(tmp, OURS_SCENARIO % {"vus": vus, "duration": duration})
        export = tmp / "summary.json"
        cmd = ours_cmd("run", str(script), "--workers", str(workers),
                       "--env", f"BENCH_URL={url}/", "--summary-export", str(export), "--quiet")
        res = run(pinned(cmd, core), timeout=duration + 60, cwd=tmp)
        return from_summary(export, res)


def k6_rate(url: str, duration: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="indigo-bench-k6-") as d:
        export = Path(d) / "summary.json"
        cmd = [str(peer_bin("k6")), "run", "--quiet", "--no-usage-report",
               "--vus", str(CONNECTIONS), "--duration", f"{duration}s",
               "--summary-export", str(export), "-e", f"URL={url}/",
               str(PEERS_DIR / "k6_get.js")]
        res = run(pinned(cmd, GEN_CORE), timeout=duration + 60, cwd=Path(d))
        return from_summary(export, res)


def locust_rate(url: str, duration: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="indigo-bench-locust-") as d:
        prefix = Path(d) / "stats"
        cmd = [str(peer_bin("locust")), "-f", str(PEERS_DIR / "locustfile.py"), "--headless",
               "-u", str(CONNECTIONS), "-r", "1000", "-t", f"{int(duration)}s", "--host", url,
               "--only-summary", "--csv", str(prefix), "--loglevel", "WARNING"]
        res = run(pinned(cmd, GEN_CORE), timeout=duration + 60, cwd=Path(d))
        with open(f"{prefix}_stats.csv", newline="") as f:
            for row in csv.DictReader(f):
                if row["Name"] == "Aggregated":
                    count, rate = float(row["Request Count"]), float(row["Requests/s"])
                    return per_second(count, count / rate if rate else 1.0, res)
    raise RuntimeError("locust wrote no aggregated stats")


def wrk_rate(url: str, duration: float) -> tuple[float, float]:
    cmd = [wrk_bin(), "-t1", f"-c{CONNECTIONS}", f"-d{int(duration)}s", f"{url}/"]
    res = run(pinned(cmd, GEN_CORE), timeout=duration + 30)
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", res.stdout)
    if not m:
        raise RuntimeError(f"unexpected wrk output: {res.stdout[-300:]}")
    seconds = float(m.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[m.group(3)]
    return per_second(float(m.group(1)), seconds, res)


def bench(runs: int, duration: float) -> list[Row]:
    with nginx() as url:
        results = interleaved(runs, {
            "ours": (lambda: ours_rate(url, duration), "req/s"),
            "k6": (lambda: k6_rate(url, duration), "req/s"),
            "Locust": (lambda: locust_rate(url, duration), "req/s"),
            "wrk": (lambda: wrk_rate(url, duration), "req/s"),
        })
    rows = []
    for per_cpu in (False, True):
        ours = results["ours"].per_cpu() if per_cpu else results["ours"]
        what = "per CPU-second" if per_cpu else "1 core"
        for peer, goal in (("k6", "≥ 2×"), ("Locust", ""), ("wrk", "")):
            ref = results[peer].per_cpu() if per_cpu else results[peer]
            row = Row(f"1. plain GET rate, {what}, {CONNECTIONS} conns", ours, ref, goal)
            if goal and row.ratio is not None:
                row.verdict = row.ratio >= 2.0
            rows.append(row)
    return rows


def main() -> None:
    bench_main(__doc__, bench)


if __name__ == "__main__":
    main()
