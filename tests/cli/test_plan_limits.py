"""Arrival rates beyond what the generator can start: an absurd one is rejected before any
traffic, a high one still ends on time with every planned start accounted for."""

from __future__ import annotations

import json
import time
from pathlib import Path

from cli_helpers import clean_env, run_cli, write_scenario

from indigo_loadtest.scenario.errors import ExitCode

RATE_SCENARIO = '''"""Starts iterations at {rate}/s for 2 s with one VU."""
from indigo_loadtest import Counter

ran = Counter("ran")
options = {{"scenarios": {{"flood": {{
    "executor": "constant-arrival-rate", "rate": {rate}, "timeUnit": "1s", "duration": "2s",
    "preAllocatedVUs": 1, "maxVUs": 1, "gracefulStop": "5s"}}}}}}

async def default(vu):
    ran.add(1)
'''


def test_absurd_rate_is_rejected_before_traffic(workdir: Path) -> None:
    write_scenario(workdir, "absurd", RATE_SCENARIO.format(rate="10**12"))
    env = clean_env(BASE="http://127.0.0.1:9")
    res = run_cli("run", "absurd", "-q", cwd=workdir, env=env)
    assert res.returncode == ExitCode.INVALID_CONFIG
    assert res.stderr == ("error: scenario 'flood': up to 1e+12 iterations per second, more "
                          "than the limit of 1000000 per run (raise it with --rate-limit N or "
                          "INDIGO_RATE_LIMIT=N)\n")
    assert not (workdir / "results").exists()
    lowered = run_cli("run", "absurd", "-q", cwd=workdir,
                      env={**env, "INDIGO_RATE_LIMIT": "10"})
    assert lowered.returncode == ExitCode.INVALID_CONFIG and "limit of 10 " in lowered.stderr


def test_rate_the_generator_cannot_follow_ends_on_time(workdir: Path) -> None:
    """900k starts/s with one VU: most are dropped, the scheduler falls behind, and still
    the run ends at its planned end with started + dropped = planned (the last iteration
    takes microseconds: gracefulStop lets it finish rather than cut it, uncounted)."""
    write_scenario(workdir, "flood", RATE_SCENARIO.format(rate=900_000))
    began = time.monotonic()
    res = run_cli("run", "flood", "-q", "--workers", "1", "--summary-export", "s.json",
                  cwd=workdir, env=clean_env(BASE="http://127.0.0.1:9"), timeout=60)
    took = time.monotonic() - began
    assert res.returncode == ExitCode.OK, res.stderr
    assert took < 15  # 2 s planned; the bound is start-up and the machine's noise
    metrics = json.loads((workdir / "s.json").read_text())["metrics"]
    started, dropped = metrics["iterations"]["count"], metrics["dropped_iterations"]["count"]
    assert dropped > 0 and started == metrics["ran"]["count"]
    assert started + dropped == 1_800_000
