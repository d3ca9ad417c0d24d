"""What a k6 user reaches for: K6_* environment variables, `--stage`, `--log-output`.

k6's precedence holds: a flag wins over the environment, which wins over the script's
options. Every variable also has an `INDIGO_` twin (`INDIGO_VUS` for `K6_VUS`), which
wins over the `K6_` one when both are set.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .scenario.errors import ExitCode, ScenarioError

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


def _whole(name: str, text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ScenarioError(f"{name}={text!r}: expected a whole number of at least 1",
                            ExitCode.USAGE)
    return value


def _flag(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise ScenarioError(f"{name}={text!r}: expected true or false", ExitCode.USAGE)


def _text(name: str, text: str) -> str:
    return text.strip()


def _list(name: str, text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


# RunSettings field → (variable without prefix, parser). A field is filled from the
# environment only when no flag set it (None, False or an empty list).
ENV_SETTINGS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "vus": ("VUS", _whole),
    "duration": ("DURATION", _text),
    "iterations": ("ITERATIONS", _whole),
    "stages": ("STAGES", _list),
    "outs": ("OUT", _list),
    "summary_export": ("SUMMARY_EXPORT", _text),
    "summary_trend_stats": ("SUMMARY_TREND_STATS", _text),
    "summary_time_unit": ("SUMMARY_TIME_UNIT", _text),
    "summary_mode": ("SUMMARY_MODE", _text),
    "no_thresholds": ("NO_THRESHOLDS", _flag),
    "throw": ("THROW", _flag),
    "http_debug": ("HTTP_DEBUG", _text),
    "log_output": ("LOG_OUTPUT", _text),
}
PREFIXES = ("INDIGO_", "K6_")  # the first set wins


def env_value(variable: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(full name, value) of INDIGO_<variable>, else K6_<variable>, if set."""
    for prefix in PREFIXES:
        name = prefix + variable
        if name in environ:
            return name, environ[name]
    return None


def apply_environment(settings: Any, environ: Mapping[str, str] | None = None) -> list[str]:
    """Fill the run settings that no flag gave from K6_*/INDIGO_* variables; returns
    the names of the variables used."""
    environ = os.environ if environ is None else environ
    used = []
    for attr, (variable, parse) in ENV_SETTINGS.items():
        if getattr(settings, attr) not in (None, False, []):
            continue  # the flag wins
        found = env_value(variable, environ)
        if found is None:
            continue
        value = parse(*found)
        if value not in ("", []):
            setattr(settings, attr, value)
            used.append(found[0])
    return used


@contextlib.contextmanager
def naming_sources(variables: list[str]) -> Iterator[None]:
    """A mistake in a value that may have come from a variable says which were set: the
    flag it names was not on the command line."""
    try:
        yield
    except ScenarioError as exc:
        if variables:
            exc.message += f" (in the environment: {', '.join(variables)})"
        raise


def parse_stage(text: str) -> dict[str, Any]:
    """`--stage 30s:10` → {"duration": "30s", "target": 10} (k6's form)."""
    duration, sep, target = text.partition(":")
    try:
        if not sep or not duration.strip():
            raise ValueError
        value = float(target)
        if value < 0:
            raise ValueError
    except ValueError:
        raise ScenarioError(f"--stage {text!r}: expected DURATION:TARGET, e.g. 30s:10",
                            ExitCode.USAGE) from None
    return {"duration": duration.strip(), "target": int(value) if value.is_integer() else value}


HTTP_DEBUG_MODES = ("headers", "full")


def http_debug_mode(value: str | None) -> str | None:
    """`--http-debug` (headers) or `--http-debug=full` (bodies too); None: off."""
    if value is None:
        return None
    mode = value.strip().lower()
    if mode in ("", "true", "1", "headers"):
        return "headers"
    if mode == "full":
        return "full"
    if mode in ("false", "0"):
        return None
    raise ScenarioError(f"--http-debug={value!r}: expected nothing or 'full'", ExitCode.USAGE)


def log_output_target(value: str | None) -> str | None:
    """`--log-output`: "stderr" (default), "stdout", "none", "file=PATH" or a PATH.
    Returns None for stderr, else "stdout", "none" or the file's path."""
    if value is None:
        return None
    text = value.strip()
    if text in ("", "stderr"):
        return None
    if text in ("stdout", "none"):
        return text
    path = text.removeprefix("file=").strip()
    if not path:
        raise ScenarioError("--log-output file=: give a file path", ExitCode.USAGE)
    return path


TIME_UNITS = ("s", "ms", "us")


def check_time_unit(value: str | None) -> str | None:
    if value is None or value in TIME_UNITS:
        return value
    raise ScenarioError(f"--summary-time-unit {value!r}: expected one of "
                        f"{', '.join(TIME_UNITS)}", ExitCode.USAGE)


SUMMARY_MODES = ("compact", "full")


def check_summary_mode(value: str | None) -> str | None:
    if value is None or value in SUMMARY_MODES:
        return value
    raise ScenarioError(f"--summary-mode {value!r}: expected one of "
                        f"{', '.join(SUMMARY_MODES)}", ExitCode.USAGE)


def check_settings(settings: Any) -> None:
    """The k6 flags' values (from the command line or the environment), before anything
    starts: one `error:` line and exit 2 for a mistake."""
    http_debug_mode(settings.http_debug)
    check_time_unit(settings.summary_time_unit)
    check_summary_mode(settings.summary_mode)
    target = log_output_target(settings.log_output)
    if target not in (None, "stdout", "none"):
        from pathlib import Path

        from .outputs.base import unwritable_reason

        reason = unwritable_reason(Path(target))
        if reason is not None:
            raise ScenarioError(f"--log-output: cannot write {target}: {reason}",
                                ExitCode.USAGE)


def client_flags(settings: Any, env_debug: bool) -> dict[str, Any]:
    """ClientConfig settings from --http-debug, --log-output and --throw. DEBUG=true is
    `--http-debug=full`, as it always printed the bodies."""
    mode = http_debug_mode(settings.http_debug)
    out: dict[str, Any] = {"throw": bool(settings.throw)}
    if mode is not None:
        out["debug"] = True
        out["debug_bodies"] = mode == "full"
    elif env_debug:
        out["debug_bodies"] = True
    out["debug_output"] = log_output_target(settings.log_output) or ""
    return out


def debug_header(settings: Any) -> str:
    """The header's `debug:` row: what is printed, and where."""
    mode = http_debug_mode(settings.http_debug) or "full"  # DEBUG=true: bodies too
    what = "every request and response" + (" head" if mode == "headers" else "")
    target = log_output_target(settings.log_output)
    where = {None: "stderr", "stdout": "stdout", "none": "nowhere (--log-output none)"}.get(
        target, target)
    return f"{what} is printed to {where} (secrets masked)"
