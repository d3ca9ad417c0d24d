"""Installed like a user installs it: the built wheel in a fresh virtual environment, run
from an empty folder that is not the repository. The built-in scenarios come with it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILTINS = ("test-completion-conversation", "test-completion-standard", "test-responses")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh venv with the wheel installed (its dependencies are read
    from this test run's environment, so nothing is downloaded)."""
    base = tmp_path_factory.mktemp("install")
    dist = base / "dist"
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist),
                    str(REPO)], check=True, capture_output=True, timeout=300)
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    assert any(n.endswith("builtin_scenarios/test-responses.py") for n in names)
    (wheel,) = dist.glob("*.whl")
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=300)
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
    where = subprocess.run([str(installed / "python"), "-c",
                            "import indigo_loadtest; print(indigo_loadtest.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True)
    assert str(REPO) not in where.stdout  # the installed copy, not the checkout
    listed = subprocess.run([cli, "list"], cwd=tmp_path, capture_output=True, text=True,
                            env=user_env(), timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "Built-in scenarios:" in listed.stdout
    for name in BUILTINS:
        assert f"  {name}  " in listed.stdout
        run = subprocess.run([cli, "run", name, "-q", "--no-summary"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120,
                             env=user_env(SINGLE_RUN="true"))
        assert run.returncode == 0, f"{name}: {run.stderr}"
    made = subprocess.run([cli, "new", "mine"], cwd=tmp_path, capture_output=True, text=True,
                          env=user_env(), timeout=60)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "scenarios" / "mine.py").is_file()  # the user's folder, not the package
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "scenarios"]
