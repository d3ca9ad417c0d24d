"""What differs between Linux, macOS and Windows, in one place (docs/platforms.md).

Each helper asks whether the feature exists (`hasattr`), never which OS this is, so its
fallback branch also runs on Linux when a test removes the attribute before the package
is imported (tests/cli/test_platform_fallbacks.py). Where a feature is missing, what
degrades is stated in docs/platforms.md; nothing here raises for a missing attribute.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any


def break_signal() -> int | None:
    """The signal a watchdog thread raises in the main thread to break scenario code that
    never yields the event loop (`engine.unblock`): SIGUSR1, which no user sends. None
    where there is none to spare (Windows): then only a Ctrl-C itself breaks such code."""
    return getattr(signal, "SIGUSR1", None)


def has_sessions() -> bool:
    """A child can get a session of its own (POSIX `setsid`), away from the terminal's
    Ctrl-C. Not on Windows, where a child shares the console's Ctrl-C."""
    return hasattr(os, "setsid")


def detached() -> dict[str, Any]:
    """`subprocess.Popen` arguments that keep a terminal's Ctrl-C from reaching the child:
    its own session (POSIX) or its own process group (Windows, where that disables
    Ctrl-C in the child; it is stopped with `terminate()`)."""
    if has_sessions():
        return {"start_new_session": True}
    return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}


def is_kill_signal(signum: int) -> bool:
    """SIGKILL, which the out-of-memory killer sends (no such signal on Windows)."""
    return signum == getattr(signal, "SIGKILL", None)


def can_manage_processes() -> bool:
    """Another process can be probed (`kill(pid, 0)`), reaped without blocking and killed
    by pid: POSIX. On Windows `os.kill(pid, 0)` would terminate it instead."""
    return hasattr(signal, "SIGKILL") and hasattr(os, "WNOHANG")


def raise_fd_limit() -> int:
    """The soft descriptor limit raised to the hard one (as nginx's worker_rlimit_nofile
    does); returns the limit in force (a large number where there is none: Windows)."""
    try:
        import resource
    except ImportError:
        return 1 << 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft
