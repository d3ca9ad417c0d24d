"""The container image, built from this checkout with container/build-image.sh and run with
podman and no network at all (`--network=none`): the embedded simulator inside the
container is the target, a mounted scenarios folder is used, the results land in the
mounted folder owned by the invoking user, and SIGINT stops a run gracefully."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_build import BUILD

from indigo_loadtest.scenario.errors import ExitCode

WORKDIR = "/loadtest"
ROOTFUL = os.getuid() == 0
# The image is built in the background from the session's start (image_build.py): the
# first test waits for what is left of it (on a new machine the Debian base takes
# minutes); each test alone stays well under 30 s.
pytestmark = pytest.mark.timeout(900)
# The built-in's functional flow without the pauses between its steps.
FLOW_ONLY = {"SINGLE_RUN": "true", "THINK_TIME_S": "0"}

MINE = '''"""Mine: the models list of the target."""
from indigo_loadtest import check, env


async def default(vu):
    res = await vu.http.get(f"{env['BASE']}/v1/models")
    check(res, {"status is 200": lambda r: r.status == 200})
'''


@pytest.fixture(scope="session")
def image() -> str:
    """The image tag, built once per session (image_build.py)."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (./run-tests.sh installs it as root)")
    return BUILD.wait()


def podman_run(image: str, *args: str, opts: tuple[str, ...] = (), timeout: float = 60,
               **env: str) -> subprocess.CompletedProcess[str]:
    env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    return subprocess.run(["podman", "run", "--rm", "--network=none", *opts, *env_args,
                           image, *args], capture_output=True, text=True, timeout=timeout)


def results_folder(tmp_path: Path, uid: int) -> Path:
    """A results folder belonging to `uid`, as a user's own folder does (unprivileged, one
    that the container's uid can write)."""
    folder = tmp_path / "results"
    folder.mkdir()
    if ROOTFUL:
        os.chown(folder, uid, uid)
    elif uid != os.getuid():
        folder.chmod(0o777)
    return folder


def as_user(uid: int) -> tuple[str, ...]:
    """Run as `uid`; rootless podman maps the invoking user in with keep-id."""
    return ("--user", f"{uid}:{uid}", *(() if ROOTFUL else ("--userns=keep-id",)))


def mount(host: Path, inside: str, mode: str = "rw") -> tuple[str, str]:
    return ("-v", f"{host}:{WORKDIR}/{inside}:{mode}")


def export_in(folder: Path, name: str) -> dict:
    (export,) = folder.glob(f"{name}_*[0-9].json")
    return json.loads(export.read_text())


def test_image_config_is_the_documented_one(image: str) -> None:
    inspected = subprocess.run(["podman", "image", "inspect", image], capture_output=True,
                               text=True, timeout=30, check=True)
    config = json.loads(inspected.stdout)[0]["Config"]
    assert config["Entrypoint"] == ["indigo-loadtest"]
    assert config["Cmd"] == ["run", "--all"]
    assert config["WorkingDir"] == WORKDIR
    assert config["User"] == "1000:1000"  # never root
    where = podman_run(image, "-c", "import indigo_loadtest, importlib.util as u; "
                       "print(indigo_loadtest.__file__, u.find_spec('pip'))",
                       opts=("--entrypoint", "python3"))
    assert where.returncode == 0, where.stderr
    # Installed from the wheel into site-packages (not a source checkout), and no pip left.
    assert where.stdout.split() == [
        "/opt/indigo-loadtest/lib/python3.11/site-packages/indigo_loadtest/__init__.py", "None"]


def test_single_run_passes_against_the_simulator_inside(image: str, tmp_path: Path) -> None:
    results = results_folder(tmp_path, 1000)  # the image's own user
    run = podman_run(image, "run", "test-completion-standard", "--no-color",
                     opts=mount(results, "results"), **FLOW_ONLY)
    assert run.returncode == 0, run.stderr
    assert "embedded simulator at http://127.0.0.1:" in run.stdout
    # The wheelhouse's wheel is built where Cython and a compiler are (build-image.sh, with
    # the test environment's Python): the image runs the stream path compiled.
    assert re.search(r"streaming: +compiled \(Cython\)", run.stdout), run.stdout
    assert "checks" in run.stdout and "summary export written to results/" in run.stderr
    checks = export_in(results, "test-completion-standard")["metrics"]["checks"]
    assert checks["passes"] > 0 and checks["fails"] == 0


def test_mounted_scenarios_are_used_and_results_belong_to_the_user(
        image: str, tmp_path: Path) -> None:
    # A non-root invoking user: ours when the tests run unprivileged, a stand-in uid else.
    uid = os.getuid() or 4321
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "test-mine.py").write_text(MINE, encoding="utf-8")
    results = results_folder(tmp_path, uid)
    opts = (*as_user(uid), *mount(scenarios, "scenarios", "ro"),
            *mount(results, "results"))
    listed = podman_run(image, "list", opts=opts)
    assert listed.returncode == 0, listed.stderr
    mine_line = "  test-mine                     Mine: the models list of the target."
    assert mine_line in listed.stdout.splitlines()
    assert "  test-completion-standard  " in listed.stdout  # the built-ins as well
    run = podman_run(image, "run", "test-mine", "--no-summary", opts=opts)
    assert run.returncode == 0, run.stderr
    assert export_in(results, "test-mine")["metrics"]["checks"]["passes"] == 1
    written = list(results.iterdir())
    assert len(written) >= 3  # summary export, run record, HTML report
    assert {(p.stat().st_uid, p.stat().st_gid) for p in written} == {(uid, uid)}


class Lines:
    """The lines a process prints, read by a thread; `wait_for` a given one."""

    def __init__(self, stream) -> None:
        self.text: list[str] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            with self.changed:
                self.text.append(line)
                self.changed.notify_all()

    def wait_for(self, needle: str, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: any(needle in s for s in self.text), timeout)


@pytest.fixture
def container_name() -> Iterator[str]:
    name = f"indigo-pytest-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, timeout=60)


def test_sigint_to_the_container_stops_gracefully_with_the_summary_written(
        image: str, tmp_path: Path, container_name: str) -> None:
    results = results_folder(tmp_path, 1000)
    proc = subprocess.Popen(
        ["podman", "run", "--rm", "--network=none", "--name", container_name,
         *mount(results, "results"), "-e", "DURATION_MIN=1", image,
         "run", "test-completion-standard", "--no-color"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = Lines(proc.stdout)
        assert out.wait_for("scenarios:", 30), "the run never started"
        time.sleep(2)  # well into the planned minute of load
        sent = time.monotonic()
        subprocess.run(["podman", "kill", "--signal", "INT", container_name],
                       capture_output=True, timeout=30, check=True)
        err = proc.stderr.read()
        proc.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == ExitCode.EXTERNAL_ABORT, err
    assert took < 20  # not the planned minute
    assert "Traceback" not in err
    assert out.wait_for("TOTAL RESULTS", 5)
    assert "interrupted by SIGINT" in "".join(out.text)
    assert export_in(results, "test-completion-standard")["metrics"]["http_reqs"]["count"] > 0
