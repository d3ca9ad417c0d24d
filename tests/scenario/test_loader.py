"""Loading scenario files: fresh module per run, bound to the run's registry, clean errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from indigo_loadtest.metrics import Registry, active_registry
from indigo_loadtest.scenario.errors import ExitCode, ScenarioError
from indigo_loadtest.scenario.loader import load_module
from indigo_loadtest.scenario.templates import MINIMAL_TEMPLATE, create_scenario

SCENARIO = '''
"""Counts its imports."""
from indigo_loadtest import Trend
import _shared

latency = Trend("my_latency", time=True)
options = {"vus": 1, "iterations": 1}
_shared.loads.append(1)

async def default(vu):
    latency.add(1)
'''


def test_each_load_is_a_fresh_module_bound_to_its_registry(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(SCENARIO)
    (tmp_path / "_shared.py").write_text("loads = []\n")
    first, second = Registry(), Registry()
    m1 = load_module(tmp_path / "flow.py", first)
    m2 = load_module(tmp_path / "flow.py", second)
    assert m1 is not m2
    assert m1.latency.registry is first and m2.latency.registry is second
    assert active_registry() is second
    # The helper beside the scenario is re-imported too, so its state is per run.
    assert m1._shared is not m2._shared and m2._shared.loads == [1]


def test_syntax_error_is_one_line_with_file_and_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scenarios").mkdir()
    path = tmp_path / "scenarios" / "broken.py"
    path.write_text('"""Broken."""\nx = 1\nif x\n    pass\n')
    with pytest.raises(ScenarioError) as err:
        load_module(path, Registry())
    assert str(err.value).startswith("scenarios/broken.py:3: SyntaxError: ")
    assert err.value.exit_code == ExitCode.SCRIPT_EXCEPTION


def test_import_error_points_at_the_users_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad_import.py").write_text("import os\n\nimport no_such_module_here\n")
    (tmp_path / "raises.py").write_text("import _helper\n")
    (tmp_path / "_helper.py").write_text("def f():\n    return 1 / 0\n\nf()\n")
    with pytest.raises(ScenarioError) as err:
        load_module(tmp_path / "bad_import.py", Registry())
    assert str(err.value) == (
        "bad_import.py:3: ModuleNotFoundError: No module named 'no_such_module_here'")
    with pytest.raises(ScenarioError) as err:
        load_module(tmp_path / "raises.py", Registry())
    assert str(err.value) == "_helper.py:2: ZeroDivisionError: division by zero"


def test_new_scenario_from_template_and_from_existing(tmp_path: Path) -> None:
    created = create_scenario("my-flow", tmp_path)
    assert created == tmp_path / "my-flow.py"
    text = created.read_text()
    assert text.startswith('"""') and "async def default(vu)" in text
    compile(text, str(created), "exec")
    copy = create_scenario("copy", tmp_path, source="my-flow")
    assert copy.read_text() == text.replace('"""', '"""copy (copied from my-flow): ', 1).replace(
        'TEST_CASE = "my-flow"', 'TEST_CASE = "copy"')  # the copy is its own test case
    with pytest.raises(ScenarioError, match="already exists"):
        create_scenario("my-flow", tmp_path)
    with pytest.raises(ScenarioError, match="invalid scenario name"):
        create_scenario("../evil", tmp_path)
    assert "{name}" in MINIMAL_TEMPLATE
