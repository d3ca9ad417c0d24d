"""Installed like a user installs it: the built wheel in a fresh virtual environment, run
from an empty folder that is not the repository. The built-in scenarios come with it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from quick_build import quick_cflags

REPO = Path(__file__).resolve().parents[2]
BUILTINS = ("test-completion-conversation", "test-completion-standard", "test-responses")
# Each built-in's functional flow, every step and check, without the pauses between steps
# (THINK_TIME_S=0: 2-3 s a run where the 1 s pauses made 6-13 s).
FLOW_ONLY = {"SINGLE_RUN": "true", "THINK_TIME_S": "0"}


# The build and install below take half a minute on a busy machine; the first test's
# time includes them.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh venv with the wheel installed (its dependencies are read
    from this test run's environment, so nothing is downloaded)."""
    base = tmp_path_factory.mktemp("install")
    dist = base / "dist"
    # The sdist, then the wheel built from it (python -m build): the sdist must carry all
    # a compiled build needs.
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist),
                    str(REPO)], check=True, capture_output=True, timeout=300,
                   env={**os.environ, "CFLAGS": quick_cflags()})
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    assert any(n.endswith("builtin_scenarios/test-responses.py") for n in names)
    # What a build from the sdist needs to compile the stream path as this one does.
    assert any(n.endswith("/setup.py") for n in names)
    assert any(n.endswith("http/transport.pxd") for n in names)
    (wheel,) = dist.glob("*.whl")
    (base / "wheel-name").write_text(wheel.name)
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=False)  # this run's pip installs into it (--python)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300)
    # Dependencies: this environment's site-packages as a plain path entry (its .pth files,
    # such as the editable install of the repository, are not processed).
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True)
    Path(site.stdout.strip(), "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir / "bin"


def user_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("BASE", "INDIGO_SCENARIOS_DIR", "PYTHONPATH", "DURATION_MIN")}
    return {**env, **extra}


def test_installed_wheel_lists_and_passes_the_builtins(installed: Path, tmp_path: Path) -> None:
    cli = str(installed / "indigo-loadtest")
    listed = subprocess.run([cli, "list"], cwd=tmp_path, capture_output=True, text=True,
                            env=user_env(), timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "Built-in scenarios:" in listed.stdout
    for name in BUILTINS:
        assert f"  {name}  " in listed.stdout
        run = subprocess.run([cli, "run", name, "-q", "--no-summary"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120,
                             env=user_env(**FLOW_ONLY))
        assert run.returncode == 0, f"{name}: {run.stderr}"
    made = subprocess.run([cli, "new", "mine"], cwd=tmp_path, capture_output=True, text=True,
                          env=user_env(), timeout=60)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "scenarios" / "mine.py").is_file()  # the user's folder, not the package
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "scenarios"]


HOT = ("http/sse", "http/transport", "http/response", "llm/stream_metrics", "metrics/sinks")
PROBE = """
import importlib
import indigo_loadtest
from indigo_loadtest._compiled import HOT_MODULES, is_compiled
print("indigo_loadtest", False, indigo_loadtest.__file__)
for name in HOT_MODULES:
    module = importlib.import_module(name)
    print(name, is_compiled(module), module.__file__)
"""


def loaded_stream_modules(installed: Path, cwd: Path,
                          **extra: str) -> tuple[str, dict[str, tuple[bool, str]]]:
    """The installed package's file, and each module of the stream path as it imports
    it: compiled or not, and its file."""
    out = subprocess.run([str(installed / "python"), "-c", PROBE], cwd=cwd, capture_output=True,
                         text=True, check=True, env=user_env(**extra), timeout=60)
    (_, _, package), *rows = [line.split(" ", 2) for line in out.stdout.splitlines()]
    return package, {name: (flag == "True", file) for name, flag, file in rows}


def test_the_wheel_runs_the_stream_path_compiled(installed: Path, tmp_path: Path) -> None:
    """Built where Cython and a C compiler are (this test's environment, as a user's pip
    install from PyPI), the wheel carries the stream path as extension modules and the
    installed package imports them: a build that fell back to Python (setup.py's
    optional extensions) would pass everything else unnoticed."""
    wheel = (installed.parent.parent / "wheel-name").read_text()
    assert "-cp3" in wheel and "none-any" not in wheel  # a platform wheel, with C in it
    package, loaded = loaded_stream_modules(installed, tmp_path)
    assert str(REPO) not in package  # the installed copy, not the checkout
    assert set(loaded) == {"indigo_loadtest." + m.replace("/", ".") for m in HOT}
    for name, (compiled, file) in loaded.items():
        assert compiled and file.endswith(".so") and str(REPO) not in file, (name, file)
    version = subprocess.run([str(installed / "indigo-loadtest"), "--version"], cwd=tmp_path,
                             capture_output=True, text=True, env=user_env(), timeout=60)
    assert version.returncode == 0
    assert version.stdout.strip() == "indigo-loadtest 0.1.0 (stream path: compiled (Cython))"
    # INDIGO_PURE_PYTHON=1: the same installed package, its stream path from the .py files
    # (which a run of the install without a compiler, below, runs).
    _, pure = loaded_stream_modules(installed, tmp_path, INDIGO_PURE_PYTHON="1")
    for name, (compiled, file) in pure.items():
        assert not compiled and file.endswith(".py"), (name, file)


def test_without_a_c_compiler_the_install_runs_the_stream_path_as_python(
        installed: Path, tmp_path: Path) -> None:
    """The compiled modules are optional: a build from the sdist where no C compiler is
    (CC names none) still makes a wheel, without them, whose package says so and runs."""
    (sdist,) = (installed.parent.parent / "dist").glob("*.tar.gz")
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "--no-build-isolation", "-w", str(wheels), str(sdist)],
                           capture_output=True, text=True, timeout=300,
                           env=user_env(CC=str(tmp_path / "no-such-cc")))
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("*.whl")
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as whl:
        assert not [n for n in whl.namelist() if n.endswith((".so", ".pyd"))]
        whl.extractall(unpacked)
    cli = [str(installed / "python"), "-m", "indigo_loadtest.cli"]
    version = subprocess.run([*cli, "--version"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=60, env=user_env(PYTHONPATH=str(unpacked)))
    assert version.returncode == 0, version.stderr
    assert version.stdout == ("indigo-loadtest 0.1.0 (stream path: Python (not compiled at "
                              "install))\n")
    run = subprocess.run([*cli, "run", "test-completion-standard", "-q", "--no-summary"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env=user_env(PYTHONPATH=str(unpacked), **FLOW_ONLY))
    assert run.returncode == 0, run.stderr
