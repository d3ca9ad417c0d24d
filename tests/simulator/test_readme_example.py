"""The README's "Writing a scenario" example, copied verbatim as a new user would, passes
against the default target (the embedded simulator): every check, exit code 0."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
CLI = Path(sys.executable).with_name("indigo-loadtest")


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("## Writing a scenario"):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python example under 'Writing a scenario'"
    return match.group(1)


def test_readme_scenario_passes_against_the_default_target(tmp_path: Path) -> None:
    scenario = tmp_path / "my_flow.py"
    scenario.write_text(readme_example())
    env = {k: v for k, v in os.environ.items()
           if k != "BASE" and not k.startswith("INDIGO_")}  # the default target
    export = tmp_path / "summary.json"
    # Only the run's length is shortened (the example asks for 30 s).
    done = subprocess.run([str(CLI), "run", str(scenario), "--duration", "1s", "--no-color",
                           "--summary-export", str(export)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "embedded simulator" in done.stdout
    checks = json.loads(export.read_text())["metrics"]["checks"]
    assert checks["passes"] > 0 and checks["fails"] == 0
