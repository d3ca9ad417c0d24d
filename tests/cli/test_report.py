"""The run record, `report` and `compare` end to end: real runs against the embedded
simulator, the real CLI in subprocesses, the pages rendered in headless Chromium."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
from pathlib import Path

import pytest
from chromium_helpers import CHROMIUM, Browser, assert_offline, chart_points, chromium_render
from cli_helpers import LocalServer, clean_env, run_cli, write_scenario

from indigo_loadtest.scenario.errors import ExitCode

LLM_SCENARIO = '''"""Plain and streamed chat completions against the embedded simulator."""
from indigo_loadtest import check, env
from indigo_loadtest.llm import measure_stream

options = {
    "vus": 4, "iterations": 16,
    "thresholds": {"http_req_failed": ["rate<0.05"],
                   "http_req_duration{name:chat}": ["p(95)<5000"]},
}
URL = env["BASE"] + "/v1/chat/completions"
HEADERS = {"Authorization": "Bearer " + env["API_KEY"]}
BODY = {"model": env.get("MODEL", "jan-v1-4b"), "max_tokens": 24,
        "messages": [{"role": "user", "content": "hi"}]}


async def default(vu):
    res = await vu.http.post(URL, json=BODY, headers=HEADERS, name="chat")
    check(res, {"chat status 200": lambda r: r.status == 200})
    resp = await vu.http.post(URL, json={**BODY, "stream": True}, headers=HEADERS,
                              name="chat-stream", stream=True)
    await measure_stream(resp)
    check(resp, {"stream status 200": lambda r: r.status == 200})
'''

# The embedded simulator's streams in about 0.1 s (not 0.4 s): the runs behind the pages
# last a second, and every chart still has its points.
FAST_SIMULATOR = {"INDIGO_SIM_TTFT_MS": "20", "INDIGO_SIM_TOKENS_PER_SEC": "300"}

# The LLM scenario for as long as the test looks at the live dashboard: once the file
# `stop` is in its folder, the iterations left are empty and the run ends (passed).
LIVE_SCENARIO = LLM_SCENARIO.replace('"vus": 4, "iterations": 16',
                                     '"vus": 2, "iterations": 400') + """
import os

_measured = default


async def default(vu):
    if not os.path.exists("stop"):
        await _measured(vu)
"""

# Registers the LLM metrics but sends only plain GETs: they have no samples.
PLAIN_SCENARIO = '''"""Plain GETs; LLM metrics registered, never measured."""
from indigo_loadtest import env
from indigo_loadtest.llm import LLMMetrics

LLM = LLMMetrics()
options = {"vus": 1, "iterations": 3}


async def default(vu):
    await vu.http.get(env["BASE"] + "/plain")
'''

@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The same plan run with --workers 1 and --workers 2 (summary exports)."""
    workdir = tmp_path_factory.mktemp("report")
    (workdir / "scenarios").mkdir()
    write_scenario(workdir, "llm_report", LLM_SCENARIO)
    out = {}
    for workers in (1, 2):
        export = workdir / "results" / f"w{workers}.json"
        res = run_cli("run", "llm_report", "--workers", str(workers), "-q", "--no-summary",
                      "--summary-export", str(export), cwd=workdir,
                      env=clean_env(API_KEY="report-test-key", **FAST_SIMULATOR))
        assert res.returncode == 0, res.stderr
        assert f"report written to {workdir / 'results' / f'w{workers}.html'}" in res.stderr
        out[workers] = export
    return out


def record_of(export: Path) -> dict:
    return json.loads(gzip.decompress(export.with_name(
        export.stem + ".timeseries.json.gz").read_bytes()))


def endpoint_counts(html: str) -> dict[str, str]:
    """name -> request count, read from the report's endpoint table."""
    rows = re.findall(r'<td data-v="POST">POST</td><td data-v="([^"]+)">[^<]*</td>'
                      r'<td data-v="(\d+)">', html)
    return dict(rows)


def test_workers_1_and_2_record_and_report_the_same_totals(runs: dict[int, Path]) -> None:
    one, two = record_of(runs[1]), record_of(runs[2])
    assert one["meta"]["workers"] == 1 and two["meta"]["workers"] == 2
    for key, stat in (("http_reqs", "count"), ("iterations", "count"), ("checks", "passes"),
                      ("llm_ttft_ms", "samples"), ("http_req_duration{name:chat}", "samples")):
        assert one["totals"][key][stat] == two["totals"][key][stat], key
    assert one["totals"]["http_reqs"]["count"] == 32
    for record in (one, two):  # the points of a series add up to the run's total
        series = record["series"]["metrics"]
        assert sum(series["http_reqs"]["cols"]["value"]) == 32
        assert sum(series["llm_ttft_ms"]["cols"]["count"]) == 16
        assert record["meta"]["target"].startswith("embedded simulator at http://127.0.0.1:")
        assert "report-test-key" not in json.dumps(record)
    reports = [runs[w].with_suffix(".html").read_text() for w in (1, 2)]
    assert endpoint_counts(reports[0]) == endpoint_counts(reports[1]) == {
        "chat": "16", "chat-stream": "16"}


def test_report_renders_offline_with_points_in_every_chart(
        runs: dict[int, Path], tmp_path: Path, chromium: Browser) -> None:
    out = tmp_path / "report.html"
    res = run_cli("report", str(runs[2]), "-o", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    html = out.read_text()
    assert_offline(html)
    assert len(html) < 200_000
    dom = chromium_render(chromium, out, tmp_path / "report.png")
    points = chart_points(dom)
    # request rate, error rate, VUs, duration, TTFT, ITL, TPOT, tokens/s + 6 histograms
    assert len(points) >= 14 and all(n > 0 for n in points.values()), points
    assert "no responses with an error status" in dom
    assert "✓ passed" in dom and "http_req_duration{name:chat}" in dom


def test_compare_table_rules_and_overlaid_html(runs: dict[int, Path], tmp_path: Path,
                                               chromium: Browser) -> None:
    base, cand = str(runs[1]), str(runs[2])
    same = run_cli("compare", base, cand, "--fail-on", "http_reqs:count!=+0%", cwd=tmp_path)
    assert same.returncode == 0, same.stderr
    assert re.search(r"http_reqs\s+count\s+32\s+32\s+\+0\.0%\s+same", same.stdout)
    assert "✓ http_reqs:count!=+0%: ok (count +0.00%)" in same.stdout
    out = tmp_path / "compare.html"
    worse = run_cli("compare", base, cand, "--fail-on", "http_req_duration:p(95)>-100%",
                    "-o", str(out), cwd=tmp_path)
    assert worse.returncode == 99
    assert "✗ http_req_duration:p(95)>-100%: FAILED" in worse.stdout
    html = out.read_text()
    assert_offline(html)
    spec = json.loads(re.search(r"id='report-data'>(.*?)</script>", html).group(1))
    for chart in spec["charts"]:
        labels = {s["label"].split(":")[0] for s in chart["series"]}
        assert labels == {"baseline", "candidate"}, chart["title"]
    points = chart_points(chromium_render(chromium, out, tmp_path / "compare.png"))
    assert len(points) >= 8 and all(n > 0 for n in points.values()), points


def test_compare_rejects_bad_rules_and_unreadable_files(runs: dict[int, Path],
                                                        tmp_path: Path) -> None:
    bad = run_cli("compare", str(runs[1]), str(runs[2]), "--fail-on", "http_req_duration>5",
                  cwd=tmp_path)
    assert bad.returncode == ExitCode.USAGE and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("error: --fail-on 'http_req_duration>5': expected")
    missing = run_cli("report", str(tmp_path / "nope.json"), cwd=tmp_path)
    assert missing.returncode == ExitCode.USAGE and "Traceback" not in missing.stderr
    (tmp_path / "k6.json").write_text('{"metrics": {}}')
    k6 = run_cli("report", str(tmp_path / "k6.json"), cwd=tmp_path)
    assert k6.returncode == ExitCode.USAGE
    assert "no run record beside it (k6.timeseries.json.gz)" in k6.stderr


def test_no_samples_are_said_not_drawn_and_runs_of_other_scenarios_warn(
        runs: dict[int, Path], workdir: Path, local_server: LocalServer) -> None:
    write_scenario(workdir, "plain", PLAIN_SCENARIO)
    res = run_cli("run", "plain", "-q", "--no-summary", "--summary-export", "plain.json",
                  "--report", "out/plain-report.html", cwd=workdir,
                  env=clean_env(BASE=local_server.url))
    assert res.returncode == 0, res.stderr
    assert "report written to out/plain-report.html" in res.stderr
    html = (workdir / "out" / "plain-report.html").read_text()
    for title in ("Time to first token (TTFT)", "Inter-token latency (ITL)",
                  "Time per output token (TPOT)"):
        assert f'<figcaption>{title}</figcaption><p class="nodata">no samples</p>' in html
    assert re.search(r'<figcaption>TTFT</figcaption><p class=.nodata.>no samples', html)
    compared = run_cli("compare", str(runs[1]), "plain.json", "--no-color", cwd=workdir)
    assert compared.returncode == 0, compared.stderr
    assert "warning: the runs have different scenarios: 'llm_report' and 'plain'" in \
        compared.stderr
    assert re.search(r"llm_ttft_ms\s+med\s+\S+ms\s+no samples", compared.stdout)


def test_no_report_and_an_unwritable_report_path(workdir: Path,
                                                 local_server: LocalServer) -> None:
    write_scenario(workdir, "plain", PLAIN_SCENARIO)
    env = clean_env(BASE=local_server.url)
    res = run_cli("run", "plain", "-q", "--no-summary", "--no-report", cwd=workdir, env=env)
    assert res.returncode == 0, res.stderr
    files = sorted(p.name for p in (workdir / "results").iterdir())
    assert [f.split("_", 1)[1].split(".", 1)[1] for f in files] == [
        "json", "timeseries.json.gz"]
    again = run_cli("run", "plain", "-q", "--no-summary", "--report", cwd=workdir, env=env)
    assert again.returncode == 0, again.stderr  # --report alone: the default path
    (report,) = (workdir / "results").glob("plain_*.html")
    assert f"report written to results/{report.name}" in again.stderr
    before = len(local_server.paths("/plain"))
    bad = run_cli("run", "plain", "-q", "--report", "/proc/report.html", cwd=workdir, env=env)
    assert bad.returncode == ExitCode.INVALID_CONFIG
    assert bad.stderr.startswith("error: cannot write the report /proc/report.html")
    assert len(local_server.paths("/plain")) == before  # reported before any traffic


def test_dashboard_serves_the_charts_live_on_loopback(workdir: Path, tmp_path: Path,
                                                      request: pytest.FixtureRequest) -> None:
    import select
    import time
    import urllib.request

    from cli_helpers import cli_argv

    write_scenario(workdir, "live", LIVE_SCENARIO)
    proc = subprocess.Popen(cli_argv("run", "live", "-q", "--no-summary", "--dashboard", "0"),
                            cwd=workdir, env=clean_env(API_KEY="k"), text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url, deadline = "", time.monotonic() + 30
        while not url and time.monotonic() < deadline:
            if select.select([proc.stderr], [], [], 1)[0]:
                line = proc.stderr.readline()
                url = line.split("dashboard: ", 1)[1].split()[0] if "dashboard: " in line else ""
        assert url.startswith("http://127.0.0.1:"), url
        live: dict = {}
        while time.monotonic() < deadline and not any(
                c["title"] == "Time to first token (TTFT)" for c in live.get("charts", [])):
            time.sleep(0.5)
            with urllib.request.urlopen(url + "data", timeout=5) as resp:
                live = json.loads(resp.read())
        assert "points" in live["status"]
        with urllib.request.urlopen(url, timeout=5) as resp:
            page = resp.read().decode()
        assert_offline(page)
        if CHROMIUM is not None:  # the live page, with its updates from /data
            dom = chromium_render(request.getfixturevalue("chromium"), url,
                                  tmp_path / "live.png")
            points = chart_points(dom)
            assert points and all(n > 0 for n in points.values()), points
            assert re.search(r'<body[^>]*data-updates="[1-9]', dom)
        (workdir / "stop").touch()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(OSError):  # the server stopped with the run
        urllib.request.urlopen(url, timeout=2)


def test_an_interrupted_run_keeps_its_record_and_report(workdir: Path,
                                                        local_server: LocalServer) -> None:
    import signal
    import time

    from cli_helpers import cli_argv

    write_scenario(workdir, "stopped", '''"""Loops until stopped."""
from indigo_loadtest import env, sleep

options = {"vus": 2, "duration": "60s"}

async def default(vu):
    await vu.http.get(env["BASE"] + "/stopped/" + str(vu.id))
    await sleep(0.05)
''')
    proc = subprocess.Popen(cli_argv("run", "stopped", "-q", "--no-summary", "--workers", "1",
                                     "--summary-export", "s.json"),
                            cwd=workdir, env=clean_env(BASE=local_server.url), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while len(local_server.paths("/stopped/")) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.2)  # past the first point
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.EXTERNAL_ABORT, err
    assert "report written to s.html" in err
    record = record_of(workdir / "s.json")
    assert record["verdict"]["exit_code"] == ExitCode.EXTERNAL_ABORT
    assert "interrupted" in record["verdict"]["text"]
    sent = record["totals"]["http_reqs"]["count"]
    assert sent == len(local_server.paths("/stopped/"))
    assert sum(record["series"]["metrics"]["http_reqs"]["cols"]["value"]) == sent
    assert len(record["series"]["t"]) >= 2
    assert "✗ failed (exit code 105): interrupted" in (workdir / "s.html").read_text()
