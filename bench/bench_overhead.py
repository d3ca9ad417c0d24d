"""Target 6: timing overhead, the measured request duration minus the server's own
time for that request (median), ours and k6's.

The target (bench/peers/servers.py timing, on the target core) reports in
`X-Server-Time-Us` how long it held each request; one VU sends GETs back to back on
a kept-alive connection for a fixed time, and each request's difference goes into a
Trend. What remains is the client's own timing overhead plus the loopback round
trip through the kernel, which no client can avoid: a bare blocking socket client
(bench/peers/bare_socket_client.py) measures that floor in the same way.

    python bench/bench_overhead.py [--runs 3] [--duration 5]
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from common import (
    GEN_CORE,
    PEERS_DIR,
    PYTHON,
    TARGET_CORE,
    Row,
    background,
    bench_main,
    free_port,
    interleaved,
    ours_cmd,
    peer_bin,
    pinned,
    run,
    summary_metric,
)

OURS_SCENARIO = '''"""Bench: measured duration minus the server's own time."""
from indigo_loadtest import Trend, env

options = {"vus": 1, "duration": "%(duration)ss"}
URL = env["BENCH_URL"]
overhead = Trend("timing_overhead", time=True)


async def default(vu):
    resp = await vu.http.get(URL)
    server_ms = float(resp.headers["X-Server-Time-Us"]) / 1000.0
    overhead.add(resp.timings.duration - server_ms)
'''


def ours_overhead_us(url: str, duration: float) -> float:
    with tempfile.TemporaryDirectory(prefix="indigo-bench-") as d:
        tmp = Path(d)
        script = tmp / "bench_overhead.py"
        script.write_text(OURS_SCENARIO % {"duration": duration})
        export = tmp / "summary.json"
        cmd = ours_cmd("run", str(script), "--workers", "1", "--env", f"BENCH_URL={url}/",
                       "--summary-export", str(export), "--quiet")
        run(pinned(cmd, GEN_CORE), timeout=duration + 60, cwd=tmp)
        return 1000.0 * summary_metric(json.loads(export.read_text()), "timing_overhead", "med")


def k6_overhead_us(url: str, duration: float) -> float:
    with tempfile.TemporaryDirectory(prefix="indigo-bench-k6-") as d:
        export = Path(d) / "summary.json"
        cmd = [str(peer_bin("k6")), "run", "--quiet", "--no-usage-report", "--vus", "1",
               "--duration", f"{duration}s", "--summary-export", str(export),
               "-e", f"URL={url}/", str(PEERS_DIR / "k6_overhead.js")]
        run(pinned(cmd, GEN_CORE), timeout=duration + 60, cwd=Path(d))
        return 1000.0 * summary_metric(json.loads(export.read_text()), "timing_overhead", "med")


def floor_us(port: int, duration: float) -> float:
    """The same difference for a bare blocking socket: the machine's own floor."""
    cmd = [PYTHON, str(PEERS_DIR / "bare_socket_client.py"), str(port), str(duration)]
    return float(run(pinned(cmd, GEN_CORE), timeout=duration + 30).stdout.strip())


def bench(runs: int, duration: float) -> list[Row]:
    port = free_port()
    server = pinned([PYTHON, str(PEERS_DIR / "servers.py"), "timing", str(port)], TARGET_CORE)
    with background(server, port=port):
        url = f"http://127.0.0.1:{port}"
        results = interleaved(runs, {
            "ours": (lambda: ours_overhead_us(url, duration), "µs"),
            "k6": (lambda: k6_overhead_us(url, duration), "µs"),
            "bare socket": (lambda: floor_us(port, duration), "µs"),
        })
    row = Row("6. timing overhead (duration − server time), median", results["ours"],
              results["k6"], "< 100 µs", higher_is_better=False)
    if results["ours"].samples:
        row.verdict = results["ours"].median < 100.0
    # What the loopback round trip and wake-ups alone cost here, for scale: the part
    # of the overhead that is the client's own is the difference.
    floor = Row("6. the same, bare blocking socket (machine floor)", results["bare socket"],
                None, "", higher_is_better=False)
    return [row, floor]


def main() -> None:
    bench_main(__doc__, bench, default_duration=5.0)


if __name__ == "__main__":
    main()
