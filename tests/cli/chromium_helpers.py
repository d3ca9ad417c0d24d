"""Pages rendered in headless Chromium (Debian's `chromium`): the DOM after the scripts
ran, with no network, no console message, and the points each chart holds.

One browser serves the whole session (the fixture `chromium`, re-exported by
tests/cli/conftest.py): a start costs about a second and a half on a busy machine, a page
a fraction of that. It is driven over its DevTools pipe (fd 3 in, fd 4 out, JSON messages
ending in NUL), each page in a browser context of its own (no storage shared between
pages), as `--virtual-time-budget` did: after the load event, 4 s of the page's timers
run on virtual time (paused while a request is pending), then the DOM and a screenshot."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Any network request is refused (and no name resolves): loopback only.
NO_NETWORK = ("--proxy-server=127.0.0.1:9",
              "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
VIRTUAL_MS = 4000
WINDOW = {"width": 1280, "height": 2400, "deviceScaleFactor": 1, "mobile": False}
# What the page says or suffers: console calls, uncaught exceptions, browser log entries
# (a refused request among them). Any of them fails the render.
COMPLAINTS = ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")


def _high_fd(fd: int) -> int:
    """`fd` moved to 10 or above: its move onto fd 3 or 4 in the child overwrites no
    other pipe end."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


def _favicon(complaint: dict[str, Any]) -> bool:
    """The browser's own request for /favicon.ico (not the page's), which a served page
    such as the live dashboard answers with 404."""
    return complaint.get("entry", {}).get("url", "").endswith("/favicon.ico")


class Browser:
    """A headless Chromium on its DevTools pipe; `render` one page at a time."""

    def __init__(self, profile: Path) -> None:
        commands, self._commands = (_high_fd(fd) for fd in os.pipe())  # read end: its fd 3
        self._answers, answers = (_high_fd(fd) for fd in os.pipe())  # write end: its fd 4
        self.log = profile / "chromium.log"
        # bash puts the pipe ends on fds 3 and 4 (preexec_fn is unsafe with threads; dash
        # takes no fd above 9).
        argv = ["bash", "-c", f'exec "$@" 3<&{commands} 4>&{answers} {commands}<&- '
                f'{answers}>&-', "chromium", CHROMIUM, "--headless", "--no-sandbox",
                "--disable-gpu", "--hide-scrollbars", "--remote-debugging-pipe",
                f"--user-data-dir={profile}", *NO_NETWORK, "about:blank"]
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True,
                                         pass_fds=(commands, answers))
        os.close(commands)
        os.close(answers)
        self._buffer, self._next_id, self._events = b"", 0, []
        self.send("Browser.getVersion")  # answers once the browser is up

    def send(self, method: str, session: str | None = None, timeout: float = 30,
             **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._receive(deadline, method)
            if answer.get("id") == self._next_id:
                assert "error" not in answer, (method, answer["error"])
                return answer["result"]
            self._events.append(answer)

    def wait_for(self, session: str, method: str, timeout: float = 30,
                 **match: Any) -> dict[str, Any]:
        """The first event `method` of the page `session` whose params hold `match`."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self._events[seen:]:
                if event.get("sessionId") == session and event.get("method") == method \
                        and match.items() <= event["params"].items():
                    return event["params"]
            seen = len(self._events)
            self._events.append(self._receive(deadline, method))

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._answers], [], [], left)[0]:
                raise AssertionError(f"chromium: no answer to {waiting_for} (log {self.log})")
            chunk = os.read(self._answers, 1 << 20)
            assert chunk, f"chromium exited ({self.proc.poll()}); log {self.log}"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def render(self, uri: str, shot: Path) -> str:
        """The DOM after the page's scripts ran; fails on any console message, uncaught
        exception or log entry. The screenshot is kept as an artifact at `shot`."""
        self._events.clear()
        context = self.send("Target.createBrowserContext")["browserContextId"]
        target = self.send("Target.createTarget", url="about:blank",
                           browserContextId=context)["targetId"]
        try:
            page = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            return self._load(page, uri, shot)
        finally:
            self.send("Target.closeTarget", targetId=target)
            self.send("Target.disposeBrowserContext", browserContextId=context)

    def _load(self, page: str, uri: str, shot: Path) -> str:
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable", page)
        self.send("Page.setLifecycleEventsEnabled", page, enabled=True)
        self.send("Emulation.setDeviceMetricsOverride", page, **WINDOW)
        went = self.send("Page.navigate", page, url=uri)
        assert "errorText" not in went, went
        self.wait_for(page, "Page.lifecycleEvent", name="load", loaderId=went["loaderId"])
        self.send("Emulation.setVirtualTimePolicy", page, policy="pauseIfNetworkFetchesPending",
                  budget=VIRTUAL_MS)
        self.wait_for(page, "Emulation.virtualTimeBudgetExpired")
        self.send("Emulation.setVirtualTimePolicy", page, policy="advance")  # frames again
        dom = self.send("Runtime.evaluate", page, expression="document.documentElement"
                        ".outerHTML", returnByValue=True)["result"]["value"]
        shot.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", page)["data"]))
        complaints = [e["params"] for e in self._events
                      if e.get("sessionId") == page and e.get("method") in COMPLAINTS
                      and not _favicon(e["params"])]
        assert complaints == [], complaints
        assert shot.stat().st_size > 10_000  # something was painted
        return dom

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
            self.proc.wait(timeout=10)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # its zygote and renderers too
            self.proc.wait()
            os.close(self._commands)
            os.close(self._answers)


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """The session's headless Chromium (the tests that need it skip where none is)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    browser = Browser(tmp_path_factory.mktemp("chromium"))
    try:
        yield browser
    finally:
        browser.close()


def chromium_render(browser: Browser, page: Path | str, shot: Path) -> str:
    """The DOM of `page` (a file or a URL) after its scripts ran, every network request
    refused; fails on any console message."""
    return browser.render(page if isinstance(page, str) else page.as_uri(), shot)


def assert_offline(html: str) -> None:
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|url\(\s*['\"]?https?:", html)


def chart_points(dom: str) -> dict[str, int]:
    body = re.search(r"<body[^>]*>", dom).group()
    assert 'data-ready="1"' in body and "data-errors" not in body, body
    points = {}
    for tag in re.findall(r'<div class="chart"[^>]*>', dom):
        assert 'data-canvas="1"' in tag, tag
        found = re.search(r'data-points="(\d+)"', tag)
        points[re.search(r'id="([^"]+)"', tag).group(1)] = int(found.group(1)) if found else 0
    return points


def chart_marks(dom: str) -> dict[str, list[str]]:
    """The marks (knee, SLO bounds, ...) each chart drew inside its plot (data-marks)."""
    marks = {}
    for tag in re.findall(r'<div class="chart"[^>]*>', dom):
        found = re.search(r'data-marks="([^"]*)"', tag)
        text = found.group(1).replace("&lt;", "<").replace("&amp;", "&") if found else ""
        marks[re.search(r'id="([^"]+)"', tag).group(1)] = text.split(" | ") if text else []
    return marks
