"""What the run shows of names it was given is masked in every place alike (issue 22 §5):
the live dashboard (BASE's password, a check named after API_KEY) as the run record does,
a check name in the export, the record, the HTML report and the markdown summary; and
the dashboard answers only its own Host (a DNS-rebinding page is refused)."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_helpers import clean_env, cli_argv, result_text, run_cli, write_scenario

KEY = "checkkey-5f0c2a9e41d7"
PASSWORD = "hunter2-b7e19d03c4"

SCENARIO = '''from indigo_loadtest import check, env, group, sleep
options = {"vus": 1, "iterations": ITERATIONS}

async def default(vu):
    with group("g " + env["API_KEY"]):
        r = await vu.http.get(env["BASE"] + "/v1/models")
        check(r, {"key " + env["API_KEY"] + " ok": lambda r: r.status == 200})
    await sleep(PAUSE)
'''


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "scenarios").mkdir()
    return tmp_path


def scenario(workdir: Path, iterations: int, pause: float) -> None:
    write_scenario(workdir, "named", SCENARIO.replace("ITERATIONS", str(iterations))
                   .replace("PAUSE", str(pause)))


def base_with_password(simulator_url: str) -> str:
    return simulator_url.replace("://", f"://user:{PASSWORD}@")


@contextmanager
def started(args: list[str], cwd: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(cli_argv(*args), cwd=cwd, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def dashboard_port(proc: subprocess.Popen[str], bound: float = 30) -> int:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if select.select([proc.stderr], [], [], 1)[0]:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            if "dashboard: http://127.0.0.1:" in line:
                return int(line.split("127.0.0.1:", 1)[1].split("/", 1)[0])
    raise AssertionError("the dashboard's address was not printed")


def get(port: int, path: str, host: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_dashboard_masks_as_the_record_and_answers_only_its_own_host(
        workdir: Path, simulator_url: str) -> None:
    scenario(workdir, iterations=200, pause=0.05)
    env = clean_env(API_KEY=KEY, BASE=base_with_password(simulator_url))
    with started(["run", "named", "-q", "--no-summary", "--dashboard", "0"],
                 workdir, env) as proc:
        port = dashboard_port(proc)
        deadline = time.monotonic() + 30  # the first points: series keys are shown too
        while not json.loads(get(port, "/data", f"127.0.0.1:{port}")[1])["charts"]:
            assert time.monotonic() < deadline, "no chart on the live page"
            time.sleep(0.3)
        pages = {}
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}"):
            for path in ("/", "/data"):
                status, body = get(port, path, host)
                assert status == 200, (host, path, status)
                assert PASSWORD not in body and KEY not in body, (host, path)
                pages[host, path] = body
        for host in (f"rebind.example:{port}", "rebind.example", "127.0.0.1",
                     f"127.0.0.1:{port + 1}", f"localhost.rebind.example:{port}"):
            for path in ("/", "/data"):
                status, body = get(port, path, host)
                assert status == 403 and "forbidden" in body, (host, path, status)
                assert "Over time" not in body and "charts" not in body
    page = pages[f"127.0.0.1:{port}", "/"]
    assert simulator_url in page  # the target, shown without its credentials


def test_a_secret_in_a_check_or_group_name_is_masked_in_every_result_file(
        workdir: Path, simulator_url: str) -> None:
    scenario(workdir, iterations=3, pause=0)
    res = run_cli("run", "named", "--summary-export", "results/s.json",
                  "--summary-markdown", "results/s.md", cwd=workdir,
                  env=clean_env(API_KEY=KEY, BASE=base_with_password(simulator_url)))
    assert res.returncode == 0, res.stderr
    results = workdir / "results"
    files = {p.name: result_text(p) for p in results.iterdir()}
    assert set(files) == {"s.json", "s.md", "s.html", "s.timeseries.json.gz"}
    for name, text in files.items():
        assert KEY not in text and PASSWORD not in text, name
    group = json.loads(files["s.json"])["root_group"]["groups"]["g [MASKED]"]
    assert group["checks"]["key [MASKED] ok"]["passes"] == 3
    record = json.loads(files["s.timeseries.json.gz"])
    assert [c["name"] for c in record["checks"]] == ["key [MASKED] ok"]
    assert "key [MASKED] ok" in files["s.html"]
    assert KEY not in res.stdout + res.stderr
