"""Run the real `indigo-loadtest` CLI on a built-in scenario and read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# Configuration a developer's shell may carry, which would change what a run does.
_CLEARED = ("BASE", "MODEL", "DEBUG", "API_KEY", "LOADTEST_TOKEN", "INDIGO_SCENARIOS_DIR",
            "DURATION_MIN", "NONSTREAM_RPS", "STREAM_RPS", "SINGLE_RUN", "SESSION_MODE",
            "REFRESH_MODE", "REFRESH_MARGIN_S", "THINK_TIME_S", "MAX_VUS")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    summary: dict[str, Any]
    points: list[dict[str, Any]] = field(default_factory=list)

    def metric(self, name: str) -> dict[str, Any]:
        return self.summary["metrics"].get(name, {})

    def checks(self) -> dict[str, dict[str, Any]]:
        """Every check of the run (all groups), by name."""
        found: dict[str, dict[str, Any]] = {}

        def walk(group: dict[str, Any]) -> None:
            found.update(group.get("checks", {}))
            for sub in group.get("groups", {}).values():
                walk(sub)

        walk(self.summary["root_group"])
        return found

    def samples(self, metric: str) -> list[dict[str, Any]]:
        """The raw samples (`--out json`) of one metric: {"value", "tags", "time"}."""
        return [p["data"] for p in self.points
                if p.get("type") == "Point" and p.get("metric") == metric]

    def count_by_tag(self, metric: str, tag: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        for s in self.samples(metric):
            counts[s["tags"].get(tag, "")] += s["value"]
        return counts

    def values_by_tag(self, metric: str, tag: str) -> dict[str, list[float]]:
        out: dict[str, list[float]] = defaultdict(list)
        for s in self.samples(metric):
            out[s["tags"].get(tag, "")].append(s["value"])
        return out


def clean_env(**config: str) -> dict[str, str]:
    """The process environment without run configuration, plus `config`."""
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(PYTHONUNBUFFERED="1", THINK_TIME_S="0", **config)
    return env


def run_scenario(name: str, tmp: Path, *, raw: bool = False, timeout: float = 90,
                 **config: str) -> Run:
    """`indigo-loadtest run NAME` with `config` as its environment; no BASE unless given,
    so the runner starts the embedded simulator."""
    env = clean_env(**config)
    summary = tmp / f"{name}-summary.json"
    argv = [sys.executable, "-m", "indigo_loadtest.cli", "run", name, "--quiet",
            "--no-color", "--summary-export", str(summary), "--results-dir", str(tmp)]
    samples = tmp / f"{name}-samples.ndjson"
    if raw:
        argv += ["--out", f"json={samples}"]
    proc = subprocess.run(argv, cwd=REPO, env=env, text=True, capture_output=True,
                          timeout=timeout)
    data = json.loads(summary.read_text()) if summary.exists() else {"metrics": {},
                                                                      "root_group": {}}
    points = []
    if raw and samples.exists():
        points = [json.loads(line) for line in samples.read_text().splitlines() if line]
    return Run(proc.returncode, proc.stdout, proc.stderr, data, points)
