"""docs/guarantees.md and the README's exit-code table name the codes a run exits with
(test_hook_timeouts.py runs them): a setup()/teardown() that times out exits 100/101."""

from __future__ import annotations

import re

import pytest
from cli_helpers import REPO

from indigo_loadtest.scenario.errors import ExitCode


def table_rows(doc: str) -> list[tuple[str, int]]:
    """(rule, exit code) of every table row that ends in a code."""
    text = (REPO / doc).read_text(encoding="utf-8")
    rows = re.findall(r"^\|(.*)\|\s*(\d+)\s*\|$", text, re.M)
    rows += [(rule, code) for code, rule in re.findall(r"^\|\s*(\d+)\s*\|(.*)\|$", text, re.M)]
    return [(rule, int(code)) for rule, code in rows]


@pytest.mark.parametrize("doc", ["docs/guarantees.md", "README.md"])
@pytest.mark.parametrize(("hook", "code"), [("setup", ExitCode.SETUP_TIMEOUT),
                                            ("teardown", ExitCode.TEARDOWN_TIMEOUT)])
def test_hook_timeout_codes_as_documented(doc: str, hook: str, code: int) -> None:
    rows = [(rule, c) for rule, c in table_rows(doc) if f"{hook}()" in rule
            and (f"{hook}Timeout" in rule or "timed out" in rule)]
    assert rows and {c for _, c in rows} == {code}, rows
