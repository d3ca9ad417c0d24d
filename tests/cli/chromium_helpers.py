"""Pages rendered in headless Chromium (Debian's `chromium`): the DOM after the scripts
ran, with no network, no console message, and the points each chart holds."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def chromium_render(page: Path | str, shot: Path) -> str:
    """The DOM after the scripts ran, with every network request refused; fails on any
    console message (errors, warnings, logs)."""
    no_network = ["--proxy-server=127.0.0.1:9",  # and no name resolves (loopback only)
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--virtual-time-budget=4000", "--window-size=1280,2400", *no_network]
    uri = page if isinstance(page, str) else page.as_uri()
    dom = subprocess.run([*base, "--enable-logging=stderr", "--v=0", "--dump-dom", uri],
                         capture_output=True, text=True, timeout=60)
    assert dom.returncode == 0, dom.stderr
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    subprocess.run([*base, f"--screenshot={shot}", uri], capture_output=True,
                   timeout=60, check=True)
    assert shot.stat().st_size > 10_000  # kept as an artifact in tmp_path
    return dom.stdout


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
