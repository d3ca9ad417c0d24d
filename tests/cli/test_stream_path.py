"""The stream path (http/sse, http/transport, http/response, llm/stream_metrics, metrics/sinks) runs
compiled where setup.py built it, as Python otherwise or with INDIGO_PURE_PYTHON=1, and
`--version` and the run header say which (the installed wheel: tests/install)."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import clean_env, run_cli, write_scenario

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


HOT = ("indigo_loadtest.http.sse", "indigo_loadtest.http.transport",
       "indigo_loadtest.http.response", "indigo_loadtest.llm.stream_metrics",
       "indigo_loadtest.metrics.sinks")
PROBE = """
import importlib, json
import indigo_loadtest
mods = {n: importlib.import_module(n) for n in indigo_loadtest._compiled.HOT_MODULES}
print(json.dumps({"compiled": indigo_loadtest.compiled(),
                  "files": {n: m.__file__ for n, m in mods.items()}}))
"""
SCENARIO = '"""Dry."""\nasync def default(vu):\n    pass\n'


def probe(**extra: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], env=clean_env(**extra), text=True,
                         capture_output=True, check=True, timeout=60)
    return json.loads(out.stdout)


def built_beside(source: str) -> bool:
    """An extension module for `source` (a .py file) sits beside it."""
    stem = source.removesuffix(".py")
    return any(os.path.exists(stem + suffix)
               for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def header_and_version(workdir: Path, **extra: str) -> tuple[str, str]:
    write_scenario(workdir, "dry", SCENARIO)
    env = clean_env(BASE="http://127.0.0.1:9", **extra)
    run = run_cli("run", "dry", "--dry-run", cwd=workdir, env=env)
    assert run.returncode == 0, run.stderr
    version = run_cli("--version", cwd=workdir, env=env)
    assert version.returncode == 0 and version.stderr == ""
    return run.stdout, version.stdout


def test_pure_python_switch_imports_the_source_files(workdir: Path) -> None:
    seen = probe(INDIGO_PURE_PYTHON="1")
    assert seen["compiled"] is False
    assert sorted(seen["files"]) == sorted(HOT)
    assert all(f.endswith(".py") for f in seen["files"].values()), seen["files"]
    header, version = header_and_version(workdir, INDIGO_PURE_PYTHON="1")
    assert "streaming: Python (INDIGO_PURE_PYTHON=1)\n" in header
    assert version == "indigo-loadtest 0.1.0 (stream path: Python (INDIGO_PURE_PYTHON=1))\n"


def test_the_checkout_runs_what_was_built(workdir: Path) -> None:
    """Each module runs compiled exactly when setup.py built it: a build that failed
    (its extensions are optional) shows as Python, never as compiled. CI's editable
    install builds them, so there the whole stream path must be compiled: the test
    suite's first pass runs it, the second (run-tests.sh) the Python one."""
    seen = probe(INDIGO_PURE_PYTHON="0")
    for name, file in seen["files"].items():
        if file.endswith(".py"):
            assert not built_beside(file), f"{name}: built but not imported"
        else:  # the extension module, built from the source beside it
            folder, leaf = os.path.split(file)
            assert built_beside(os.path.join(folder, leaf.split(".")[0] + ".py")), file
    compiled = all(not f.endswith(".py") for f in seen["files"].values())
    assert seen["compiled"] is compiled
    if os.environ.get("CI"):
        assert compiled, "CI's install did not compile the stream path (setup.py)"
    header, version = header_and_version(workdir, INDIGO_PURE_PYTHON="0")
    shown = "compiled (Cython)" if compiled else "Python (not compiled at install)"
    assert f"streaming: {shown}\n" in header
    assert version == f"indigo-loadtest 0.1.0 (stream path: {shown})\n"


def test_without_cython_the_stream_path_runs_as_python(tmp_path: Path) -> None:
    """Cython is a build dependency only: where it is not installed, the modules' type
    declarations fall back to the package's own stand-in and a stream is read."""
    script = tmp_path / "no_cython.py"
    script.write_text(
        "import sys\n"
        "sys.modules['cython'] = None  # import cython: ImportError\n"
        "import indigo_loadtest\n"
        "from indigo_loadtest.http.sse import SSEParser\n"
        "from indigo_loadtest.http import transport\n"
        "print(indigo_loadtest.compiled(), transport.cython.__name__,\n"
        "      SSEParser().feed(b'data: x\\n\\n', 1.0)[0].data)\n")
    out = subprocess.run([sys.executable, str(script)], env=clean_env(INDIGO_PURE_PYTHON="1"),
                         text=True, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "indigo_loadtest._cython_shim", "x"]
