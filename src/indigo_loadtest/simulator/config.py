"""Simulator settings: one dataclass, filled from defaults < environment < flags.

Every field is also a `serve` flag (`ttft_ms` → `--ttft-ms`) and an environment variable
(`INDIGO_SIM_TTFT_MS`). Secrets (`api_key`, `jwt_secret`) are read from the environment
only when started by `start_simulator_process`, so they never show in a process list.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

ENV_PREFIX = "INDIGO_SIM_"
DEFAULT_MODEL = "jan-v1-4b"
DEFAULT_MODELS = (DEFAULT_MODEL, "jan-v1-edge", "lucy-128k")
FAULT_KINDS = ("error", "rate_limit", "slow_start", "drop", "malformed")
SECRET_FIELDS = ("api_key", "jwt_secret")
LATENCY_MODELS = ("fixed", "batching")


class ConfigError(ValueError):
    """A setting the simulator cannot use (reported as one line)."""


@dataclass
class SimulatorConfig:
    """Server, auth, latency-model and fault-injection settings."""

    # server
    db: str = field(default=":memory:", metadata={"help": "SQLite file (default: in memory)"})
    models: tuple[str, ...] = field(default=DEFAULT_MODELS, metadata={
        "help": "comma-separated model ids served (the first is the default)"})
    seed: int = field(default=0, metadata={"help": "seed of the fault-injection draws"})
    header_timeout_s: float = field(default=15.0, metadata={
        "help": "time a connection has to send a request's head, and may stay idle"})
    body_timeout_s: float = field(default=30.0, metadata={
        "help": "time a request's body has to arrive (else 408)"})
    max_connections: int = field(default=0, metadata={
        "help": "open connections at most (0: what the file-descriptor limit allows)"})
    # auth
    api_key: str = field(default="", metadata={"help": "a static key accepted as bearer token"})
    jwt_secret: str = field(default="", metadata={
        "help": "HS256 secret (default: generated and kept in the database)"})
    token_expiry_s: int = field(default=900, metadata={"help": "access token lifetime"})
    refresh_expiry_s: int = field(default=7 * 24 * 3600, metadata={
        "help": "refresh token lifetime"})
    refresh_rotation: bool = field(default=False, metadata={
        "help": "spend each refresh token when used, and revoke its session when a spent "
                "one comes back (OAuth's reuse detection); default: reusable until they "
                "expire, as the real Jan server's"})
    # latency model
    ttft_ms: float = field(default=100.0, metadata={"help": "time to first token"})
    tokens_per_sec: float = field(default=75.0, metadata={
        "help": "decode speed of one stream (0: instant)"})
    reply_tokens: int = field(default=32, metadata={
        "help": "reply length in tokens (max_tokens caps it)"})
    jitter: float = field(default=0.0, metadata={
        "help": "relative random spread of TTFT and token interval, 0..1"})
    slots: int = field(default=64, metadata={"help": "concurrent generations (batch size)"})
    queue_limit: int = field(default=0, metadata={
        "help": "requests waiting for a slot before 429 (0: unbounded)"})
    latency_model: str = field(default="fixed", metadata={
        "help": "fixed (ttft-ms, tokens-per-sec whatever the load) or batching (prefill "
                "and decode steps that slow down as the batch fills)"})
    prefill_ms: float = field(default=20.0, metadata={
        "help": "batching: fixed part of a prompt's prefill"})
    prefill_ms_per_token: float = field(default=0.1, metadata={
        "help": "batching: prefill time per prompt token"})
    step_ms: float = field(default=10.0, metadata={
        "help": "batching: fixed part of one decode step"})
    step_ms_per_seq: float = field(default=0.5, metadata={
        "help": "batching: decode step time per active sequence in the batch"})
    # faults (fractions of generation requests)
    error_rate: float = field(default=0.0, metadata={"help": "fraction answered 500"})
    rate_limit_rate: float = field(default=0.0, metadata={
        "help": "fraction answered 429 with Retry-After"})
    retry_after_s: int = field(default=1, metadata={"help": "Retry-After of injected 429s"})
    slow_start_rate: float = field(default=0.0, metadata={
        "help": "fraction with slow_start_ms added to TTFT"})
    slow_start_ms: float = field(default=2000.0, metadata={"help": "extra TTFT of slow starts"})
    drop_rate: float = field(default=0.0, metadata={
        "help": "fraction whose connection is dropped mid-stream"})
    malformed_rate: float = field(default=0.0, metadata={
        "help": "fraction with one malformed chunk (or body)"})
    # shared deployments
    no_overrides: bool = field(default=False, metadata={
        "help": "ignore the per-request X-Sim-* headers"})

    def __post_init__(self) -> None:
        if isinstance(self.models, str):
            self.models = tuple(m.strip() for m in self.models.split(",") if m.strip())
        else:
            self.models = tuple(self.models)
        if not self.models:
            raise ConfigError("models: at least one model id is needed")
        for name in ("error_rate", "rate_limit_rate", "slow_start_rate", "drop_rate",
                     "malformed_rate", "jitter"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}={value}: must be between 0 and 1")
        total = (self.error_rate + self.rate_limit_rate + self.slow_start_rate
                 + self.drop_rate + self.malformed_rate)
        if total > 1.0:
            raise ConfigError(f"fault rates add up to {total:g}; at most 1")
        if self.latency_model not in LATENCY_MODELS:
            raise ConfigError(f"latency_model={self.latency_model!r}: must be one of "
                              f"{', '.join(LATENCY_MODELS)}")
        for name in ("ttft_ms", "tokens_per_sec", "slow_start_ms", "prefill_ms",
                     "prefill_ms_per_token", "step_ms", "step_ms_per_seq"):
            if not 0 <= getattr(self, name) < math.inf:  # NaN fails too
                raise ConfigError(f"{name} must be a finite number, not negative")
        for name in ("reply_tokens", "slots", "token_expiry_s", "refresh_expiry_s"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        for name in ("header_timeout_s", "body_timeout_s"):
            if not 0 < getattr(self, name) < math.inf:
                raise ConfigError(f"{name} must be a finite number above 0")
        if self.queue_limit < 0 or self.retry_after_s < 0 or self.max_connections < 0:
            raise ConfigError("queue_limit, retry_after_s and max_connections must not be "
                              "negative")

    @property
    def default_model(self) -> str:
        return self.models[0]


def _converter(name: str) -> Any:
    kind = {f.name: f.type for f in fields(SimulatorConfig)}[name]
    if kind == "int":
        return int
    if kind == "float":
        return float
    if kind == "bool":
        return _boolean
    return str


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; unset flags fall back to the environment, then the default."""
    for f in fields(SimulatorConfig):
        if f.name in SECRET_FIELDS:
            help_text = f"{f.metadata['help']} (prefer {env_name(f.name)})"
        else:
            help_text = f.metadata["help"]
        help_text = f"{help_text} [env {env_name(f.name)}]"
        if f.type == "bool":  # a switch: absent means "environment, then default"
            parser.add_argument(flag_name(f.name), dest=f.name, action="store_true",
                                default=None, help=help_text)
        else:
            parser.add_argument(flag_name(f.name), dest=f.name, type=_converter(f.name),
                                default=None, help=help_text)


