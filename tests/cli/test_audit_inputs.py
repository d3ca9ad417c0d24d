"""User mistakes found by the audit of the run/ split, --ray, bench --endpoint completions
and the platform fallbacks: each ends in one `error:` line and a non-zero exit, never a
silent exit 0 or a traceback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import LocalServer, clean_env, run_cli, write_scenario
from test_bench import bench, completions_server  # noqa: F401 (a fixture)

from indigo_loadtest.scenario.errors import ExitCode

EXITS_AT_IMPORT = '''"""Calls exit() while being imported."""
import sys
sys.exit({code})

async def default(vu):
    pass
'''


@pytest.mark.parametrize("code", ["", "0"])
@pytest.mark.parametrize("command", [("check",), ("run", "-q"), ("run", "-q", "--dry-run")])
def test_a_scenario_exiting_at_import_fails_the_command(
        workdir: Path, command: tuple[str, ...], code: str) -> None:
    write_scenario(workdir, "exits", EXITS_AT_IMPORT.format(code=code))
    res = run_cli(command[0], "exits", *command[1:], cwd=workdir,
                  env=clean_env(BASE="http://127.0.0.1:9"))
    assert res.returncode == ExitCode.SCRIPT_EXCEPTION, (res.stdout, res.stderr)
    assert "error: scenarios/exits.py:3: the scenario called exit()" in res.stderr
    assert "Traceback" not in res.stderr


def test_run_all_goes_on_past_a_scenario_exiting_at_import(
        workdir: Path, local_server: LocalServer) -> None:
    write_scenario(workdir, "a_exits", EXITS_AT_IMPORT.format(code="0"))
    write_scenario(workdir, "b_runs", '''"""Runs."""
from indigo_loadtest import env

options = {"vus": 1, "iterations": 1}

async def default(vu):
    await vu.http.get(env["BASE"] + "/x")
''')
    res = run_cli("run", "--all", "--pause", "0", "-q", cwd=workdir,
                  env=clean_env(BASE=local_server.url))
    assert res.returncode != 0, (res.stdout, res.stderr)
    assert "1/2 scenarios passed" in res.stdout
    assert list((workdir / "results").glob("b_runs_*.json"))


def run_tiny_with_ray(workdir: Path, address: str) -> subprocess.CompletedProcess:
    write_scenario(workdir, "tiny", '''"""Never runs: the address is refused first."""
async def default(vu):
    pass
''')
    return run_cli("run", "tiny", "--ray", address, cwd=workdir, timeout=60)


@pytest.mark.parametrize("address", [":6379", "127.0.0.1:", "ray://:10001"])
def test_ray_address_without_host_or_port_is_one_line(workdir: Path, address: str) -> None:
    pytest.importorskip("ray")
    res = run_tiny_with_ray(workdir, address)
    assert res.returncode == ExitCode.INVALID_CONFIG, res.stderr
    assert res.stderr.strip() == (f"error: --ray: {address!r} is not an address: expected "
                                  "host:port, ray://host:port, auto or local")


@pytest.mark.parametrize("address", ["user:s3cretpw@127.0.0.1:1", "ray://user:s3cretpw@:1"])
def test_ray_address_credentials_are_never_printed(workdir: Path, address: str) -> None:
    pytest.importorskip("ray")
    res = run_tiny_with_ray(workdir, address)
    assert res.returncode == ExitCode.INVALID_CONFIG, res.stderr
    assert "s3cretpw" not in res.stdout + res.stderr
    assert res.stderr.startswith("error: --ray: ") and res.stderr.count("\n") == 1


@pytest.mark.parametrize("command", [("run", "tiny", "-q"), ("serve", "--port", "0")])
def test_a_misspelt_event_loop_is_refused(workdir: Path, local_server: LocalServer,
                                          command: tuple[str, ...]) -> None:
    write_scenario(workdir, "tiny", '''"""One request."""
from indigo_loadtest import env

options = {"vus": 1, "iterations": 1}

async def default(vu):
    await vu.http.get(env["BASE"] + "/x")
''')
    res = run_cli(*command, cwd=workdir, timeout=30,
                  env=clean_env(BASE=local_server.url, INDIGO_EVENT_LOOP="asycnio"))
    assert res.returncode == ExitCode.USAGE, (res.stdout, res.stderr)
    assert res.stderr == "error: INDIGO_EVENT_LOOP: expected asyncio or uvloop, got 'asycnio'\n"


def test_completions_prompt_of_a_chat_dataset_is_its_text(
        tmp_path: Path,
        completions_server: tuple[str, list[dict[str, Any]]]) -> None:  # noqa: F811
    """Content given as parts, or none (an assistant's tool call), is never sent as its
    Python form ("[{'type': 'text', ...}]", "None")."""
    url, bodies = completions_server
    dataset = tmp_path / "chat.jsonl"
    dataset.write_text(json.dumps({"messages": [
        {"role": "system", "content": "be brief"},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "user", "content": [{"type": "text", "text": "hello"},
                                     {"type": "image_url", "image_url": {"url": "x"}},
                                     {"type": "text", "text": " there"}]}]}) + "\n")
    proc, _ = bench(tmp_path, "--base", url, "--model", "m", "--endpoint", "completions",
                    "--dataset", str(dataset), "--iterations", "1", "--no-stream")
    assert proc.returncode == 0, proc.stderr
    assert bodies[-1]["prompt"] == "be brief\n\nhello there"


EXITS_IN = {
    "default": '''"""exit() in every iteration."""
import sys
from indigo_loadtest import env

options = {"vus": 1, "iterations": 2}

async def default(vu):
    await vu.http.get(env["BASE"] + "/x")
    sys.exit(0)
''',
    "setup": '''"""exit() in setup()."""
import sys
from indigo_loadtest import env

options = {"vus": 1, "iterations": 2}

def setup():
    sys.exit(0)

async def default(vu):
    await vu.http.get(env["BASE"] + "/x")
''',
    "teardown": '''"""exit() in teardown()."""
import sys
from indigo_loadtest import env

options = {"vus": 1, "iterations": 2}

async def default(vu):
    await vu.http.get(env["BASE"] + "/x")

async def teardown():
    sys.exit()
''',
    "handleSummary": '''"""exit() in handleSummary()."""
import sys
from indigo_loadtest import env

options = {"vus": 1, "iterations": 2}

async def default(vu):
    await vu.http.get(env["BASE"] + "/x")

def handleSummary(data):
    sys.exit(0)
''',
}
EXIT_ERRORS = {
    "default": (ExitCode.NOTHING_MEASURED,
                "error: nothing was measured: every iteration (2) ended with an exception "
                "(SystemExit ×2)"),
    "setup": (ExitCode.SCRIPT_EXCEPTION, "error: setup() failed: the scenario called exit(0)"),
    "teardown": (ExitCode.SCRIPT_EXCEPTION,
                 "error: teardown() failed: the scenario called exit()"),
    "handleSummary": (ExitCode.SCRIPT_EXCEPTION,
                      "error: handleSummary() failed: the scenario called exit(0) (the "
                      "default summary was printed instead)"),
}


@pytest.mark.parametrize("where", sorted(EXITS_IN))
def test_exit_in_scenario_code_fails_the_run_with_its_summary(
        workdir: Path, local_server: LocalServer, where: str) -> None:
    """A SystemExit raised in an asyncio task ends the event loop: the run ended with
    exit code 0 and no summary."""
    write_scenario(workdir, "exits", EXITS_IN[where])
    res = run_cli("run", "exits", "-q", cwd=workdir, timeout=30,
                  env=clean_env(BASE=local_server.url))
    code, line = EXIT_ERRORS[where]
    assert res.returncode == code, (res.stdout, res.stderr)
    assert line in res.stderr.splitlines()
    verdict = json.loads(next((workdir / "results").glob("exits_*.json")).read_text())
    assert verdict["indigo_verdict"]["exit_code"] == code


def test_bench_point_with_no_completed_request_fails_in_its_summary_export(
        tmp_path: Path) -> None:
    """A server with no /v1/completions: every request fails, the exit code is 113, and
    so is the verdict of the summary export (it said passed, exit code 0)."""
    from aiohttp import web
    from cli_helpers import serve_in_thread

    async def not_found(_: web.Request) -> web.Response:
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", not_found)
    export = tmp_path / "export.json"
    with serve_in_thread(app) as url:
        proc, _ = bench(tmp_path, "--base", url, "--model", "m", "--endpoint", "completions",
                        "--iterations", "2", "--summary-export", str(export))
    assert proc.returncode == ExitCode.NOTHING_MEASURED, proc.stderr
    assert "error: no request completed in point synchronous" in proc.stderr.splitlines()
    verdict = json.loads(export.read_text())["indigo_verdict"]
    assert verdict == {"exit_code": ExitCode.NOTHING_MEASURED, "passed": False,
                       "text": "failed (exit code 113): no request completed in point "
                               "synchronous",
                       "errors": ["no request completed in point synchronous"]}


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_bench_streams_with_no_token_are_failed_requests(tmp_path: Path, endpoint: str) -> None:
    """200 and `data: [DONE]` alone: no TTFT, no ITL measured; it passed with exit 0."""
    from aiohttp import web
    from cli_helpers import serve_in_thread

    async def empty_stream(_: web.Request) -> web.Response:
        return web.Response(text="data: [DONE]\n\n", content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/{tail:.*}", empty_stream)
    with serve_in_thread(app) as url:
        proc, doc = bench(tmp_path, "--base", url, "--model", "m", "--endpoint", endpoint,
                          "--iterations", "2")
    assert proc.returncode == ExitCode.NOTHING_MEASURED, proc.stderr
    assert doc is not None and doc["points"][0]["failed"] == 2


def test_a_dry_run_with_ray_says_where_without_connecting(workdir: Path) -> None:
    write_scenario(workdir, "tiny", '''"""Never runs: a dry run."""
async def default(vu):
    pass
''')
    res = run_cli("run", "tiny", "--ray", "user:s3cretpw@127.0.0.1:1", "--dry-run",
                  cwd=workdir, timeout=60)
    assert res.returncode == ExitCode.OK, res.stderr
    assert "ray: actors on Ray at 127.0.0.1:1 (not contacted in a dry run)" in res.stdout
    assert "s3cretpw" not in res.stdout + res.stderr
