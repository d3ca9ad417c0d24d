"""What a k6 user reaches for: K6_* variables with k6's precedence, k6's flags
(--stage, --no-thresholds, --summary-time-unit, --summary-mode full, --http-debug,
--log-output, --throw) and handleSummary(data). Real CLI runs against a real loopback
server or the embedded simulator."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import LocalServer, clean_env, run_cli, write_scenario

ITERATIONS_SCENARIO = '''
"""Counts its iterations."""
from indigo_loadtest import env, http

options = {"iterations": 3, "thresholds": {"http_req_failed": ["rate<0.5"]}}


async def default(vu):
    await http.get(env["BASE"] + "/k6-" + env.get("PATH_TAG", "x"))
'''


def export_of(workdir: Path, name: str = "out.json") -> dict:
    return json.loads((workdir / name).read_text())


def iterations_run(workdir: Path, server: LocalServer, *flags: str, **variables: str):
    write_scenario(workdir, "count", ITERATIONS_SCENARIO)
    return run_cli("run", "count", "-q", "--no-report", "--summary-export", "out.json",
                   *flags, cwd=workdir, env=clean_env(BASE=server.url, **variables))


def test_k6_variables_sit_between_the_flags_and_the_script(workdir: Path,
                                                          local_server: LocalServer) -> None:
    res = iterations_run(workdir, local_server)  # the script: 3
    assert res.returncode == 0, res.stderr
    assert export_of(workdir)["metrics"]["iterations"]["count"] == 3
    res = iterations_run(workdir, local_server, K6_ITERATIONS="2")  # env over the script
    assert res.returncode == 0, res.stderr
    assert export_of(workdir)["metrics"]["iterations"]["count"] == 2
    res = iterations_run(workdir, local_server, "--iterations", "1", K6_ITERATIONS="2")
    assert res.returncode == 0, res.stderr  # the flag over env
    assert export_of(workdir)["metrics"]["iterations"]["count"] == 1
    res = iterations_run(workdir, local_server, K6_ITERATIONS="2", INDIGO_ITERATIONS="4")
    assert res.returncode == 0, res.stderr  # the INDIGO_ twin over K6_
    assert export_of(workdir)["metrics"]["iterations"]["count"] == 4


def test_k6_output_variables(workdir: Path, local_server: LocalServer) -> None:
    write_scenario(workdir, "count", ITERATIONS_SCENARIO)
    res = run_cli("run", "count", "-q", "--no-report", cwd=workdir, env=clean_env(
        BASE=local_server.url, K6_SUMMARY_EXPORT="k6.json", K6_OUT="csv=samples.csv",
        K6_SUMMARY_TREND_STATS="avg,p(99)", K6_VUS="2", K6_DURATION="1s"))
    assert res.returncode == 0, res.stderr
    metrics = export_of(workdir, "k6.json")["metrics"]
    assert set(metrics["http_req_duration"]) == {"avg", "p(99)"}
    assert metrics["vus_max"]["max"] == 2 and metrics["iterations"]["count"] > 3  # 1s, 2 VUs
    assert (workdir / "samples.csv").read_text().count("http_reqs") == \
        metrics["http_reqs"]["count"]


def test_no_thresholds_flag_and_variable(workdir: Path, local_server: LocalServer) -> None:
    # The server answers 200: a threshold wanting most requests failed is crossed.
    text = ITERATIONS_SCENARIO.replace('"rate<0.5"', '"rate>0.5"')
    write_scenario(workdir, "count", text)
    base = ("run", "count", "-q", "--no-report", "--summary-export", "out.json")
    res = run_cli(*base, cwd=workdir, env=clean_env(BASE=local_server.url))
    assert res.returncode == 99, res.stderr
    res = run_cli(*base, "--no-thresholds", cwd=workdir, env=clean_env(BASE=local_server.url))
    assert res.returncode == 0, res.stderr
    assert "thresholds" not in json.dumps(export_of(workdir))
    res = run_cli(*base, cwd=workdir, env=clean_env(BASE=local_server.url,
                                                    K6_NO_THRESHOLDS="true"))
    assert res.returncode == 0, res.stderr


def test_bad_variable_is_a_usage_error_before_anything(workdir: Path,
                                                       local_server: LocalServer) -> None:
    sent = len(local_server.paths("/k6-"))
    res = iterations_run(workdir, local_server, K6_VUS="many")
    assert res.returncode == 2
    assert res.stderr.strip() == "error: K6_VUS='many': expected a whole number of at least 1"
    assert res.stdout == "" and len(local_server.paths("/k6-")) == sent
    res = iterations_run(workdir, local_server, K6_OUT="jsn")
    assert res.returncode == 2 and res.stderr.strip().endswith("(in the environment: K6_OUT)")


def test_stages_replace_the_scripts_execution(workdir: Path, local_server: LocalServer) -> None:
    write_scenario(workdir, "count", ITERATIONS_SCENARIO)
    res = run_cli("run", "count", "--no-report", "--summary-export", "out.json",
                  "--stage", "1s:3", "-s", "0.5s:0", cwd=workdir,
                  env=clean_env(BASE=local_server.url))
    assert res.returncode == 0, res.stderr
    assert "Up to 3 looping VUs for 1.5s over 2 stages" in res.stdout
    assert export_of(workdir)["metrics"]["vus_max"]["max"] == 3
    res = run_cli("run", "count", "--stage", "30s", cwd=workdir,
                  env=clean_env(BASE=local_server.url))
    assert res.returncode == 2
    assert "error: --stage '30s': expected DURATION:TARGET, e.g. 30s:10" in res.stderr


def test_summary_time_unit(workdir: Path, local_server: LocalServer) -> None:
    res = iterations_run(workdir, local_server, "--summary-time-unit", "ms")
    assert res.returncode == 0, res.stderr
    row = next(line for line in res.stdout.splitlines() if "http_req_duration." in line)
    cells = row.split(":", 1)[1].split()
    assert cells and all(cell.endswith("ms") and "µs" not in cell for cell in cells), row
    res = iterations_run(workdir, local_server, "--summary-time-unit", "minutes")
    assert res.returncode == 2
    assert "error: --summary-time-unit 'minutes': expected one of s, ms, us" in res.stderr


ENDPOINTS_SCENARIO = '''
"""Two endpoints, one of them failing."""
from indigo_loadtest import env, http

options = {"iterations": 4}


async def default(vu):
    await http.get(env["BASE"] + "/v1/models")
    await http.post(env["BASE"] + "/v1/nowhere", json={}, name="nowhere")
'''


def test_summary_mode_full_shows_each_endpoint(workdir: Path) -> None:
    write_scenario(workdir, "two", ENDPOINTS_SCENARIO)
    res = run_cli("run", "two", "-q", "--no-report", "--summary-mode", "full", cwd=workdir)
    assert "█ ENDPOINTS" in res.stdout, res.stdout + res.stderr
    table = res.stdout.split("█ ENDPOINTS", 1)[1].splitlines()
    header = next(line for line in table if line.strip())
    assert header.split() == ["name", "method", "reqs", "fails", "med", "p(95)", "p(99)",
                              "req/s"]
    rows = {line.split()[0]: line.split() for line in table if "/v1/models" in line
            or line.strip().startswith("nowhere")}
    models = next(v for k, v in rows.items() if k.endswith("/v1/models"))
    assert models[1:4] == ["GET", "4", "0"]
    assert rows["nowhere"][1:4] == ["POST", "4", "4"]
    plain = run_cli("run", "two", "-q", "--no-report", cwd=workdir)
    assert "ENDPOINTS" not in plain.stdout


DEBUG_SCENARIO = '''
"""One plain and one streamed request."""
from indigo_loadtest import env, http

options = {"iterations": 1}


async def default(vu):
    auth = {"Authorization": "Bearer " + env["API_KEY"]}
    await http.get(env["BASE"] + "/v1/models", headers=auth)
    resp = await http.post(env["BASE"] + "/v1/chat/completions", stream=True, headers=auth,
                           json={"model": env["MODEL"], "stream": True, "max_tokens": 3,
                                 "messages": [{"role": "user", "content": "hi"}]})
    async for _ in resp.sse():
        pass
'''
SECRET = "sk-debug-secret-0123456789"


def test_http_debug_goes_to_stderr_masked_with_stream_events(workdir: Path) -> None:
    write_scenario(workdir, "dbg", DEBUG_SCENARIO)
    env = clean_env(API_KEY=SECRET)
    res = run_cli("run", "dbg", "-q", "--no-report", "--http-debug=full", cwd=workdir, env=env)
    assert res.returncode == 0, res.stderr
    assert "> GET" not in res.stdout and "TOTAL RESULTS" in res.stdout
    err = res.stderr
    assert "> GET http://127.0.0.1" in err and "> POST" in err
    assert SECRET not in err + res.stdout
    # The streamed body: its events, as `< data: ...` lines, between the head and the end.
    head = err.index("(streamed)")
    end = err.index("< end of stream")
    assert err.count("< data: ", head, end) >= 2 and "[DONE]" in err[head:end]
    assert '"messages"' in err  # =full: request bodies too

    # A bare --http-debug (as in k6, the mode only as =full) before the scenario's name.
    res = run_cli("run", "--http-debug", "dbg", "-q", "--no-report", cwd=workdir, env=env)
    assert res.returncode == 0, res.stderr
    assert "> GET http://127.0.0.1" in res.stderr and '"messages"' not in res.stderr
    assert "< data: " not in res.stderr  # headers only


def test_debug_variable_and_log_output_file(workdir: Path) -> None:
    write_scenario(workdir, "dbg", DEBUG_SCENARIO)
    res = run_cli("run", "dbg", "-q", "--no-report", "--log-output", "file=logs/debug.log",
                  cwd=workdir, env=clean_env(API_KEY=SECRET, DEBUG="true"))
    assert res.returncode == 0, res.stderr
    log = (workdir / "logs" / "debug.log").read_text()
    assert "> POST" in log and "< data: " in log and SECRET not in log
    assert "> POST" not in res.stderr + res.stdout
    res = run_cli("run", "dbg", "-q", "--log-output", "file=/proc/nope/x.log", cwd=workdir,
                  env=clean_env(API_KEY=SECRET, DEBUG="true"))
    assert res.returncode == 2 and res.stderr.startswith("error: --log-output: cannot write")


THROW_SCENARIO = '''
"""A failing request, then another."""
from indigo_loadtest import env, http

options = {"iterations": 2}


async def default(vu):
    await http.get(env["BASE"] + "/missing", expected_statuses=[404])
    await http.get(env["BASE"] + "/after")
'''


def test_throw_ends_the_iteration_at_the_first_failed_request(workdir: Path,
                                                              local_server: LocalServer) -> None:
    write_scenario(workdir, "throw", THROW_SCENARIO)  # the server answers 200: not expected
    before = len(local_server.paths("/after"))
    res = run_cli("run", "throw", "-q", "--no-report", cwd=workdir,
                  env=clean_env(BASE=local_server.url))
    assert len(local_server.paths("/after")) == before + 2, res.stderr
    res = run_cli("run", "throw", "-q", "--no-report", "--throw", cwd=workdir,
                  env=clean_env(BASE=local_server.url))
    assert len(local_server.paths("/after")) == before + 2  # none more
    assert "RequestFailed: GET http://127.0.0.1" in res.stderr and "status 200 (--throw)" \
        in res.stderr
    assert res.returncode != 0  # no iteration completed


def test_sync_setup_using_http_is_one_clear_error(workdir: Path,
                                                  local_server: LocalServer) -> None:
    write_scenario(workdir, "syncsetup", '''
"""A k6-style synchronous setup()."""
from indigo_loadtest import env, http

options = {"iterations": 1}


def setup():
    resp = http.post(env["BASE"] + "/login", json={})
    return {"token": resp.json()["token"]}


async def default(vu):
    await http.get(env["BASE"] + "/sync-iter")
''')
    res = run_cli("run", "syncsetup", "-q", "--no-summary", "--no-report", cwd=workdir,
                  env=clean_env(BASE=local_server.url))
    assert res.returncode == 107
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: setup() failed: setup() is a plain function, but http.post() "
                      "must be awaited: write `async def setup()` and "
                      "`await http.post(...)`"], res.stderr
    assert "Traceback" not in res.stderr and "never awaited" not in res.stderr
    assert not local_server.paths("/sync-iter")


HOOK_SCENARIO = '''
"""handleSummary."""
import json
from indigo_loadtest import env, http

options = {"iterations": 2, "thresholds": {"http_reqs": ["count>=2"]}}


async def default(vu):
    await http.get(env["BASE"] + "/hook")


def handleSummary(data):
    n = data["metrics"]["http_reqs"]["values"]["count"]
    return {"stdout": f"custom summary: {n} requests", "stderr": "to stderr",
            "reports/summary.json": data}
'''


def test_handle_summary_replaces_the_summary(workdir: Path, local_server: LocalServer) -> None:
    write_scenario(workdir, "hook", HOOK_SCENARIO)
    res = run_cli("run", "hook", "-q", "--no-report", cwd=workdir,
                  env=clean_env(BASE=local_server.url))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "custom summary: 2 requests"
    assert "to stderr" in res.stderr and "target:" in res.stderr
    data = json.loads((workdir / "reports" / "summary.json").read_text())
    assert data["metrics"]["http_reqs"]["thresholds"] == {"count>=2": {"ok": True}}
    assert data["state"]["testRunDurationMs"] > 0 and data["endpoints"][0]["count"] == 2


def test_handle_summary_errors_are_one_line(workdir: Path, local_server: LocalServer) -> None:
    env = clean_env(BASE=local_server.url)
    write_scenario(workdir, "hook", HOOK_SCENARIO.replace(
        'n = data["metrics"]', 'n = data["nope"]'))
    res = run_cli("run", "hook", "-q", "--no-report", cwd=workdir, env=env)
    assert res.returncode == 107
    assert ("error: handleSummary() failed: KeyError: 'nope' (the default summary was printed "
            "instead)") in res.stderr.splitlines()
    assert "Traceback" not in res.stderr
    write_scenario(workdir, "hook", HOOK_SCENARIO.replace("return {", "return [{").replace(
        "data}", "data}]"))
    res = run_cli("run", "hook", "-q", "--no-report", cwd=workdir, env=env)
    assert res.returncode == 107
    assert "error: handleSummary() must return a mapping of destination" in res.stderr