def parse_setting(text: str) -> tuple[str, Any]:
    """`NAME=VALUE` (NAME as a field, `latency_model`, or a flag, `latency-model`) as the
    setting's field name and typed value; secrets are refused (a flag is visible to every
    user of the machine: they go through the environment)."""
    name, sep, raw = text.partition("=")
    name = name.strip().lstrip("-").replace("-", "_")
    known = {f.name for f in fields(SimulatorConfig)}
    if not sep or name not in known:
        raise ConfigError(f"{text!r}: expected SETTING=VALUE with a simulator setting "
                          "(see `indigo-loadtest serve --help`)")
    if name in SECRET_FIELDS:
        raise ConfigError(f"{name}: set {env_name(name)} in the environment instead")
    try:
        return name, _converter(name)(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {_field_type(name)}") from None


def _field_type(name: str) -> str:
    return str({f.name: f.type for f in fields(SimulatorConfig)}[name])


def from_sources(args: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> SimulatorConfig:
    """Defaults < `INDIGO_SIM_*` environment < explicit values (flags or options)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(SimulatorConfig):
        raw = environ.get(env_name(f.name))
        if raw not in (None, ""):
            try:
                values[f.name] = _converter(f.name)(raw)
            except ValueError:
                raise ConfigError(f"{env_name(f.name)}={raw!r} is not a valid "
                                  f"{f.type}") from None
    for key, value in (args or {}).items():
        if value is not None:
            values[key] = value
    try:
        return SimulatorConfig(**values)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def to_argv_and_env(options: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Options of `start_simulator_process` as flags, and secrets as environment."""
    known = {f.name for f in fields(SimulatorConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown simulator option(s): {', '.join(unknown)}")
    from_sources(options, environ={})  # validate in the caller, with a clear message
    argv: list[str] = []
    env: dict[str, str] = {}
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, Sequence) and not isinstance(value, str):
            value = ",".join(str(v) for v in value)
        if name in SECRET_FIELDS:
            env[env_name(name)] = str(value)
        elif isinstance(value, bool):
            argv += [flag_name(name)] if value else []
        else:
            argv += [flag_name(name), str(value)]
    return argv, env
