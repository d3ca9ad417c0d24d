"""`indigo-loadtest new`: a new scenario file from the template or an existing scenario."""

from __future__ import annotations

import re
from pathlib import Path

from .discovery import BUILTIN_SCENARIOS_DIR, display_path, is_builtin_folder, resolve
from .errors import ExitCode, ScenarioError

TEMPLATE_FILE = "health-check.py.example"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# Used when no health-check.py.example exists: logs in as a guest and lists the models.
MINIMAL_TEMPLATE = '''\
"""{name}: guest login, then list the models (edit this line: `indigo-loadtest list` shows it)."""

from indigo_loadtest import check, env

options = {{
    "vus": 1,
    "iterations": 1,
    "thresholds": {{
        "http_req_failed": ["rate<0.05"],
        "http_req_duration": ["p(95)<2000"],
    }},
}}


async def default(vu):
    base = env["BASE"]
    login = await vu.http.post(f"{{base}}/v1/auth/guest-login", json={{}}, name="guest-login")
    check(login, {{"login status 200": lambda r: r.status == 200}})
    token = login.json().get("access_token", "") if login.status == 200 else ""
    models = await vu.http.get(
        f"{{base}}/v1/models", headers={{"Authorization": f"Bearer {{token}}"}}, name="models"
    )
    check(models, {{
        "models status 200": lambda r: r.status == 200,
        "models lists MODEL": lambda r: any(m["id"] == env["MODEL"] for m in r.json()["data"]),
    }})
'''


def template_text(name: str, folder: Path) -> str:
    """The template as scenario `name`: its description line and its test case are the
    new scenario's (a seed that kept `TEST_CASE = "health-check"` would mix its series
    with the health check's)."""
    for candidate in (folder / TEMPLATE_FILE, BUILTIN_SCENARIOS_DIR / TEMPLATE_FILE):
        if candidate.is_file():
            text = _rename_test_case(candidate.read_text(encoding="utf-8"), name)
            return _DOCSTRING.sub(lambda m: f"{m.group(1)}{name}: {_described(m.group(2))}",
                                  text, count=1)
    return MINIMAL_TEMPLATE.format(name=name)


_QUOTES = ('"' * 3, "'" * 3)


def _described(line: str) -> str:
    """The template's description without its title and its "(template)" mark, asking
    to be edited: 'Health check: what it does (template).' -> 'what it does (edit ...).'"""
    closing = next((q for q in _QUOTES if line.endswith(q)), "")  # a one-line docstring
    what = line.removesuffix(closing).split(": ", 1)[-1].removesuffix(".")
    what = what.removesuffix(" (template)")
    return f"{what} (edit this line: `indigo-loadtest list` shows it).{closing}"


def create_scenario(name: str, folder: Path, source: str | None = None) -> Path:
    """Write `folder/NAME.py` from `source` (a scenario name or path) or the template."""
    if name.endswith(".py"):
        name = name[:-3]
    if not _NAME.match(name) or name.startswith("_"):
        raise ScenarioError(
            f"invalid scenario name {name!r} (letters, digits, '-', '_' and '.'; "
            "no leading '_')", ExitCode.USAGE,
        )
    if is_builtin_folder(folder):  # a link to the package's folder (an old checkout's)
        raise ScenarioError(
            f"{display_path(folder)} is the package's built-in scenarios folder; a new "
            "scenario goes in your own: give --scenarios-dir DIR (or INDIGO_SCENARIOS_DIR)",
            ExitCode.USAGE,
        )
    target = folder / f"{name}.py"
    if target.exists():
        raise ScenarioError(f"{target} already exists", ExitCode.USAGE)
    if source:
        original = resolve(source, folder)
        text = renamed_copy(original.path.read_text(encoding="utf-8"), original.name, name)
    else:
        text = template_text(name, folder)
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


# The test case a copied scenario tags its samples with: a Jan `Flow("name", ...)`, an
# explicit `"test_case": "name"` tag or a `TEST_CASE = "name"` constant. A copy that kept
# them would mix two scenarios' series in Grafana.
_TEST_CASE = re.compile(
    r"""(\bFlow\(\s*|["']test_case["']\s*:\s*|^TEST_CASE\s*=\s*)(["'])[^"'\n]*\2""", re.M)
_DOCSTRING = re.compile(r'''^(\s*(?:[rRuU]?)(?:"""|\'\'\'))\s*([^\n]*)''')


def renamed_copy(text: str, old: str, new: str) -> str:
    """`text` of scenario `old` as scenario `new`: its description line says it is `new`
    (copied from `old`), and its test case name and `test_case` tag become `new`."""
    text = _rename_test_case(text, new)
    return _DOCSTRING.sub(lambda m: f"{m.group(1)}{new} (copied from {old}): {m.group(2)}",
                          text, count=1)


def _rename_test_case(text: str, new: str) -> str:
    return _TEST_CASE.sub(lambda m: f"{m.group(1)}{m.group(2)}{new}{m.group(2)}", text)
