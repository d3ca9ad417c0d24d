"""`indigo-loadtest new NAME`: the seed from the template is NAME's (its description
line and TEST_CASE), and it is written in the user's folder, never through a link into
the package's built-in scenarios (in a checkout `scenarios/` held such a link)."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

from cli_helpers import REPO, run_cli

from indigo_loadtest.scenario.discovery import BUILTIN_SCENARIOS_DIR, is_builtin_folder
from indigo_loadtest.scenario.errors import ExitCode


def test_new_from_the_template_is_named_after_the_new_scenario(workdir: Path) -> None:
    res = run_cli("new", "my-seed", cwd=workdir)
    assert res.returncode == 0, res.stderr
    text = (workdir / "scenarios" / "my-seed.py").read_text()
    description = ast.get_docstring(ast.parse(text)).splitlines()[0]
    assert description.startswith("my-seed: ") and "template" not in description
    assert 'TEST_CASE = "my-seed"' in text and "health-check" not in text
    assert run_cli("check", "my-seed", cwd=workdir).returncode == 0
    listed = run_cli("list", cwd=workdir).stdout
    assert re.search(rf"^  my-seed +{re.escape(description)}$", listed, re.M), listed


def test_new_in_the_checkout_writes_to_its_scenarios_folder() -> None:
    name = f"zz-new-probe-{os.getpid()}"
    mine, builtin = REPO / "scenarios" / f"{name}.py", BUILTIN_SCENARIOS_DIR / f"{name}.py"
    try:
        res = run_cli("new", name, cwd=REPO)
        assert res.returncode == 0, res.stderr
        assert mine.is_file() and not mine.is_symlink()
        assert not builtin.exists()  # it went through the link into the package before
    finally:
        for path in (mine, builtin):
            path.unlink(missing_ok=True)
    # The checkout's folder is the user's, with a link to each built-in (so `run --all`
    # in a checkout runs them).
    assert not is_builtin_folder(REPO / "scenarios")
    for builtin_file in BUILTIN_SCENARIOS_DIR.iterdir():
        if not builtin_file.name.startswith(("_", ".")):
            assert (REPO / "scenarios" / builtin_file.name).samefile(builtin_file)


def test_new_refuses_a_folder_that_is_the_packages(tmp_path: Path) -> None:
    (tmp_path / "scenarios").symlink_to(BUILTIN_SCENARIOS_DIR)
    before = sorted(p.name for p in BUILTIN_SCENARIOS_DIR.iterdir())
    res = run_cli("new", "mine", cwd=tmp_path)
    assert res.returncode == ExitCode.USAGE
    assert res.stderr.startswith("error: scenarios is the package's built-in scenarios "
                                 "folder; a new scenario goes in your own: give "
                                 "--scenarios-dir DIR") and res.stderr.count("\n") == 1
    assert sorted(p.name for p in BUILTIN_SCENARIOS_DIR.iterdir()) == before
