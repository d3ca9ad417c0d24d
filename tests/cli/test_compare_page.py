"""`compare -o`: the page's headline is the comparison's verdict (it showed the two runs'
own "✓ passed" while compare exited 99), and the baseline and the candidate are drawn in
colours of their own, not only dashed and solid."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import LocalServer, clean_env, run_cli, write_scenario

from indigo_loadtest.report.compare import FAIL_EXIT

SCENARIO = '''"""A few requests."""
from indigo_loadtest import env

options = {"vus": 1, "iterations": 4, "thresholds": {"http_req_failed": ["rate<0.5"]}}

async def default(vu):
    await vu.http.get(env["BASE"] + "/page")
'''


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory, local_server: LocalServer) -> list[Path]:
    """Two passing runs (summary exports, their run records beside them)."""
    workdir = tmp_path_factory.mktemp("compare-page")
    (workdir / "scenarios").mkdir()
    write_scenario(workdir, "paged", SCENARIO)
    out = []
    for name in ("base", "cand"):
        export = workdir / f"{name}.json"
        res = run_cli("run", "paged", "-q", "--no-summary", "--no-report", "--summary-export",
                      str(export), cwd=workdir, env=clean_env(BASE=local_server.url))
        assert res.returncode == 0, res.stderr
        out.append(export)
    return out


def compared(exports: list[Path], tmp_path: Path, *rules: str) -> tuple[int, str]:
    page = tmp_path / "compare.html"
    args = [a for rule in rules for a in ("--fail-on", rule)]
    res = run_cli("compare", *map(str, exports), *args, "-o", str(page), cwd=tmp_path)
    assert "Traceback" not in res.stderr
    return res.returncode, page.read_text()


def headline(html: str) -> str:
    """The first verdict on the page: the one under "Comparison"."""
    found = re.search(r"<h1>Comparison</h1>\s*<p class=\"verdict (\w+)\">([^<]*)</p>", html)
    assert found, html[:2000]
    return f"{found.group(1)} {found.group(2)}"


def test_the_headline_is_the_comparisons_verdict(exports: list[Path], tmp_path: Path) -> None:
    code, html = compared(exports, tmp_path, "http_reqs:count!=+5%")
    assert code == FAIL_EXIT
    assert headline(html) == ("bad ✗ failed: 1 of 1 --fail-on rules hold "
                              f"(exit code {FAIL_EXIT})")
    # Each run's own verdict is still there, said to be its own.
    assert html.count("its own run: ✓ passed") == 2
    assert len(re.findall(r'class="verdict ok"', html)) == 0
    code, html = compared(exports, tmp_path, "http_reqs:count>+5%")
    assert code == 0
    assert headline(html) == "ok ✓ passed: none of the 1 --fail-on rules holds (exit code 0)"


def test_baseline_and_candidate_have_colours_of_their_own(exports: list[Path],
                                                          tmp_path: Path) -> None:
    _, html = compared(exports, tmp_path)
    spec = json.loads(re.search(r"id='report-data'>(.*?)</script>", html).group(1))
    assert spec["charts"]
    for chart in spec["charts"]:
        colours = {"baseline": set(), "candidate": set()}
        for series in chart["series"]:
            colours[series["label"].split(":")[0]].add(series["color"])
        assert colours["baseline"] and colours["candidate"], chart["title"]
        assert not colours["baseline"] & colours["candidate"], chart["title"]
