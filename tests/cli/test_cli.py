"""The `indigo-loadtest` command end to end: real subprocesses, a real loopback server."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from cli_helpers import REPO, LocalServer, clean_env, result_text, run_cli, write_scenario

from indigo_loadtest.scenario.errors import ExitCode

# Always listed after a folder's own scenarios.
BUILTINS = "test-completion-conversation, test-completion-standard, test-responses"

PASSING = '''"""Gets /{tag} once per iteration."""
from indigo_loadtest import check, env

options = {{
    "vus": 2, "iterations": 4,
    "thresholds": {{"http_req_failed": ["rate<0.05"], "checks": ["rate==1"]}},
}}

async def default(vu):
    res = await vu.http.get(env["BASE"] + "/{tag}/" + str(vu.id))
    check(res, {{"status is 200": lambda r: r.status == 200}})
'''


def passing(tag: str) -> str:
    return PASSING.format(tag=tag)


def test_list_finds_a_new_file_with_no_registration(workdir: Path) -> None:
    write_scenario(workdir, "alpha", '"""Alpha flow."""\n')
    write_scenario(workdir, "_helpers", '"""Not listed."""\n')
    first = run_cli("list", cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert re.search(r"^Scenarios in scenarios:\n  alpha +Alpha flow\.\n\nBuilt-in scenarios:\n"
                     r"  test-completion-conversation  Conversations", first.stdout)
    assert "_helpers" not in first.stdout
    write_scenario(workdir, "beta", '"""Beta, added later."""\n')
    second = subprocess.run([str(REPO / "run-loadtest.sh"), "--list"], cwd=workdir,
                            env=clean_env(), text=True, capture_output=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert re.search(r"\n  alpha +Alpha flow\.\n  beta +Beta, added later\.\n", second.stdout)


def test_unknown_scenario_lists_the_available_ones(workdir: Path) -> None:
    write_scenario(workdir, "a", "")
    write_scenario(workdir, "b", "")
    res = run_cli("run", "nope", cwd=workdir)
    assert res.returncode == ExitCode.USAGE
    # The folder's scenarios, then the built-ins (always available by name).
    assert res.stderr == "error: unknown scenario 'nope'; available: a, b, " + BUILTINS + "\n"
    write_scenario(workdir, "test-alpha", "")
    res = run_cli("run", "test-alpah", cwd=workdir)
    assert res.returncode == ExitCode.USAGE
    assert res.stderr == ("error: unknown scenario 'test-alpah'; did you mean test-alpha? "
                          "available: a, b, test-alpha, " + BUILTINS + "\n")


def test_syntax_and_import_errors_are_one_line_without_traceback(workdir: Path) -> None:
    write_scenario(workdir, "broken", '"""Broken."""\n\ndef default(vu)\n    pass\n')
    res = run_cli("run", "broken", cwd=workdir)
    assert res.returncode == ExitCode.SCRIPT_EXCEPTION
    assert res.stderr.startswith("error: scenarios/broken.py:3: SyntaxError: ")
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr + res.stdout
    write_scenario(workdir, "missing", "import os\nimport not_a_module_anywhere\n")
    res = run_cli("check", "missing", cwd=workdir)
    assert res.returncode == ExitCode.SCRIPT_EXCEPTION
    assert res.stderr == ("error: scenarios/missing.py:2: ModuleNotFoundError: "
                          "No module named 'not_a_module_anywhere'\n")


def test_bad_threshold_is_rejected_before_any_traffic(workdir: Path,
                                                      local_server: LocalServer) -> None:
    write_scenario(workdir, "bad_threshold", passing("bad-threshold").replace(
        '"checks": ["rate==1"]', '"http_req_duration": ["p95<100"]'))
    res = run_cli("run", "bad_threshold", cwd=workdir, env=clean_env(BASE=local_server.url))
    assert res.returncode == ExitCode.INVALID_CONFIG
    assert "p95<100" in res.stderr and res.stderr.count("\n") == 1
    assert "Traceback" not in res.stderr
    write_scenario(workdir, "unknown_metric", passing("unknown-metric").replace(
        '"checks"', '"no_such_metric"'))
    res = run_cli("run", "unknown_metric", cwd=workdir, env=clean_env(BASE=local_server.url))
    assert res.returncode == ExitCode.INVALID_CONFIG
    assert "no_such_metric" in res.stderr
    assert local_server.paths("/bad-threshold") == local_server.paths("/unknown-metric") == []


def test_exit_code_0_and_99_with_result_files(workdir: Path, local_server: LocalServer) -> None:
    write_scenario(workdir, "ok", passing("ok"))
    write_scenario(workdir, "too_slow", passing("slow").replace(
        '"checks": ["rate==1"]', '"http_req_duration": ["max<0"]'))
    env = clean_env(BASE=local_server.url)
    ok = run_cli("run", "ok", "--out", "json", "--tag", "team=llm", cwd=workdir, env=env)
    assert ok.returncode == 0, ok.stderr
    assert len(local_server.paths("/ok/")) == 4
    assert "✓ status is 200" in ok.stdout
    (export,) = (workdir / "results").glob("ok_*.json")
    (ndjson,) = (workdir / "results").glob("ok_*.ndjson")
    summary = json.loads(export.read_text())
    assert summary["metrics"]["http_reqs"]["count"] == 4
    points = [json.loads(line) for line in ndjson.read_text().splitlines()]
    reqs = [p for p in points if p.get("metric") == "http_reqs" and p["type"] == "Point"]
    assert len(reqs) == 4
    tags = reqs[0]["data"]["tags"]
    assert tags["test_case"] == "ok" and tags["team"] == "llm"
    assert tags["testid"].startswith("ok-") and tags["environment"] == "127.0.0.1"

    slow = run_cli("run", "too_slow", "--summary-export", "out/slow.json", cwd=workdir, env=env)
    assert slow.returncode == ExitCode.THRESHOLDS_FAILED, slow.stderr
    assert "✗ 'max<0'" in slow.stdout
    assert "http_req_duration 'max<0'" in slow.stderr
    exported = json.loads((workdir / "out" / "slow.json").read_text())
    assert exported["metrics"]["http_req_duration"]["thresholds"] == {"max<0": True}


def test_env_precedence_dotenv_environment_flag(workdir: Path) -> None:
    write_scenario(workdir, "show_env", '''"""Prints its configuration at import."""
from indigo_loadtest import env
print("MODEL=" + env["MODEL"], "STREAM_RPS=" + env["STREAM_RPS"], "FROM_FILE=" + env["FROM_FILE"],
      "DURATION_MIN=" + env["DURATION_MIN"], sep="\\n")
async def default(vu):
    pass
''')
    (workdir / ".env").write_text("MODEL=file\nSTREAM_RPS=file\nFROM_FILE=file\n")
    env = clean_env(MODEL="environ", STREAM_RPS="environ")
    res = run_cli("check", "show_env", "--env", "MODEL=flag", cwd=workdir, env=env)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert {"MODEL=flag", "STREAM_RPS=environ", "FROM_FILE=file", "DURATION_MIN=5"} <= set(lines)


def test_token_is_sent_but_never_printed(workdir: Path, local_server: LocalServer) -> None:
    secret = "tok-3f9a1c-very-secret"
    write_scenario(workdir, "secret", passing("secret"))
    env = clean_env(BASE=local_server.url, LOADTEST_TOKEN=secret, API_KEY="key-77aa-secret",
                    DEBUG="true")
    res = run_cli("run", "secret", "--out", "json", "--out", "csv", cwd=workdir, env=env)
    assert res.returncode == 0, res.stderr
    assert "loadtest_token: [CONFIGURED]" in res.stdout
    assert "api_key: [CONFIGURED]" in res.stdout
    sent = [h for p, h in local_server.requests if p.startswith("/secret/")]
    assert sent and all(h.get("x-loadtest-token") == secret for h in sent)
    everything = res.stdout + res.stderr + "".join(
        result_text(p) for p in (workdir / "results").iterdir())
    assert secret not in everything and "key-77aa-secret" not in everything


def test_dry_run_and_check_send_nothing_and_show_the_executor(workdir: Path,
                                                              local_server: LocalServer) -> None:
    write_scenario(workdir, "dry", passing("dry"))
    env = clean_env(BASE=local_server.url)
    res = run_cli("run", "dry", "--dry-run", "--vus", "5", "--duration", "1m30s",
                  cwd=workdir, env=env)
    assert res.returncode == 0, res.stderr
    assert "default: 5 looping VUs for 1m30s (gracefulStop: 30s)" in res.stdout
    assert "output: would write summary export (results/dry_" in res.stdout
    res = run_cli("check", str(workdir / "scenarios" / "dry.py"), cwd=workdir, env=env)
    assert res.returncode == 0 and "✓ dry:" in res.stdout
    res = run_cli("run", "dry", "--dry-run", "--vus", "9", "--iterations", "3", cwd=workdir,
                  env=env)
    assert res.returncode == ExitCode.INVALID_CONFIG
    assert "the number of iterations (3) can't be less than the number of VUs (9)" in res.stderr
    assert local_server.paths("/dry") == []
    assert not (workdir / "results").exists()


def test_run_by_path_outside_the_scenarios_folder(tmp_path: Path,
                                                  local_server: LocalServer) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "by_path.py").write_text(passing("by-path"))
    res = run_cli("run", "elsewhere/by_path.py", "-q", "--no-summary", cwd=tmp_path,
                  env=clean_env(BASE=local_server.url))
    assert res.returncode == 0, res.stderr
    assert len(local_server.paths("/by-path/")) == 4
    assert list((tmp_path / "results").glob("by_path_*.json"))


def test_run_all_prints_a_table_and_fails_if_one_fails(workdir: Path,
                                                       local_server: LocalServer) -> None:
    write_scenario(workdir, "a_good", passing("all-good"))
    write_scenario(workdir, "b_bad", passing("all-bad").replace(
        '"checks": ["rate==1"]', '"iterations": ["count>100"]'))
    res = run_cli("run", "--all", "--pause", "0", "-q", "--no-summary",
                  "--summary-trend-stats", "max", cwd=workdir,
                  env=clean_env(BASE=local_server.url))
    assert res.returncode == ExitCode.THRESHOLDS_FAILED, res.stderr
    exports = sorted((workdir / "results").glob("*.json"))
    assert [p.name.split("_2")[0] for p in exports] == ["a_good", "b_bad"]
    for export in exports:  # each scenario's run got the flag
        assert list(json.loads(export.read_text())["metrics"]["http_req_duration"]) == ["max"]
    table = res.stdout[res.stdout.index("scenario "):]
    assert "a_good" in table and "✓ passed" in table
    assert "b_bad" in table and "✗ FAILED (thresholds)" in table
    assert "1/2 scenarios passed" in table
    assert len(local_server.paths("/all-good/")) == len(local_server.paths("/all-bad/")) == 4
    lines = res.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  scenario "))
    rows = lines[start:start + 3]  # header, a_good, b_bad: the time column ends in one place
    assert len({len(row) for row in rows}) == 1 and all(r.endswith(("time", "s")) for r in rows)


def test_run_all_table_is_aligned_whatever_the_verdict() -> None:
    from indigo_loadtest.cli import AllResult, table_lines

    results = [AllResult("short", ExitCode.OK, 1.0),
               AllResult("a-much-longer-name", ExitCode.INVALID_CONFIG, 12.25),
               AllResult("died", ExitCode.WORKER_DIED, 100.0)]
    lines = table_lines(results)[1:]
    assert "✗ FAILED (invalid options)" in lines[2] and "FAILED (a worker died)" in lines[3]
    assert len({len(line) for line in lines}) == 1  # every column starts in one place
    assert len({line.index(" ", 2 + len("a-much-longer-name")) for line in lines[1:]}) == 1


def test_new_from_template_and_from_existing(workdir: Path) -> None:
    res = run_cli("new", "my-flow", cwd=workdir)
    assert res.returncode == 0, res.stderr
    created = workdir / "scenarios" / "my-flow.py"
    assert created.is_file() and "created scenarios/my-flow.py" in res.stdout
    assert run_cli("check", "my-flow", cwd=workdir).returncode == 0
    res = run_cli("new", "copy", "--from", "my-flow", cwd=workdir)
    assert res.returncode == 0
    original, copy = created.read_text(), (workdir / "scenarios" / "copy.py").read_text()
    first, rest = original.split("\n", 1)
    rest = rest.replace('TEST_CASE = "my-flow"', 'TEST_CASE = "copy"')
    assert 'TEST_CASE = "my-flow"' in original
    assert copy == f'"""copy (copied from my-flow): {first[3:]}\n{rest}'
    assert "my-flow" in run_cli("list", cwd=workdir).stdout
    again = run_cli("new", "my-flow", cwd=workdir)
    assert again.returncode == ExitCode.USAGE and "already exists" in again.stderr


