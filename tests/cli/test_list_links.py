"""`list` shows each scenario file once, whatever links lead to the built-ins."""

from __future__ import annotations

import re
from pathlib import Path

from cli_helpers import run_cli

from indigo_loadtest.scenario.discovery import BUILTIN_SCENARIOS_DIR

BUILTINS = sorted(p.stem for p in BUILTIN_SCENARIOS_DIR.glob("test-*.py"))


def listed(out: str) -> list[str]:
    return re.findall(r"^  (\S+)", out, re.MULTILINE)


def test_a_scenarios_folder_linking_to_the_builtins_lists_them_once(tmp_path: Path) -> None:
    (tmp_path / "scenarios").symlink_to(BUILTIN_SCENARIOS_DIR)  # as the repository had it
    (tmp_path / "other").symlink_to(tmp_path / "scenarios")  # a link to the link
    for args in ((), ("--scenarios-dir", "other"), ("--scenarios-dir", str(BUILTIN_SCENARIOS_DIR))):
        res = run_cli("list", *args, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert listed(res.stdout) == BUILTINS, args
        assert "Built-in scenarios:" not in res.stdout


def test_a_builtin_file_linked_under_another_name_is_listed_once(tmp_path: Path) -> None:
    # The same file reached by a link in the user's folder: listed as the user named it,
    # not again among the built-ins.
    folder = tmp_path / "scenarios"
    folder.mkdir()
    first = BUILTINS[0]
    (folder / "mine.py").symlink_to(BUILTIN_SCENARIOS_DIR / f"{first}.py")
    res = run_cli("list", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert listed(res.stdout) == ["mine", *BUILTINS[1:]]
