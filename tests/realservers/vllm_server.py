"""One real vLLM server (the CPU build) for the test session, serving a tiny model built
from scratch; started in the background as soon as collection has selected a `vllm`
test, so its start-up (1-2 min) overlaps the rest of the suite.

The server runs from its own venv (.venv-vllm, made by run-tests.sh's set-up with
bench/real-servers/install-vllm.sh), never the project's: the project does not depend on
torch. It listens on 127.0.0.1 only, in a process group of its own, killed at the
session's end, and by a watchdog in the group if the test process dies first (killed
-9, say): vLLM's engine and worker processes outlive its API server otherwise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from process_reaper import BACKGROUND, _OriginalPopen

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("INDIGO_VLLM_VENV", REPO / ".venv-vllm"))
PYTHON = VENV / "bin" / "python"
MODEL_NAME = "tiny-llama"
START_TIMEOUT_S = 420.0  # a busy 2-core machine; ~105 s on an idle one
# One core at most: the rest of the suite runs beside it.
SERVER_ENV = {
    "VLLM_TARGET_DEVICE": "cpu", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
}
SERVER_ARGS = ("--dtype", "float32", "--enforce-eager", "--max-model-len", "512",
               "--max-num-seqs", "8", "--disable-uvicorn-access-log",
               "--served-model-name", MODEL_NAME)
TOKENIZER_TEXTS = ("README.md", "docs/benchmark.md", "docs/metrics.md", "docs/scenarios.md")


# The group's leader: runs the server, and kills the whole group (itself, the server
# and every process vLLM started) once either the test process or the server is gone.
WATCHDOG = ('parent=$1; shift; "$@" & server=$!; '
            'while kill -0 "$parent" 2>/dev/null && kill -0 "$server" 2>/dev/null; '
            'do sleep 1; done; kill -9 -- -$$')


class VLLMServer:
    """Builds the model, starts the server, waits for /v1/models; `wait()` in the tests."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="indigo-vllm-"))
        self.model = self.workdir / "model"
        self.log = self.workdir / "server.log"
        self.url = ""
        self.problem = ""
        self.started_s = 0.0  # from start() to the first answer of /v1/models
        self.proc: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vllm-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait(self) -> str:
        """The base URL, or an AssertionError saying why there is no server."""
        self._ready.wait(START_TIMEOUT_S + 60)
        if not self.url:
            raise AssertionError(self.problem or f"vLLM did not start in {START_TIMEOUT_S:.0f} s")
        return self.url

    def _run(self) -> None:
        began = time.monotonic()
        try:
            self.problem = self._start()
            self.started_s = time.monotonic() - began
        except Exception as exc:  # reported by every vllm test
            self.problem = f"vLLM server: {type(exc).__name__}: {exc}"
        finally:
            self._ready.set()

    def _start(self) -> str:
        if not PYTHON.exists():
            return (f"vLLM is not installed ({PYTHON} missing): run-tests.sh's set-up installs "
                    "it with bench/real-servers/install-vllm.sh")
        env = {**os.environ, **SERVER_ENV}
        # Untracked as the server: a test running meanwhile would have its reaper kill it.
        build = _OriginalPopen(
            [*BACKGROUND, str(PYTHON), str(Path(__file__).with_name("build_tiny_llama.py")),
             str(self.model),
             *(str(REPO / t) for t in TOKENIZER_TEXTS)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        try:
            _, err = build.communicate(timeout=300)
        finally:
            build.kill()
        if build.returncode:
            return f"building the tiny model failed:\n{err[-2000:]}"
        port = _free_port()
        with self.log.open("wb") as log:
            self.proc = _OriginalPopen(  # not a test's process: the reaper leaves it alone
                [*BACKGROUND, "bash", "-c", WATCHDOG, "watchdog", str(os.getpid()), str(PYTHON),
                 "-m",
                 "vllm.entrypoints.openai.api_server", "--host", "127.0.0.1", "--port",
                 str(port), "--model", str(self.model), *SERVER_ARGS],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and not self._stopping.is_set():
            if self.proc.poll() is not None:
                return f"vLLM exited with {self.proc.returncode}:\n{self._log_tail()}"
            if _answers(url + "/v1/models"):
                self.url = url
                return ""
            time.sleep(1.0)
        return f"vLLM did not answer in {START_TIMEOUT_S:.0f} s:\n{self._log_tail()}"

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        return ""

    def stop(self) -> None:
        self._stopping.set()
        if self.proc is not None:  # the group, even where its leader has already gone
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self._thread.join(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # loopback only
            return resp.status == 200
    except OSError:
        return False
