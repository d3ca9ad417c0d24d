"""`run ... --ray [ADDRESS]`: the run's shards on a Ray cluster (engine/ray_pool.py).

`--ray` alone joins the cluster named by `RAY_ADDRESS`, else starts a local Ray instance
for this run; `--ray ADDRESS` joins that cluster. The shard count is `--workers N` when
given, else the cluster's CPUs (never more than the plan's VUs). setup() and teardown()
run once in this process (the driver), as with `--workers`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..scenario.errors import ExitCode, ScenarioError

RAY_MISSING = "--ray needs Ray, which is not installed: pip install 'indigo-loadtest[ray]'"
# A local instance's shared-memory object store: the actors only exchange registry
# snapshots (tens of kB), so a small store leaves the memory to the generator.
LOCAL_OBJECT_STORE_BYTES = 100_000_000
# Never shipped with the scenario's folder (a scenario kept in a project's root would
# otherwise upload its virtualenv and past results to every node); Ray also skips what
# the folder's .gitignore lists.
WORKING_DIR_EXCLUDES = [".git", ".venv", "venv", "node_modules", "__pycache__", "results",
                        # The configuration file (API_KEY...): its values travel in the
                        # actors' creation arguments; the file would land, as it is, in
                        # every node's session directory.
                        ".env", ".env.*"]
# What a gitignore-style pattern would read as a wildcard or an operator in a file name.
_PATTERN_SPECIAL = re.compile(r"([*?\[\]!#\\])")
# What Ray's core logs while a cluster with token authentication refuses this client.
_AUTH_REFUSED = ("InvalidAuthToken", "Unauthenticated")
AUTH_HINT = ("the cluster uses token authentication and refused this client's token "
             "(missing or wrong): set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH to the cluster's "
             "token (the token is never printed)")
# A terminal's control sequence (colour, cursor): CSI ... final byte.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
# Arguments that only name where Ray runs (else a scenario given right after `--ray`).
_ADDRESS_WORDS = ("auto", "local")


def ray_address(value: str | None) -> str:
    """The address to join: `--ray ADDRESS`, else RAY_ADDRESS, else "local" (a new
    instance for this run)."""
    return value or os.environ.get("RAY_ADDRESS", "").strip() or "local"


def describe_ray(settings: Any, shards: int, *, dry_run: bool = False) -> str:
    """The run header's line: where the actors run (never credentials in the address).
    A dry run does not connect, so the shard count is not known yet."""
    address = ray_address(settings.ray)
    where = "a local Ray instance" if address == "local" else f"Ray at {shown_address(address)}"
    if dry_run:
        return f"actors on {where} (not contacted in a dry run)"
    return f"{shards} actors on {where}"


def shown_address(address: str) -> str:
    """The address as printed: without a `user:password@` part (never credentials in
    output)."""
    scheme, sep, rest = address.rpartition("://")
    return f"{scheme}{sep}{rest.rsplit('@', 1)[-1]}"


def looks_like_address(value: str) -> bool:
    return ":" in value or value in _ADDRESS_WORDS


def check_ray_settings(settings: Any) -> None:
    """Before anything runs: raw-sample outputs are refused, Ray must be importable."""
    if settings.ray is None:
        return
    from .limits import asks_raw_outputs

    if asks_raw_outputs(settings):
        raise ScenarioError("--out json/csv record every raw sample where it is measured, "
                            "on the Ray nodes; they cannot be used with --ray (the summary "
                            "export and Prometheus remote write can)", ExitCode.USAGE)
    plain_relayed_lines()
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ScenarioError(RAY_MISSING, ExitCode.USAGE) from None


def plain_relayed_lines() -> None:
    """Off a terminal, the actors' lines relayed here carry no colour codes into a file.
    Ray's "[repeated Nx across cluster]" note is always coloured, so every line is
    printed as it is (as `--workers` processes do). Read when ray is imported: call first."""
    if not sys.stdout.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def plain_client_lines(settings: Any) -> None:
    """Through Ray Client (`ray://`) the actors' lines come already coloured by the
    cluster's client server, where this process's RAY_COLOR_PREFIX has no say: the codes
    are taken out here, as each line is printed, unless it goes to a terminal and the
    run shows colour (the summary's rule: no --no-color, no NO_COLOR, a terminal)."""
    from ray.util.client.logsclient import LogstreamClient

    from .summary import console_is_tty

    printed = LogstreamClient.stdstream
    if getattr(printed, "plain_off_terminal", False):
        return
    colour = settings.color is not False and console_is_tty()

    def stdstream(self: Any, level: int, msg: str) -> None:
        stream = sys.stderr if level == -2 else sys.stdout  # as Ray's own stdstream
        if not (colour and stream.isatty()):
            msg = _ANSI_ESCAPE.sub("", msg)
        printed(self, level, msg)

    stdstream.plain_off_terminal = True  # type: ignore[attr-defined]
    LogstreamClient.stdstream = stdstream  # type: ignore[method-assign]


def connect(settings: Any, working_dir: str | None = None) -> None:
    """Join the cluster, or start a local instance sized for the run; quietly.
    `working_dir` (the scenario's folder) is shipped to every actor of this job: its
    scenario file, helper modules and data files."""
    import logging

    import ray

    if ray.is_initialized():
        return
    address = ray_address(settings.ray)
    options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": True}
    if working_dir is not None:
        options["runtime_env"] = {"working_dir": working_dir,
                                  "excludes": working_dir_excludes(working_dir,
                                                                   settings.env_file)}
    if address == "local":
        from ..engine.workers import default_workers

        options.update(num_cpus=settings.workers or default_workers(),
                       include_dashboard=False,
                       # The address the instance advertises. Ray 2.60 still binds its
                       # gRPC servers on every interface and its runtime-env agent on
                       # the machine's address (tests/ray/cluster_helpers.py).
                       _node_ip_address="127.0.0.1",
                       object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    check_reachable(address)
    check_token(address)
    if address.startswith("ray://"):
        plain_client_lines(settings)
    with captured_stderr() as captured:
        try:
            ray.init(address=address, **options)
        except Exception as exc:  # unreachable address, version mismatch, refused token
            raise ScenarioError(_join_error(address, exc, captured()),
                                ExitCode.INVALID_CONFIG) from None


def working_dir_excludes(working_dir: str, env_file: str | None) -> list[str]:
    """What is never shipped with the scenario's folder: `WORKING_DIR_EXCLUDES`, and the
    file `--env-file` names when it lies inside the folder (whatever its name), as a
    pattern anchored at the folder (Ray matches paths relative to it)."""
    excludes = list(WORKING_DIR_EXCLUDES)
    if env_file is None:
        return excludes
    named = Path(env_file).expanduser()
    for folder, file in ((Path(os.path.abspath(working_dir)), Path(os.path.abspath(named))),
                         (Path(working_dir).resolve(), named.resolve())):
        with contextlib.suppress(ValueError):
            inside = file.relative_to(folder).as_posix()
            excludes.append("/" + _PATTERN_SPECIAL.sub(r"\\\1", inside))
    return list(dict.fromkeys(excludes))  # the same path both ways: once


def _join_error(address: str, exc: Exception, logged: str) -> str:
    shown = shown_address(address)
    where = "start a local Ray instance" if address == "local" else f"join {shown}"
    if any(word in logged for word in _AUTH_REFUSED):
        return f"--ray: cannot {where}: {AUTH_HINT}"
    first = (str(exc).strip().splitlines() or [""])[0].replace(address, shown)
    return f"--ray: cannot {where}: {type(exc).__name__}: {first}"


def check_token(address: str, timeout: float = 5.0) -> None:
    """A cluster (GCS address) that refuses this client's token, missing or wrong, fails
    in one line at once: Ray itself retries for 20 s first. One call to the GCS, with
    the token Ray would send (Ray's own loader, which follows RAY_AUTH_MODE); anything
    but a refusal (no such API in this Ray, TLS, another error) is left to ray.init."""
    if address.startswith("ray://") or address in _ADDRESS_WORDS:
        return
    try:
        import grpc
        from ray._private.authentication.grpc_authentication_client_interceptor import (
            _get_authentication_metadata_tuple,
        )
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:
        return
    try:
        with grpc.insecure_channel(address) as channel:
            gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(), timeout=timeout,
                metadata=_get_authentication_metadata_tuple())
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            raise ScenarioError(f"--ray: cannot join {shown_address(address)}: {AUTH_HINT}",
                                ExitCode.INVALID_CONFIG) from None
    except Exception:  # an API this Ray does not have (or has changed): ray.init decides
        return


@contextlib.contextmanager
def captured_stderr() -> Iterator[Any]:
    """While Ray connects, its core (C++) logs straight to file descriptor 2: a refused
    token gives a warning a second for 20 s before Ray's own vague error. Those lines
    are held in a temporary file; the caller reads them (the callable yielded) to say
    what went wrong in one line. On success they are passed on to stderr unchanged."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr descriptor (an embedding host): nothing to capture
        yield lambda: ""
        return
    with tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        os.dup2(held.fileno(), 2)
        try:
            yield lambda: _read_back(held)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sys.stderr.write(_read_back(held))  # reached on success only


def _read_back(held: Any) -> str:
    held.flush()
    held.seek(0)
    return held.read().decode("utf-8", "replace")


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A `host:port` (or `ray://host:port`) that nothing answers at fails in one line at
    once: Ray itself would retry for minutes, printing warnings."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep:
        return  # auto, local: Ray finds the cluster itself
    if not host.strip("[]") or not port.isdigit():
        # Ray would log a traceback before its own error (e.g. for ":6379", "host:")
        raise ScenarioError(f"--ray: {shown_address(address)!r} is not an address: "
                            "expected host:port, "
                            "ray://host:port, auto or local", ExitCode.INVALID_CONFIG)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ScenarioError(f"--ray: no Ray cluster answers at {shown_address(address)} ({reason})",
                            ExitCode.INVALID_CONFIG) from None


def ray_shard_count(settings: Any, plan: Any, scenario_path: Any) -> int:
    """Connects; then `--workers N`, else the cluster's CPUs, at most the plan's VUs."""
    import ray

    from .limits import plan_max_vus

    connect(settings, str(scenario_path.parent))
    if settings.workers is not None:
        return int(settings.workers)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(cpus, plan_max_vus(plan)))


def ray_execution(prepared: Any, factory: Any, config: Any, console: Any) -> Any:
    """`WorkersExecution` with its shards as Ray actors (see engine/ray_pool.py)."""
    import ray

    from ..engine.ray_pool import RayCluster, RayPool
    from ..engine.workers import WorkersExecution
    from .outputs import snapshot_interval

    shards = prepared.workers
    cpus = float(ray.cluster_resources().get("CPU", shards))
    cluster = RayCluster(
        working_dir=str(prepared.scenario.path.parent),  # shipped by connect()
        # One CPU per actor when the cluster has them; else they share (never refused).
        cpus_per_actor=min(1.0, int(cpus / shards * 100) / 100) or 0.01,
    )
    return WorkersExecution(
        prepared.options.plan, prepared.module, prepared.registry, factory,
        workers=shards, scenario_path=prepared.scenario.path, client_config=config,
        env=dict(prepared.env), error_stream=console.err,
        snapshot_interval=snapshot_interval(prepared.outputs),
        pool_factory=functools.partial(RayPool, cluster=cluster),
    )
