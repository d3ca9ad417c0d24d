"""`indigo-loadtest serve`: run the simulator in the foreground until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import sys

from aiohttp import web

from ..scenario.errors import ScenarioError
from . import config as cfg
from .app import CONNECTIONS, build_app
from .connections import connection_bound

READY_PREFIX = "Indigo API simulator listening on "


class _Parser(argparse.ArgumentParser):
    """A usage mistake is one `error:` line and exit code 2, never a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser(prog: str = "indigo-loadtest serve") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Run the embedded Indigo API simulator.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000,
                        help="port to bind, 0 for a free one (default: %(default)s)")
    parser.add_argument("--parent-pid", type=int, default=0, help=argparse.SUPPRESS)
    cfg.add_arguments(parser)
    return parser


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(config: cfg.SimulatorConfig, host: str, port: int, parent_pid: int = 0) -> None:
    """Serve until a stop signal (or, when started by a parent process, until it is gone)."""
    # handler_cancellation: a client that goes away cancels its handler, so its generation
    # stops and its slot is free at once instead of after the whole planned reply.
    # keepalive_timeout: the head (and idle) timeout; see simulator/connections.py.
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           handler_cancellation=True, keepalive_timeout=config.header_timeout_s)
    await runner.setup()
    assert runner.server is not None
    accept = app[CONNECTIONS].factory(runner.server, connection_bound(config.max_connections))
    loop = asyncio.get_running_loop()
    listener: asyncio.Server | None = None
    try:
        # The listening socket's own, not a TCPSite's: each connection passes the bound.
        listener = await loop.create_server(accept, host, port, backlog=4096,
                                            reuse_address=True)
        bound = listener.sockets[0].getsockname()[1]
        print(READY_PREFIX + url_of(host, bound), flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C ends the process
                loop.add_signal_handler(sig, stop.set)
        watchdog = loop.create_task(_watch_parent(parent_pid, stop)) if parent_pid else None
        await stop.wait()
        if watchdog is not None:
            watchdog.cancel()
    finally:
        if listener is not None:
            listener.close()
        await runner.cleanup()


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    """A simulator started by a process must not outlive it."""
    while os.getppid() == parent_pid:
        await asyncio.sleep(0.5)
    stop.set()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = {name: value for name, value in vars(args).items()
                if name not in ("host", "port", "parent_pid")}
    try:
        config = cfg.from_sources(settings)
    except cfg.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"error: --port {args.port}: must be between 0 and 65535", file=sys.stderr)
        return 2
    try:
        from ..event_loop import run as run_loop

        run_loop(serve(config, args.host, args.port, args.parent_pid))
    except OSError as exc:
        print(f"error: cannot serve on {url_of(args.host, args.port)}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        print(f"error: cannot use the database {config.db!r}: {exc}", file=sys.stderr)
        return 1
    except ScenarioError as exc:  # INDIGO_EVENT_LOOP
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        pass
    return 0
