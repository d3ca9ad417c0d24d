"""The source scan that decides whether a run without BASE starts the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from indigo_loadtest.scenario.discovery import BUILTIN_SCENARIOS_DIR
from indigo_loadtest.scenario.target_use import reads_base


@pytest.mark.parametrize("source", [
    'from indigo_loadtest import env\nURL = env["BASE"]\n',
    'from indigo_loadtest import env\nasync def default(vu):\n    env.get("BASE", "x")\n',
    'import os\nURL = os.environ["BASE"]\n',
    "from indigo_loadtest.jan import Flow\n",
    "import indigo_loadtest.jan.api\n",
    "from indigo_loadtest import jan\n",
    "import indigo_loadtest\nflow = indigo_loadtest.jan.Flow\n",
    "from indigo_loadtest.llm.benchmark import BenchScenario\n",  # it sends to BASE
    "from indigo_loadtest import llm\n",
    "import _helpers\n",  # the helper beside it names BASE
    "from _helpers import url\n",
    "from pkg.sub import url\n",  # so does a module of a local package
])
def test_sources_that_can_use_the_simulator(tmp_path: Path, source: str) -> None:
    (tmp_path / "_helpers.py").write_text('from indigo_loadtest import env\nurl = env["BASE"]\n')
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "sub.py").write_text('import os\nurl = os.environ.get("BASE")\n')
    scenario = tmp_path / "s.py"
    scenario.write_text(source)
    assert reads_base(scenario)


@pytest.mark.parametrize("source", [
    '"""Calls https://example.test, never BASE."""\nfrom indigo_loadtest import env\n'
    'URL = env["TARGET"]\n',
    "import _other\nimport json\nfrom indigo_loadtest import check\n",
    "BASE_URL = 'http://127.0.0.1:1'\n",  # a name, not the BASE key
    "import indigo_loadtest.engine\nfrom indigo_loadtest import check, Trend\n",
])
def test_sources_that_cannot(tmp_path: Path, source: str) -> None:
    (tmp_path / "_other.py").write_text("import _other\nX = 'BASE URL'\n")  # imports itself
    scenario = tmp_path / "s.py"
    scenario.write_text(source)
    assert not reads_base(scenario)


def test_every_built_in_scenario_starts_the_simulator() -> None:
    built_ins = [p for p in BUILTIN_SCENARIOS_DIR.iterdir() if p.name.startswith("test-")]
    assert built_ins
    assert all(reads_base(p) for p in built_ins)
    assert reads_base(BUILTIN_SCENARIOS_DIR / "health-check.py.example")  # `new`'s template
