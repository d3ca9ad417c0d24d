"""The health-check template: `indigo-loadtest new` copies it, and the copy runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .helpers import REPO, clean_env


def test_new_scenario_from_the_template_passes_its_checks(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    cli = [sys.executable, "-m", "indigo_loadtest.cli"]
    env = clean_env(SINGLE_RUN="true")
    made = subprocess.run([*cli, "new", "my-health"], cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=30)
    assert made.returncode == 0, made.stderr
    copied = (tmp_path / "scenarios" / "my-health.py").read_text()
    template = (REPO / "scenarios" / "health-check.py.example").read_text()
    assert copied.split("\n", 1)[1] == template.split("\n", 1)[1].replace(
        'TEST_CASE = "health-check"', 'TEST_CASE = "my-health"')  # and its description
    run = subprocess.run([*cli, "run", "my-health", "--no-color", "--results-dir",
                          str(tmp_path / "results")], cwd=tmp_path, env=env, text=True,
                         capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr + run.stdout
    assert "checks_succeeded...................: 100.00%" in run.stdout
    for name in ("version status 200", "guest login status 200", "models includes target model"):
        assert f"✓ {name}" in run.stdout
    assert os.listdir(tmp_path / "results")
