"""Finding scenario files: any `*.py` in the scenarios folder, no registration needed.

A scenario's name is its file stem; its description is the first line of its module
docstring, read with `ast` so that listing never executes user code. The user's folder
(`--scenarios-dir`, `$INDIGO_SCENARIOS_DIR` or `./scenarios`) comes first; the built-in
scenarios, shipped inside the package, are always available by name after it.
"""

from __future__ import annotations

import ast
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ExitCode, ScenarioError

SCENARIOS_DIR_ENV = "INDIGO_SCENARIOS_DIR"
# Inside the package, so that an installed wheel has them (the repository's `scenarios`
# is a link to this folder).
BUILTIN_SCENARIOS_DIR = Path(__file__).resolve().parents[1] / "builtin_scenarios"


@dataclass(frozen=True)
class ScenarioFile:
    name: str
    path: Path
    description: str


def scenarios_dir(
    explicit: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path:
    """The user's scenarios folder: --scenarios-dir, else $INDIGO_SCENARIOS_DIR (both must
    exist), else ./scenarios (which may not exist yet: `new` creates it)."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    chosen = explicit or env.get(SCENARIOS_DIR_ENV)
    if chosen:
        path = (cwd / Path(chosen).expanduser()).resolve()
        if not path.is_dir():
            source = "--scenarios-dir" if explicit else SCENARIOS_DIR_ENV
            raise ScenarioError(
                f"scenarios folder {chosen!r} ({source}) does not exist", ExitCode.USAGE
            )
        return path
    return cwd / "scenarios"  # not resolved: the repository's `scenarios` link keeps its name


def describe(path: Path) -> str:
    """First line of the module docstring, without running the file."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        return f"(syntax error on line {exc.lineno}: {exc.msg})"
    except (OSError, ValueError) as exc:
        return f"(unreadable: {exc})"
    doc = ast.get_docstring(tree) or ""
    return doc.strip().splitlines()[0].strip() if doc.strip() else ""


def is_scenario_file(path: Path) -> bool:
    return path.suffix == ".py" and not path.name.startswith(("_", ".")) and path.is_file()


def discover(folder: Path) -> list[ScenarioFile]:
    """Every scenario in `folder`, sorted by name."""
    if not folder.is_dir():
        return []
    files = sorted((p for p in folder.iterdir() if is_scenario_file(p)), key=lambda p: p.stem)
    return [ScenarioFile(p.stem, p, describe(p)) for p in files]


def is_builtin_folder(folder: Path) -> bool:
    return same_file(folder, BUILTIN_SCENARIOS_DIR)


def same_file(a: Path, b: Path) -> bool:
    """The same file or folder, whatever links (or a bind mount) lead to it."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.samefile(b)
    except OSError:
        return False


def builtins_not_in(folder: Path) -> list[ScenarioFile]:
    """The built-in scenarios that `folder` neither is, nor shadows by name, nor holds
    under another name (a link to the file): each file is listed once."""
    if is_builtin_folder(folder):
        return []
    own = discover(folder)
    names = {s.name for s in own}
    return [s for s in discover(BUILTIN_SCENARIOS_DIR)
            if s.name not in names and not any(same_file(s.path, o.path) for o in own)]


def available(folder: Path) -> list[ScenarioFile]:
    """Every scenario that can be run by name: the folder's, then the other built-ins."""
    return discover(folder) + builtins_not_in(folder)


def looks_like_path(ref: str) -> bool:
    return ref.endswith(".py") or os.sep in ref or "/" in ref


def resolve(ref: str, folder: Path, cwd: Path | None = None) -> ScenarioFile:
    """A scenario by name (in `folder`) or by path to a .py file."""
    cwd = cwd or Path.cwd()
    if looks_like_path(ref):
        path = (cwd / Path(ref).expanduser()).resolve()
        if not path.is_file():
            raise ScenarioError(f"scenario file {ref!r} does not exist", ExitCode.USAGE)
        return ScenarioFile(path.stem, path, describe(path))
    scenarios = available(folder)
    for scenario in scenarios:
        if scenario.name == ref:
            return scenario
    raise ScenarioError(unknown_scenario_message(ref, [s.name for s in scenarios], folder, cwd),
                        ExitCode.USAGE)


def unknown_scenario_message(ref: str, names: list[str], folder: Path, cwd: Path) -> str:
    """'unknown scenario', the closest names first ("did you mean"), then all of them."""
    if not names:
        return f"unknown scenario {ref!r}; no scenarios in {display_path(folder, cwd)}"
    # Built-ins are `test-*`: a user typing `responses` means `test-responses`.
    candidates = {name: name for name in names}
    candidates.update({name.removeprefix("test-"): name for name in names
                       if name.startswith("test-")})
    close = difflib.get_close_matches(ref, list(candidates), n=3, cutoff=0.6)
    suggestions = list(dict.fromkeys(candidates[c] for c in close))
    hint = f"did you mean {' or '.join(suggestions)}? " if suggestions else ""
    return f"unknown scenario {ref!r}; {hint}available: {', '.join(names)}"


def display_path(path: Path, cwd: Path | None = None) -> str:
    """`path` relative to the working directory when it is inside it (shorter messages)."""
    cwd = cwd or Path.cwd()
    for shown, base in ((path.absolute(), cwd.absolute()), (path.resolve(), cwd.resolve())):
        try:
            return str(shown.relative_to(base))
        except ValueError:
            continue
    return str(path)