def test_usage_errors_are_one_line(workdir: Path) -> None:
    res = run_cli("run", cwd=workdir)
    assert res.returncode == ExitCode.USAGE and res.stderr.startswith("error: which scenario?")
    res = run_cli("run", "x", "--vus", "zero", cwd=workdir)
    assert res.returncode == ExitCode.USAGE and "--vus" in res.stderr
    assert "Traceback" not in res.stderr
    write_scenario(workdir, "x", passing("x"))
    res = run_cli("run", "x", "--out", "influxdb", cwd=workdir)
    assert res.returncode == ExitCode.USAGE
    assert res.stderr.startswith("error: --out 'influxdb': unknown output")


def test_abort_on_fail_stops_the_run_with_exit_code_99(workdir: Path,
                                                       local_server: LocalServer) -> None:
    write_scenario(workdir, "abort", '''"""Crosses an abortOnFail threshold at once."""
from indigo_loadtest import env, sleep

options = {
    "vus": 1, "duration": "60s",
    "thresholds": {"http_reqs": [{"threshold": "count<3", "abortOnFail": True}]},
}

async def default(vu):
    await vu.http.get(env["BASE"] + "/abort")
    await sleep(0.05)
''')
    res = run_cli("run", "abort", "-q", cwd=workdir, env=clean_env(BASE=local_server.url),
                  timeout=30)
    assert res.returncode == ExitCode.THRESHOLDS_FAILED, res.stderr
    assert "aborted: threshold http_reqs 'count<3' crossed (abortOnFail)" in res.stdout
    assert "✗ 'count<3'" in res.stdout


