"""`run --summary-markdown FILE`: the thresholds and key metrics as a markdown table, for a
CI job summary. Real runs of the CLI against a loopback server."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import LocalServer, clean_env, run_cli, write_scenario

from indigo_loadtest.scenario.errors import ExitCode

# Three requests: one threshold passes, one is crossed, one is on a metric never recorded.
JUDGED = '''"""Gets /md three times."""
from indigo_loadtest import Trend, check, env

unused = Trend("unused_ms", True)
options = {"vus": 1, "iterations": 3, "thresholds": {
    "http_req_failed": ["rate<0.5"],
    "http_reqs": ["count<2"],
    "unused_ms": ["p(95)<100"],
}}

async def default(vu):
    res = await vu.http.get(env["BASE"] + "/md")
    check(res, {"status 200": lambda r: r.status == 200})
'''


def table_rows(text: str) -> dict[str, list[str]]:
    """First cell -> the other cells, for every row of every table."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0]] = cells[1:]
    return rows


def test_markdown_summary_of_a_run_with_a_crossed_threshold(
        workdir: Path, local_server: LocalServer) -> None:
    write_scenario(workdir, "judged", JUDGED)
    res = run_cli("run", "judged", "-q", "--summary-markdown", "ci/summary.md", cwd=workdir,
                  env=clean_env(BASE=local_server.url))
    assert res.returncode == ExitCode.THRESHOLDS_FAILED, res.stderr
    assert "markdown summary written to ci/summary.md" in res.stderr
    text = (workdir / "ci" / "summary.md").read_text(encoding="utf-8")
    assert text.startswith("### indigo-loadtest: judged\n\n**✗ failed: thresholds crossed**\n"
                           "\n1 of 3 thresholds failed.\n")
    rows = table_rows(text)
    assert rows["`http_req_failed` `rate<0.5`"] == ["✓", "rate=0.00%"]
    assert rows["`http_reqs` `count<2`"] == ["✗", "count=3"]
    assert rows["`unused_ms` `p(95)<100`"] == ["no samples", "p(95)=n/a (no samples)"]
    assert rows["requests"] == ["3"]
    assert rows["failed requests"] == ["0.00%"]
    assert rows["checks passed"] == ["100.00%"]
    assert rows["iterations"] == ["3"]
    assert rows["request duration p(95)"][0].endswith(("s", "ms", "µs"))
    assert "LLM time to first token p(95)" not in rows  # no LLM metrics in this run
    assert [p.name for p in (workdir / "ci").iterdir()] == ["summary.md"]  # no temp file


def test_markdown_summary_states_a_verdict_the_thresholds_do_not_give(workdir: Path) -> None:
    """A run that measured nothing fails (113) with its threshold unjudged: so does the
    markdown, rather than a green table."""
    write_scenario(workdir, "idle", '''"""Sends nothing, measures nothing."""
options = {"vus": 1, "iterations": 2, "thresholds": {"http_req_duration": ["p(95)<100"]}}

async def default(vu):
    pass
''')
    res = run_cli("run", "idle", "-q", "--summary-markdown", "summary.md", cwd=workdir)
    assert res.returncode == ExitCode.NOTHING_MEASURED, res.stderr
    text = (workdir / "summary.md").read_text(encoding="utf-8")
    assert "**✗ failed (exit code 113): nothing was measured: " in text
    assert "All 1 thresholds passed (1 without samples, not evaluated)." in text
    rows = table_rows(text)
    assert rows["`http_req_duration` `p(95)<100`"][0] == "no samples"
    assert rows["requests"] == ["0"]
    assert rows["failed requests"] == rows["request duration p(95)"] == ["no samples"]


def test_unwritable_markdown_path_is_refused_before_traffic(
        workdir: Path, local_server: LocalServer) -> None:
    (workdir / "a_dir").mkdir()
    write_scenario(workdir, "judged", JUDGED.replace("/md", "/md-refused"))
    res = run_cli("run", "judged", "--summary-markdown", "a_dir", cwd=workdir,
                  env=clean_env(BASE=local_server.url))
    assert res.returncode == ExitCode.INVALID_CONFIG
    assert res.stderr == "error: cannot write the markdown summary a_dir: it is a directory\n"
    assert local_server.paths("/md-refused") == []


def test_markdown_path_taken_during_a_passing_run_fails_it(
        workdir: Path, local_server: LocalServer) -> None:
    write_scenario(workdir, "taken", '''"""setup() puts a folder where the markdown goes."""
import os
from indigo_loadtest import env

def setup():
    os.mkdir("taken.md")

async def default(vu):
    await vu.http.get(env["BASE"] + "/md-taken")
''')
    res = run_cli("run", "taken", "-q", "--summary-markdown", "taken.md", "--summary-export",
                  "taken.json", cwd=workdir, env=clean_env(BASE=local_server.url))
    assert res.returncode == ExitCode.OUTPUT_FAILED  # checked before the run, failed after
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: cannot write the markdown summary taken.md: Is a directory"]
    assert (workdir / "taken.json").is_file() and len(local_server.paths("/md-taken")) == 1
    assert not [p.name for p in workdir.iterdir() if p.name.endswith(".tmp")]


def test_markdown_summary_names_one_file_so_not_with_all(workdir: Path) -> None:
    res = run_cli("run", "--all", "--summary-markdown", "x.md", cwd=workdir)
    assert res.returncode == ExitCode.USAGE
    assert "--summary-markdown" in res.stderr and "Traceback" not in res.stderr
