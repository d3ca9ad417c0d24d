"""Scenario discovery: any .py in the folder, no registration, descriptions read without running."""

from __future__ import annotations

from pathlib import Path

import pytest

from indigo_loadtest.scenario import discovery
from indigo_loadtest.scenario.errors import ScenarioError

# Always listed after a folder's own scenarios.
BUILTINS = "test-completion-conversation, test-completion-standard, test-responses"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_new_file_is_discovered_without_running_it(tmp_path: Path) -> None:
    write(tmp_path, "alpha.py", '"""Alpha flow.\n\nMore text."""\nraise SystemExit("ran!")\n')
    write(tmp_path, "beta.py", "x = 1\n")
    write(tmp_path, "_helpers.py", '"""Not a scenario."""\n')
    write(tmp_path, "notes.txt", "no")
    write(tmp_path, "health-check.py.example", '"""Template."""\n')
    found = discovery.discover(tmp_path)
    assert [(s.name, s.description) for s in found] == [("alpha", "Alpha flow."), ("beta", "")]
    write(tmp_path, "gamma.py", '"""Gamma appears with no registration."""\n')
    assert [s.name for s in discovery.discover(tmp_path)] == ["alpha", "beta", "gamma"]


def test_syntax_error_file_is_still_listed_with_a_note(tmp_path: Path) -> None:
    write(tmp_path, "broken.py", "def (:\n")
    (only,) = discovery.discover(tmp_path)
    assert only.name == "broken"
    assert "syntax error on line 1" in only.description


def test_folder_precedence(tmp_path: Path) -> None:
    explicit = tmp_path / "explicit"
    from_env = tmp_path / "from_env"
    local = tmp_path / "scenarios"
    for d in (explicit, from_env, local):
        d.mkdir()
    env = {discovery.SCENARIOS_DIR_ENV: str(from_env)}
    assert discovery.scenarios_dir(str(explicit), env, tmp_path) == explicit
    assert discovery.scenarios_dir(None, env, tmp_path) == from_env
    assert discovery.scenarios_dir(None, {}, tmp_path) == local
    # No folder yet: ./scenarios all the same (`new` creates it); the built-ins still resolve.
    assert discovery.scenarios_dir(None, {}, explicit) == explicit / "scenarios"
    found = discovery.resolve("test-responses", explicit / "scenarios")
    assert found.path == discovery.BUILTIN_SCENARIOS_DIR / "test-responses.py"
    with pytest.raises(ScenarioError, match="does not exist"):
        discovery.scenarios_dir(str(tmp_path / "missing"), {}, tmp_path)


def test_resolve_by_name_and_by_path(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "")
    write(tmp_path, "b.py", "")
    assert discovery.resolve("a", tmp_path).path == tmp_path / "a.py"
    other = tmp_path / "elsewhere"
    other.mkdir()
    write(other, "c.py", '"""C."""')
    by_path = discovery.resolve(str(other / "c.py"), tmp_path)
    assert (by_path.name, by_path.description) == ("c", "C.")
    with pytest.raises(ScenarioError) as err:
        discovery.resolve("nope", tmp_path)
    assert str(err.value) == "unknown scenario 'nope'; available: a, b, " + BUILTINS


def test_unknown_scenario_suggests_the_closest_names(tmp_path: Path) -> None:
    for name in ("test-responses", "test-completion-standard", "test-conversations"):
        write(tmp_path, f"{name}.py", "")
    # The folder's own, then the built-in it does not shadow.
    names = ("test-completion-standard, test-conversations, test-responses, "
             "test-completion-conversation")
    cases = {
        "test-respones": "did you mean test-responses? ",
        "responses": "did you mean test-responses? ",
        "conversation": "did you mean test-conversations or test-completion-conversation? ",
        "zzz": "",
    }
    for ref, hint in cases.items():
        with pytest.raises(ScenarioError) as err:
            discovery.resolve(ref, tmp_path)
        assert str(err.value) == f"unknown scenario {ref!r}; {hint}available: {names}"
