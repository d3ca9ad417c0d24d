"""Outputs seen from the command line: the remote-write report in the summary footer,
summaryTrendStats, and result files that cannot be written."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import cramjam
import pytest
from aiohttp import web
from cli_helpers import LocalServer, clean_env, run_cli, serve_in_thread, write_scenario
from test_failures import closed_port

from indigo_loadtest.metrics.tags import EMPTY
from indigo_loadtest.outputs.prometheus_rw import FINAL_ATTEMPTS
from indigo_loadtest.outputs.remote_write_pb import WriteRequest
from indigo_loadtest.runner import Console, RunSettings, execute, prepare, run_event_loop
from indigo_loadtest.scenario.errors import ExitCode, ScenarioError

TIMED = '''"""Gets /{tag} for a second."""
from indigo_loadtest import env, sleep

options = {{"vus": 1, "duration": "1s", "thresholds": {{"http_reqs": ["{threshold}"]}}}}

async def default(vu):
    await vu.http.get(env["BASE"] + "/{tag}")
    await sleep(0.05)
'''


@pytest.mark.parametrize(("threshold", "exit_code"), [
    ("count>0", ExitCode.OUTPUT_FAILED), ("count<0", ExitCode.THRESHOLDS_FAILED),
])
def test_failed_remote_write_pushes_are_reported_in_the_footer(
        workdir: Path, local_server: LocalServer, threshold: str, exit_code: int) -> None:
    write_scenario(workdir, "pushed", TIMED.format(tag="pushed", threshold=threshold))
    url = f"http://127.0.0.1:{closed_port()}/api/v1/write"
    res = run_cli("run", "pushed", "--out", f"prometheus-rw={url}", "--no-color", cwd=workdir,
                  env=clean_env(BASE=local_server.url, K6_PROMETHEUS_RW_PUSH_INTERVAL="200ms"))
    assert res.returncode == exit_code, res.stderr
    footer = res.stdout[res.stdout.rindex(f"  target: {local_server.url}"):].splitlines()
    match = re.fullmatch(rf"  prometheus-rw {re.escape(url)}: 0 pushes sent, (\d+) failed, "
                         r"(\d+) dropped \(last error: .+\)", footer[1])
    assert match, footer
    assert int(match.group(1)) >= 2  # periodic pushes and the final one all failed
    warnings = [line for line in res.stderr.splitlines() if "prometheus-rw" in line]
    assert warnings[0].startswith("warning: prometheus-rw: push to ")
    # Not one push accepted: the run's numbers never reached Prometheus, so a run whose
    # thresholds pass still fails (112), and either way one line says why.
    assert len(warnings) == 2, warnings
    assert warnings[1].startswith(f"error: prometheus-rw: none of the {match.group(1)} pushes")
    assert "Traceback" not in res.stderr


def pushes_answered(answers: list[int], then: int) -> tuple[web.Application, list]:
    """A remote-write endpoint answering its requests with `answers` in turn, then always
    `then`; it records (status, body) of each request."""
    seen: list[tuple[int, bytes]] = []

    async def receive(request: web.Request) -> web.Response:
        status = answers[len(seen)] if len(seen) < len(answers) else then
        seen.append((status, await request.read()))
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/api/v1/write", receive)
    return app, seen


def http_reqs_pushed(body: bytes) -> float:
    msg = WriteRequest()
    msg.ParseFromString(bytes(cramjam.snappy.decompress_raw(body)))
    # One series per tag set: their sum is the run's count.
    return sum(ts.samples[0].value for ts in msg.timeseries
               if ("__name__", "k6_http_reqs_total") in {(lb.name, lb.value) for lb in ts.labels})


def test_a_refused_final_push_is_retried_and_delivers_the_totals(
        workdir: Path, local_server: LocalServer) -> None:
    # Only the final push (an hour's interval): refused twice (Prometheus restarting), then
    # accepted on the last attempt.
    write_scenario(workdir, "retried", TIMED.format(tag="retried", threshold="count>0"))
    app, seen = pushes_answered([503] * (FINAL_ATTEMPTS - 1), then=204)
    with serve_in_thread(app) as url:
        res = run_cli("run", "retried", "--out", f"prometheus-rw={url}/api/v1/write",
                      "--summary-export", "retried.json", "--no-color", cwd=workdir,
                      env=clean_env(BASE=local_server.url, K6_PROMETHEUS_RW_PUSH_INTERVAL="1h"))
    assert res.returncode == ExitCode.OK, res.stderr
    assert [status for status, _ in seen] == [503] * (FINAL_ATTEMPTS - 1) + [204]
    assert len({body for _, body in seen}) == 1  # the same final values each time
    exported = json.loads((workdir / "retried.json").read_text())["metrics"]
    assert http_reqs_pushed(seen[-1][1]) == exported["http_reqs"]["count"] > 0
    assert f"1 pushes sent, {FINAL_ATTEMPTS - 1} failed" in res.stdout
    assert "error:" not in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(("refusal", "attempts"), [(503, FINAL_ATTEMPTS), (400, 1)])
def test_a_final_push_never_accepted_after_earlier_ones_fails_the_run(
        workdir: Path, local_server: LocalServer, refusal: int, attempts: int) -> None:
    # The first push is accepted, every later one refused: the last interval's samples
    # never reach Prometheus, and no later push will carry them.
    write_scenario(workdir, "refused", TIMED.format(tag="refused", threshold="count>0"))
    app, seen = pushes_answered([204], then=refusal)
    with serve_in_thread(app) as url:
        res = run_cli("run", "refused", "--out", f"prometheus-rw={url}/api/v1/write",
                      "--no-color", cwd=workdir,
                      env=clean_env(BASE=local_server.url, K6_PROMETHEUS_RW_PUSH_INTERVAL="200ms"))
    assert res.returncode == ExitCode.OUTPUT_FAILED, res.stderr
    assert seen[0][0] == 204 and {status for status, _ in seen[1:]} == {refusal}
    # The final push's attempts repeat one body (its values and timestamp); a 400 is not
    # retried, as the remote-write spec says.
    final = [body for _, body in seen if body == seen[-1][1]]
    assert len(final) == attempts and seen[-attempts - 1][1] != seen[-1][1]
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    assert errors[0].startswith(f"error: prometheus-rw: the final push to {url}/api/v1/write "
                                f"was not accepted ({attempts} attempt(s) in "), errors
    assert f"HTTP {refusal}" in errors[0]
    assert "since the last accepted push (the last " in errors[0]
    assert "Traceback" not in res.stderr


STATS = '''"""Gets /{tag} twice."""
from indigo_loadtest import env

options = {{"iterations": 2{options}}}

async def default(vu):
    await vu.http.get(env["BASE"] + "/{tag}")
'''


def test_summary_trend_stats_from_the_option_and_the_flag(workdir: Path,
                                                          local_server: LocalServer) -> None:
    options = ', "summaryTrendStats": ["avg", "p(99.9)", "count"]'
    write_scenario(workdir, "stats", STATS.format(tag="stats", options=options))
    env = clean_env(BASE=local_server.url)
    res = run_cli("run", "stats", "--summary-export", "option.json", "--no-color", cwd=workdir,
                  env=env)
    assert res.returncode == 0, res.stderr
    assert re.search(r"http_req_duration\.+: avg=\S+\s+p\(99\.9\)=\S+\s+count=2\n", res.stdout)
    exported = json.loads((workdir / "option.json").read_text())["metrics"]
    assert list(exported["http_req_duration"]) == ["avg", "p(99.9)", "count"]
    res = run_cli("run", "stats", "--summary-trend-stats", "med, p(99)", "--summary-export",
                  "flag.json", "--no-color", cwd=workdir, env=env)
    assert res.returncode == 0, res.stderr
    assert re.search(r"http_req_duration\.+: med=\S+\s+p\(99\)=\S+\n", res.stdout)
    exported = json.loads((workdir / "flag.json").read_text())["metrics"]
    assert list(exported["iteration_duration"]) == ["med", "p(99)"]  # the flag wins


HINT = "(use avg, min, med, max, count or p(N))"


@pytest.mark.parametrize(("tag", "options", "flags", "message"), [
    ("typo-option", ', "summaryTrendStats": ["avg", "p99"]', (),
     f"error: summaryTrendStats: invalid summary trend stat 'p99' {HINT}\n"),
    ("typo-type", ', "summaryTrendStats": 95', (),
     "error: summaryTrendStats: expected a list of trend stats such as "
     '["avg", "p(95)"], got 95\n'),
    ("typo-flag", "", ("--summary-trend-stats", "avg,mean"),
     f"error: --summary-trend-stats: invalid summary trend stat 'mean' {HINT}\n"),
    ("typo-empty", "", ("--summary-trend-stats", ""),
     f"error: --summary-trend-stats: invalid summary trend stat '' {HINT}\n"),
])
def test_summary_trend_stats_typo_is_one_line_before_traffic(
        workdir: Path, local_server: LocalServer, tag: str, options: str,
        flags: tuple[str, ...], message: str) -> None:
    write_scenario(workdir, "typo", STATS.format(tag=tag, options=options))
    env = clean_env(BASE=local_server.url)
    res = run_cli("run", "typo", "-q", *flags, cwd=workdir, env=env)
    assert (res.returncode, res.stderr) == (ExitCode.INVALID_CONFIG, message)
    assert local_server.paths(f"/{tag}") == []
    assert not (workdir / "results").exists()
    if not flags:  # `check` validates the option as well
        checked = run_cli("check", "typo", cwd=workdir, env=env)
        assert (checked.returncode, checked.stderr) == (ExitCode.INVALID_CONFIG, message)


@pytest.mark.parametrize(("flags", "message"), [
    (("--out", "json=a_file/x.ndjson"),
     "cannot write the json output a_file/x.ndjson: a_file is not a directory"),
    (("--out", "csv=a_dir"), "cannot write the csv output a_dir: it is a directory"),
    (("--summary-export", "a_dir"), "cannot write the summary export a_dir: it is a directory"),
    (("--results-dir", "a_file/deeper", "--dry-run"),
     "cannot write the summary export a_file/deeper/files_"),
    # Permission bits allow it (root), the file system does not: found before traffic too.
    (("--summary-export", "/proc/export.json"),
     "cannot write the summary export /proc/export.json: cannot create files in /proc: "),
])
def test_unwritable_result_file_is_one_line_before_traffic(
        workdir: Path, local_server: LocalServer, flags: tuple[str, ...], message: str) -> None:
    (workdir / "a_file").write_text("not a folder")
    (workdir / "a_dir").mkdir()
    write_scenario(workdir, "files", STATS.format(tag="files", options=""))
    res = run_cli("run", "files", *flags, cwd=workdir, env=clean_env(BASE=local_server.url))
    assert res.returncode == ExitCode.INVALID_CONFIG
    assert res.stderr.startswith("error: " + message) and res.stderr.count("\n") == 1
    assert "Traceback" not in res.stdout
    assert local_server.paths("/files") == []
    assert sorted(p.name for p in workdir.iterdir()) == ["a_dir", "a_file", "scenarios"]


def test_summary_export_path_taken_during_the_run_fails_the_run(
        workdir: Path, local_server: LocalServer) -> None:
    write_scenario(workdir, "taken", '''"""setup() puts a folder where the export goes."""
import os
from indigo_loadtest import env

def setup():
    os.mkdir("taken.json")

async def default(vu):
    await vu.http.get(env["BASE"] + "/taken")
''')
    res = run_cli("run", "taken", "-q", "--summary-export", "taken.json", cwd=workdir,
                  env=clean_env(BASE=local_server.url))
    assert res.returncode == ExitCode.OUTPUT_FAILED  # checked before the run, failed after
    assert res.stderr == "error: cannot write the summary export taken.json: Is a directory\n"
    assert "http_reqs" in res.stdout and len(local_server.paths("/taken")) == 1
    assert sorted(p.name for p in workdir.iterdir()) == ["scenarios", "taken.json"]


def test_an_output_failing_to_start_stops_the_ones_started(
        workdir: Path, local_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_scenario(workdir, "late", STATS.format(tag="late", options=""))
    monkeypatch.chdir(workdir)
    url = f"http://127.0.0.1:{closed_port()}/api/v1/write"
    settings = RunSettings(scenario=str(path), env={"BASE": local_server.url}, quiet=True,
                           outs=[f"prometheus-rw={url}", "json=late/x.ndjson"])
    console = Console(io.StringIO(), io.StringIO())
    prepared = prepare(settings, console)
    (workdir / "late" / "x.ndjson").mkdir(parents=True)  # taken after the check
    registry = prepared.registry
    registry.record(registry.builtin.iterations, 1.0, EMPTY)  # something to push
    with pytest.raises(ScenarioError, match=r"^output json \(late/x.ndjson\): .*Is a directory"):
        run_event_loop(execute(prepared, console))
    prepared.close()
    remote_write = prepared.outputs[0]
    assert remote_write.name == "prometheus-rw"
    # Stopped: its final push went out (and failed, each of its attempts).
    assert remote_write.failed_pushes == FINAL_ATTEMPTS
    assert local_server.paths("/late") == []
