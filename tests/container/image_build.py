"""The container image of tests/container/test_image.py: built once per session with
container/build-image.sh, in the background from the end of collection (conftest.py), so
that its minutes on a new machine (the Debian base made with debootstrap, the
wheelhouse, `podman build`) pass while the tests before it run; the fixture `image` waits
for it. Its tag is this session's own (two sessions on one machine do not replace each
other's image) and is removed at the session's end."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from process_reaper import BACKGROUND
from quick_build import quick_cflags

REPO = Path(__file__).resolve().parents[2]
REPOSITORY = "localhost/indigo-loadtest"
TAG = f"{REPOSITORY}:pytest-{os.getpid()}"
TIMEOUT = 800  # the base on a new machine takes minutes: a slow mirror, a busy machine


class ImageBuild:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.gettempdir()) / f"indigo-image-build-{os.getpid()}.log"

    def start(self) -> None:
        """On the local Debian base made with debootstrap, or on INDIGO_TEST_BASE_IMAGE
        when set (e.g. a pulled python:3.11-slim)."""
        if self.proc is not None:
            return
        remove_images_of_ended_sessions()
        base = os.environ.get("INDIGO_TEST_BASE_IMAGE")
        args = ["--base-image", base] if base else ["--debian-base"]
        # The wheelhouse's wheel compiled at -O0 (quick_build.py): the image still runs
        # the stream path compiled, which test_image checks.
        env = {**os.environ, "ENGINE": "podman", "PYTHON": sys.executable,
               "CFLAGS": quick_cflags()}
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [*BACKGROUND, str(REPO / "container" / "build-image.sh"), *args, "--tag", TAG],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def wait(self) -> str:
        """The tag, once built; fails with the build's output if it failed."""
        self.start()
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            output = self.output()
            self.stop()
            took = f"the image build took over {TIMEOUT} s:\n{output}"
            raise AssertionError(took) from None
        assert code == 0, self.output()
        return TAG

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """The build ended (killed with its process group if still running), the image
        and the log removed."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        subprocess.run(["podman", "rmi", "-f", TAG], capture_output=True, timeout=60)
        self.log.unlink(missing_ok=True)


def remove_images_of_ended_sessions() -> None:
    """The images of sessions that were killed before their end (pytest-PID, that PID
    gone): 190 MB each."""
    listed = subprocess.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}",
                             REPOSITORY], capture_output=True, text=True, timeout=60)
    for tag in listed.stdout.split():
        found = re.fullmatch(rf"{REPOSITORY}:pytest-(\d+)", tag)
        if found and not Path(f"/proc/{found.group(1)}").exists():
            subprocess.run(["podman", "rmi", "-f", tag], capture_output=True, timeout=60)


BUILD = ImageBuild()  # the session's one build
