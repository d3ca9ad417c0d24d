"""Windows and macOS fallbacks (docs/platforms.md), run for real on Linux.

Each test runs the CLI in a process tree (the run, its `--workers`, the embedded
simulator) from which the POSIX-only attributes that Windows lacks were removed before
the package was imported: a `sitecustomize` on PYTHONPATH deletes them in every process
(spawned workers too). The code then takes the branch it takes on Windows, against real
servers, with real signals. A static check keeps new POSIX-only calls out of `src/`
except where a guard stands (ALLOWED)."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import REPO, LocalServer, assert_stopped, clean_env, cli_argv, write_scenario
from test_interrupt import LOOPING, wait_for_requests
from test_signals import BUSY, SPIN, STOP_BOUND, export_of

from indigo_loadtest.scenario.errors import ExitCode

SHIM = '''"""Test shim: removes what Windows lacks (INDIGO_TEST_WITHOUT), in every process."""
import asyncio.unix_events, os, signal

def _windows_add_signal_handler(self, sig, callback, *args):
    raise NotImplementedError  # as asyncio's Windows loops do

for spec in filter(None, os.environ.get("INDIGO_TEST_WITHOUT", "").split(",")):
    if spec == "loop.add_signal_handler":
        asyncio.unix_events._UnixSelectorEventLoop.add_signal_handler = (
            _windows_add_signal_handler)
    else:
        module, _, name = spec.partition(".")
        delattr({"os": os, "signal": signal}[module], name)
'''
# What the package would use and Windows does not have (os.sched_getaffinity: macOS
# neither). SIGKILL is removed only where the standard library's own kill() is not needed.
WINDOWS_LACKS = "signal.SIGUSR1,signal.SIGUSR2,signal.SIGHUP,os.sched_getaffinity,os.setsid"

# Reports, from every process, that the attributes are gone, then calls the simulator.
PROBE = '''"""Records what each process lacks."""
import os, signal
from pathlib import Path
from indigo_loadtest import env

options = {"vus": 2, "iterations": 6}

async def default(vu):
    lacks = [n for n, m in (("SIGUSR1", signal), ("setsid", os), ("sched_getaffinity", os))
             if not hasattr(m, n)]
    (Path(env["MARKS"]) / f"{os.getpid()}-{len(lacks)}").touch()
    res = await vu.http.post(env["BASE"] + "/v1/chat/completions", json={
        "model": env["MODEL"], "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": "Bearer " + env["API_KEY"]})
    assert res.status == 200, res.status
'''


def without(tmp_path: Path, missing: str = WINDOWS_LACKS, **extra: str) -> dict[str, str]:
    """An environment whose processes lack `missing` ("module.name,...")."""
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir(exist_ok=True)
    (shim_dir / "sitecustomize.py").write_text(SHIM)
    return clean_env(PYTHONPATH=str(shim_dir), INDIGO_TEST_WITHOUT=missing,
                     INDIGO_EVENT_LOOP="asyncio", **extra)


def test_the_shim_removes_the_attributes(tmp_path: Path) -> None:
    code = "import os, signal; print(hasattr(signal, 'SIGUSR1'), hasattr(os, 'setsid'))"
    out = subprocess.run([os.sys.executable, "-c", code], env=without(tmp_path),
                         capture_output=True, text=True, timeout=30).stdout
    assert out.split() == ["False", "False"]


def test_workers_and_embedded_simulator_run_without_posix_extras(workdir: Path) -> None:
    """Default worker count from os.cpu_count, spawned workers, the simulator child
    without a session of its own, its ready line read without select()."""
    marks = workdir / "marks"
    marks.mkdir()
    write_scenario(workdir, "probe", PROBE)
    env = without(workdir, MARKS=str(marks), API_KEY="k-platform")
    proc = subprocess.run(cli_argv("run", "probe", "--no-color"), cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "workers: 2" in proc.stdout and "event loop: asyncio" in proc.stdout
    seen = {p.name.split("-")[0]: p.name.split("-")[1] for p in marks.iterdir()}
    assert len(seen) == 2 and set(seen.values()) == {"3"}  # two workers, each lacking all 3
    assert "http_reqs" in proc.stdout and "6 " in proc.stdout.split("http_reqs")[1][:60]


ONE_REQUEST = '''"""One request."""
from indigo_loadtest import env

options = {"vus": 1, "iterations": 1}

async def default(vu):
    await vu.http.get(env["BASE"] + "/one")
'''


@pytest.mark.parametrize(("choice", "shown"), [("", "uvloop"), ("asyncio", "asyncio")])
def test_the_run_header_names_the_event_loop(workdir: Path, local_server: LocalServer,
                                             choice: str, shown: str) -> None:
    write_scenario(workdir, "one", ONE_REQUEST)
    env = clean_env(BASE=local_server.url)
    env.pop("INDIGO_EVENT_LOOP", None)
    if choice:
        env["INDIGO_EVENT_LOOP"] = choice
    res = subprocess.run(cli_argv("run", "one", "--no-color"), cwd=workdir, env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == ExitCode.OK, res.stderr
    assert f"event loop: {shown}\n" in res.stdout


def test_second_sigint_breaks_cpu_bound_code_without_the_break_signal(
    workdir: Path, local_server: LocalServer
) -> None:
    """The Ctrl-C handler breaks the blocked iteration itself (no SIGUSR1 needed). One
    VU: with two, the second may start spinning once the first is broken, and without
    the watchdog that takes another Ctrl-C (docs/platforms.md)."""
    one_vu = BUSY.replace('"vus": {{2}}', '"vus": 1').replace('{{"vus": 2,', '{{"vus": 1,')
    assert '"vus": 1' in one_vu.format(tag="x", spin=SPIN)
    write_scenario(workdir, "busy", one_vu.format(tag="nobreak1", spin=SPIN))
    proc = subprocess.Popen(cli_argv("run", "busy", "--workers", "1", "--quiet"),
                            cwd=workdir, env=without(workdir, BASE=local_server.url),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_requests(local_server, "/nobreak1/", 1)
    time.sleep(0.7)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.7)
    assert proc.poll() is None  # a graceful stop waits for the iteration (it never ends)
    proc.send_signal(signal.SIGINT)
    assert_stopped(proc, STOP_BOUND, ExitCode.EXTERNAL_ABORT)
    assert export_of(workdir, "busy")["metrics"]["http_reqs"]["count"] >= 1


def test_workers_in_cpu_bound_code_end_on_the_third_signal_without_the_break_signal(
    workdir: Path, local_server: LocalServer
) -> None:
    """Without a spare signal a worker's hard stop cannot break code that never yields
    (docs/platforms.md): the third signal ends the run, which still writes its summary."""
    write_scenario(workdir, "busyw", BUSY.format(tag="nobreakw", spin=SPIN))
    proc = subprocess.Popen(cli_argv("run", "busyw", "--workers", "2", "--quiet"),
                            cwd=workdir, env=without(workdir, BASE=local_server.url),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_requests(local_server, "/nobreakw/", 2)
    time.sleep(0.7)
    for _ in range(2):
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)
    assert proc.poll() is None  # the hard stop did not reach the spinning workers
    proc.send_signal(signal.SIGTERM)
    assert_stopped(proc, STOP_BOUND + 5, ExitCode.EXTERNAL_ABORT)  # + the workers' 5 s grace


def test_ctrl_c_reaches_run_all_children_without_sessions(
    workdir: Path, local_server: LocalServer
) -> None:
    """Without sessions the child shares the terminal's Ctrl-C: it is not forwarded a
    second time (which would be a hard stop), and no further scenario starts."""
    write_scenario(workdir, "a_loop", LOOPING.format(graceful="30s", tag="nos-a", pause=0.05))
    write_scenario(workdir, "b_loop", LOOPING.format(graceful="30s", tag="nos-b", pause=0.05))
    proc = subprocess.Popen(
        cli_argv("run", "--all", "--pause", "0", "--quiet", "--no-summary"), cwd=workdir,
        env=without(workdir, BASE=local_server.url), text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    wait_for_requests(local_server, "/nos-a/", 2)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
    out, err = proc.communicate(timeout=40)
    assert proc.returncode == ExitCode.EXTERNAL_ABORT, err
    assert "stopping now" not in err  # one Ctrl-C is one graceful stop, not two
    assert "0/2 scenarios passed, 1 not run" in out
    assert local_server.paths("/nos-b/") == []


def test_simulator_serve_stops_on_ctrl_c_without_loop_signal_handlers(tmp_path: Path) -> None:
    """asyncio's Windows loops have no add_signal_handler: Ctrl-C ends `serve` cleanly."""
    proc = subprocess.Popen(
        cli_argv("serve", "--port", "0"), cwd=tmp_path, text=True,
        env=without(tmp_path, "loop.add_signal_handler"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert "listening on http://127.0.0.1:" in proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_native_monitoring_says_it_needs_posix_signals(tmp_path: Path) -> None:
    res = subprocess.run(cli_argv("monitoring", "up", "--native", "--data-dir",
                                  str(tmp_path / "prom")),
                         cwd=tmp_path, env=without(tmp_path, "signal.SIGKILL"),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode != 0
    assert res.stderr.startswith("error: `--native` needs POSIX process signals")
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "prom").exists()


# --- no unguarded POSIX-only call in src/ ------------------------------------------------
POSIX_ONLY = {
    "signal": {"SIGUSR1", "SIGUSR2", "SIGKILL", "SIGHUP", "SIGQUIT", "SIGALRM", "SIGCHLD",
               "SIGPIPE", "SIGSTOP", "SIGCONT", "SIGWINCH", "pthread_kill", "setitimer",
               "alarm", "pause", "sigwait", "siginterrupt"},
    "os": {"sched_getaffinity", "sched_setaffinity", "setsid", "killpg", "getpgid", "setpgrp",
           "fork", "getuid", "geteuid", "getgid", "WNOHANG", "pread", "pwrite", "sysconf",
           "getloadavg", "nice", "statvfs", "mkfifo", "getpgrp", "chown"},
}
POSIX_MODULES = {"resource", "fcntl", "pwd", "grp", "termios", "tty", "pty", "posix"}
# (file under src/indigo_loadtest, "module.name"): the guard that stands there.
ALLOWED = {
    ("engine/workers.py", "os.sched_getaffinity"): "except AttributeError: os.cpu_count()",
    ("engine/health.py", "os.pread"): "only once /proc/thread-self/schedstat opened",
    ("monitoring/stack.py", "signal.SIGKILL"): "_require_process_control()",
    ("monitoring/stack.py", "os.WNOHANG"): "_require_process_control()",
}


def posix_only_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.attr in POSIX_ONLY.get(node.value.id, ())):
            found.append(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""])
            found += [f"import {n}" for n in names if n.split(".")[0] in POSIX_MODULES]
    return found


def test_posix_only_calls_are_guarded() -> None:
    src = REPO / "src" / "indigo_loadtest"
    unguarded = [f"{path.relative_to(src)}: {use}"
                 for path in sorted(src.rglob("*.py")) if path.name != "platform_support.py"
                 for use in posix_only_uses(path)
                 if (str(path.relative_to(src)), use) not in ALLOWED]
    assert unguarded == [], "use indigo_loadtest.platform_support (docs/platforms.md)"


@pytest.mark.parametrize("use", ["signal.SIGUSR1", "os.setsid", "import fcntl"])
def test_the_static_check_finds_posix_only_calls(tmp_path: Path, use: str) -> None:
    line = f"{use}\n" if use.startswith("import") else f"import os, signal\n{use}\n"
    (tmp_path / "m.py").write_text(line)
    assert posix_only_uses(tmp_path / "m.py") == [use]
