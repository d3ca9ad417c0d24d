"""The peak memory of a real CLI run: the largest resident set of the processes it ran,
read by a wrapper process of its own (RUSAGE_CHILDREN: the run, and what it waited for)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cli_helpers import cli_argv

# Runs the command, optionally under an address-space limit (a regression then fails
# with MemoryError instead of taking the shared machine's memory), and prints its exit
# code and the peak RSS in kB on its last line.
_WRAPPER = """import resource, subprocess, sys
limit = int(sys.argv[1])
def cap():
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
done = subprocess.run(sys.argv[2:], preexec_fn=cap, capture_output=True, text=True)
sys.stderr.write(done.stderr)
sys.stdout.write(done.stdout)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"\\nrc={done.returncode} peak_kb={peak}")
"""


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    peak: int  # bytes


def measured_cli(*args: str, cwd: Path, env: dict[str, str], address_space: int = 0,
                 timeout: float = 120) -> Measured:
    """`indigo-loadtest ARGS` and its peak RSS; the wrapper's group is killed whatever
    happens."""
    argv = [sys.executable, "-c", _WRAPPER, str(address_space), *cli_argv(*args)]
    proc = subprocess.Popen(argv, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    body, _, last = out.rstrip().rpartition("\n")
    rc, peak = (int(field.split("=")[1]) for field in last.split())
    return Measured(rc, body, err, peak * 1024)
