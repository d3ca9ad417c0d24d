"""The run's configuration: `.env` < process environment < `--env K=V`.

`env` (exported as `indigo_loadtest.env`) is one module-level read-only mapping that the
runner fills for the current run, so `from indigo_loadtest import env` at the top of a
scenario sees the run's values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from .errors import ExitCode, ScenarioError

# Known keys and their defaults (BASE has none: unset means "start the embedded simulator").
DEFAULTS: dict[str, str] = {
    "MODEL": "jan-v1-4b",
    "DEBUG": "false",
    "API_KEY": "",
    "LOADTEST_TOKEN": "",
    "DURATION_MIN": "5",
    "NONSTREAM_RPS": "2",
    "STREAM_RPS": "1",
    "SINGLE_RUN": "false",
}
KNOWN_KEYS = ("BASE", *DEFAULTS)

MASK = "[CONFIGURED]"
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|AUTH|COOKIE|CREDENTIAL", re.I)
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


def is_secret(key: str) -> bool:
    """Whether a configuration key holds a secret (shown only as [CONFIGURED])."""
    return bool(_SECRET_NAME.search(key))


def display_value(key: str, value: str | None) -> str:
    """A value as it may be printed: secrets masked, unset shown as such."""
    if value is None or value == "":
        return "(not set)"
    return MASK if is_secret(key) else value


# BASE is missing only when it was unset and the embedded simulator was not started,
# because the scenario's source never names it (scenario/target_use.py).
BASE_NOT_STARTED = ("BASE is not set, and the embedded simulator was not started: the "
                    "scenario does not name BASE in its source (set BASE, or read it as "
                    "env[\"BASE\"])")


class MissingBase(KeyError):
    """env["BASE"] read in a run that started no simulator; shown as its message."""

    def __str__(self) -> str:
        return str(self.args[0])


class Env(Mapping[str, str]):
    """A read-only mapping of configuration strings with typed accessors."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values: dict[str, str] = dict(values or {})

    # Mapping protocol
    def __getitem__(self, key: str) -> str:
        try:
            return self._values[key]
        except KeyError:
            if key == "BASE":
                raise MissingBase(BASE_NOT_STARTED) from None
            raise

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        # Never show secrets, even in a debugger or a log line.
        shown = {k: display_value(k, v) for k, v in self._values.items() if k in KNOWN_KEYS}
        return f"Env({shown}, +{len(self._values) - len(shown)} more)"

    # Typed accessors
    def str(self, key: str, default: str = "") -> str:
        return self._values.get(key, default)

    def bool(self, key: str, default: bool = False) -> bool:
        raw = self._values.get(key)
        if raw is None:
            return default
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ScenarioError(f"{key}={raw!r} is not a boolean (use true/false or 1/0)")

    def float(self, key: str, default: float = 0.0) -> float:
        raw = self._values.get(key)
        if raw is None or raw.strip() == "":
            return default
        try:
            return float(raw)
        except ValueError:
            raise ScenarioError(f"{key}={raw!r} is not a number") from None

    def int(self, key: str, default: int = 0) -> int:
        raw = self._values.get(key)
        if raw is None or raw.strip() == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise ScenarioError(f"{key}={raw!r} is not an integer") from None

    def is_set(self, key: str) -> bool:
        return bool(self._values.get(key))

    def display(self, key: str) -> str:
        return display_value(key, self._values.get(key))

    def _replace(self, values: Mapping[str, str]) -> None:
        """Fill the mapping for a new run (the runner's job; scenarios only read)."""
        self._values = dict(values)


def parse_assignments(pairs: Iterable[str], flag: str) -> dict[str, str]:
    """`K=V` strings from a repeatable flag (`--env`, `--tag`) into a dict."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ScenarioError(f"{flag} {pair!r}: expected KEY=VALUE", ExitCode.USAGE)
        out[key.strip()] = value
    return out


def read_env_file(path: Path) -> dict[str, str]:
    try:
        values = dotenv_values(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read {path}: {exc}", ExitCode.USAGE) from None
    return {k: v for k, v in values.items() if v is not None}


def build_env(
    env_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Env:
    """Defaults < `.env` (cwd, or `env_file`) < process environment < `overrides`."""
    cwd = cwd or Path.cwd()
    if env_file is not None:
        path = cwd / Path(env_file).expanduser()
        if not path.is_file():
            raise ScenarioError(f"--env-file {str(env_file)!r} does not exist", ExitCode.USAGE)
        file_values = read_env_file(path)
    else:
        default_file = cwd / ".env"
        file_values = read_env_file(default_file) if default_file.is_file() else {}
    values: dict[str, str] = dict(DEFAULTS)
    values.update(file_values)
    values.update(os.environ if environ is None else environ)
    values.update(overrides or {})
    return Env(values)


def check_base_url(base: str) -> None:
    """BASE must be an http(s) URL with a host: without a scheme (`localhost:8000`) every
    request of the run would fail before it is sent, so it is rejected before any traffic."""
    problem = None
    try:
        parts = urlsplit(base)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or too big
    except ValueError as exc:
        problem = str(exc)
    else:
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            problem = "no http:// or https:// scheme and host"
    if problem is not None:
        raise ScenarioError(
            f"BASE={_without_userinfo(base)!r} is not a base URL ({problem}): expected the "
            "form http://host:port or https://host[:port], e.g. http://localhost:8000",
            ExitCode.INVALID_CONFIG,
        )


def _without_userinfo(url: str) -> str:
    # "user:password@host" must not be echoed in an error message.
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, sep, _ = head.partition("://")
    return f"{scheme}{sep}{MASK}@{tail}" if sep else f"{MASK}@{tail}"


# The current run's configuration (filled by the runner; defaults until then).
env = Env(DEFAULTS)


def activate(new: Env) -> Env:
    """Make `new` the values seen through the module-level `env`; returns `env`.

    The values of secret-named keys (API_KEY, LOADTEST_TOKEN, *_PASSWORD...) are
    remembered, so they are masked wherever they would be printed or written."""
    from ..http.redact import remember_secrets

    remember_secrets(v for k, v in new.items() if is_secret(k))
    env._replace(new)
    return env
