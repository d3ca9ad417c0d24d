"""`serve` / `python -m indigo_loadtest.simulator` and start_simulator_process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from indigo_loadtest.simulator.cli import READY_PREFIX
from indigo_loadtest.simulator.config import ConfigError
from indigo_loadtest.simulator.process import start_simulator_process

MODULE = [sys.executable, "-m", "indigo_loadtest.simulator"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its state says it has exited.
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"


def test_module_serves_until_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen([*MODULE, "--port", "0", "--db", str(tmp_path / "s.db"),
                             "--models", "m-one,m-two"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith(READY_PREFIX + "http://127.0.0.1:")
        url = line[len(READY_PREFIX):]
        assert _model_ids(url) == ["m-one", "m-two"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(("args", "message"), [
    (["--error-rate", "2"], "error_rate=2.0: must be between 0 and 1"),
    (["--ttft-ms", "soon"], "argument --ttft-ms: invalid float value"),
    (["--error-rate", "0.6", "--drop-rate", "0.6"], "fault rates add up to 1.2"),
    (["--port", "70000"], "must be between 0 and 65535"),
    (["--port", "0", "--db", "/nonexistent-dir/x.db"], "cannot use the database"),
    (["--no-overrides", "yes"], "unrecognized arguments: yes"),
    (["--latency-model", "paged"], "latency_model='paged': must be one of fixed, batching"),
    (["--step-ms-per-seq", "nan"], "step_ms_per_seq must be a finite number"),
])
def test_user_mistakes_are_one_line_errors(args: list[str], message: str) -> None:
    res = subprocess.run([*MODULE, *args], capture_output=True, text=True, timeout=20)
    assert res.returncode in (1, 2)
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def _model_ids(url: str) -> list[str]:
    with httpx.Client(base_url=url, trust_env=False) as client:
        token = client.post("/v1/auth/guest-login", json={}).json()["access_token"]
        resp = client.get("/v1/models", headers={"Authorization": f"Bearer {token}"})
        return [m["id"] for m in resp.json()["data"]]


def test_environment_settings_apply_and_options_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDIGO_SIM_MODELS", "env-model")
    with start_simulator_process() as sim:
        assert _model_ids(sim.url) == ["env-model"]
    with start_simulator_process(models=["opt-a", "opt-b"]) as sim:
        assert _model_ids(sim.url) == ["opt-a", "opt-b"]
    monkeypatch.setenv("INDIGO_SIM_ERROR_RATE", "x")
    res = subprocess.run(MODULE, capture_output=True, text=True, timeout=20)
    assert res.returncode == 2
    assert res.stderr.strip() == "error: INDIGO_SIM_ERROR_RATE='x' is not a valid float"


def test_process_options_are_validated_in_the_caller() -> None:
    with pytest.raises(ConfigError, match="unknown simulator option"):
        start_simulator_process(ttft=5)
    with pytest.raises(ConfigError, match="slots must be at least 1"):
        start_simulator_process(slots=0)


def test_stop_is_idempotent_and_the_context_manager_stops() -> None:
    with start_simulator_process() as sim:
        pid = sim.pid
        assert sim.running()
    assert not sim.running()
    sim.stop()  # again: no error
    assert not _alive(pid)


def test_the_server_exits_when_its_parent_dies() -> None:
    script = ("import os, sys\n"
              "from indigo_loadtest.simulator.process import start_simulator_process\n"
              "sim = start_simulator_process()\n"
              "print(sim.pid, flush=True)\n"
              "os._exit(0)\n")  # no cleanup: as if the parent crashed
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=30)
    pid = int(res.stdout.strip())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


def test_no_overrides_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`INDIGO_SIM_NO_OVERRIDES=1` disables the X-Sim-* headers like `serve --no-overrides`;
    a value that is not a boolean is a one-line error."""
    monkeypatch.setenv("INDIGO_SIM_NO_OVERRIDES", "1")
    with start_simulator_process(api_key="k") as sim, \
            httpx.Client(base_url=sim.url, trust_env=False, timeout=10) as client:
        resp = client.post("/v1/chat/completions", headers={
            "Authorization": "Bearer k", "X-Sim-Fault": "error", "X-Sim-Reply-Tokens": "0"},
            json={"messages": [{"role": "user", "content": "hi"}]})
        assert resp.status_code == 200
    monkeypatch.setenv("INDIGO_SIM_NO_OVERRIDES", "maybe")
    res = subprocess.run(MODULE, capture_output=True, text=True, timeout=20)
    assert res.returncode == 2
    assert res.stderr.strip() == "error: INDIGO_SIM_NO_OVERRIDES='maybe' is not a valid bool"