def test_workers_split_the_run_and_merge_the_metrics(workdir: Path,
                                                     local_server: LocalServer) -> None:
    write_scenario(workdir, "sharded", passing("sharded").replace(
        '"vus": 2, "iterations": 4', '"vus": 4, "iterations": 10'))
    res = run_cli("run", "sharded", "--workers", "2", "-q", cwd=workdir,
                  env=clean_env(BASE=local_server.url))
    assert res.returncode == 0, res.stderr
    assert len(local_server.paths("/sharded/")) == 10
    (export,) = (workdir / "results").glob("sharded_*.json")
    metrics = json.loads(export.read_text())["metrics"]
    assert metrics["http_reqs"]["count"] == metrics["iterations"]["count"] == 10
    res = run_cli("run", "sharded", "--workers", "2", "--out", "json", cwd=workdir,
                  env=clean_env(BASE=local_server.url))
    assert res.returncode == ExitCode.USAGE and "--workers" in res.stderr


def test_usage_error_comes_before_the_header_and_starts_nothing(workdir: Path) -> None:
    write_scenario(workdir, "plain", '"""Plain."""\n\nasync def default(vu):\n    pass\n')
    res = run_cli("run", "plain", "--workers", "2", "--out", "json", cwd=workdir)
    assert res.returncode == ExitCode.USAGE
    assert res.stderr == ("error: --out json/csv record raw samples in this process; they "
                          "cannot be used with --workers above 1\n")
    assert res.stdout == ""  # no header, no simulator URL: nothing was started


def test_new_from_a_builtin_renames_its_test_case(tmp_path: Path) -> None:
    """In a folder with no ./scenarios yet: `new` creates it; the copy of a built-in is
    listed and tags its samples with its own test case, not the original's."""
    res = run_cli("new", "my-responses", "--from", "test-responses", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "created scenarios/my-responses.py" in res.stdout
    listed = run_cli("list", cwd=tmp_path).stdout
    assert re.search(r"my-responses +my-responses \(copied from test-responses\): Resp", listed)
    run = run_cli("run", "my-responses", "-q", "--no-summary", "--out", "json=s.ndjson",
                  cwd=tmp_path, env=clean_env(SINGLE_RUN="true", THINK_TIME_S="0"), timeout=90)
    assert run.returncode == 0, run.stderr
    cases = {json.loads(line)["data"]["tags"].get("test_case")
             for line in (tmp_path / "s.ndjson").read_text().splitlines()
             if json.loads(line)["type"] == "Point"}
    assert cases == {"my-responses"}
