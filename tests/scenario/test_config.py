"""Configuration: defaults < .env < environment < --env, typed access, secret masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from indigo_loadtest.scenario import config
from indigo_loadtest.scenario.errors import ScenarioError


def test_precedence_env_file_then_environment_then_flags(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MODEL=from-file\nDEBUG=1\nSTREAM_RPS=7\nONLY_FILE=x\n")
    environ = {"MODEL": "from-environ", "STREAM_RPS": "8"}
    env = config.build_env(None, {"STREAM_RPS": "9"}, environ, tmp_path)
    assert env["MODEL"] == "from-environ"
    assert env["STREAM_RPS"] == "9"
    assert env["ONLY_FILE"] == "x"
    assert env.bool("DEBUG") is True
    assert env.float("STREAM_RPS") == 9.0
    assert env["NONSTREAM_RPS"] == "2"  # default
    assert "BASE" not in env  # unset: the runner starts the embedded simulator


def test_explicit_env_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MODEL=ignored\n")
    (tmp_path / "other.env").write_text("MODEL=chosen\n")
    env = config.build_env("other.env", None, {}, tmp_path)
    assert env["MODEL"] == "chosen"
    with pytest.raises(ScenarioError, match=r"missing\.env"):
        config.build_env("missing.env", None, {}, tmp_path)


def test_env_is_read_only_and_typed() -> None:
    env = config.Env({"DEBUG": "true", "SINGLE_RUN": "0", "N": "3", "BAD": "maybe"})
    with pytest.raises(TypeError):
        env["X"] = "1"  # type: ignore[index]
    assert env.bool("DEBUG") and not env.bool("SINGLE_RUN") and not env.bool("MISSING")
    assert env.int("N") == 3 and env.int("MISSING", 5) == 5
    with pytest.raises(ScenarioError, match="BAD='maybe' is not a boolean"):
        env.bool("BAD")
    with pytest.raises(ScenarioError, match="not a number"):
        env.float("BAD")


def test_secrets_are_masked_in_display_and_repr() -> None:
    env = config.Env({"LOADTEST_TOKEN": "s3cr3t-token", "API_KEY": "k3y", "MODEL": "m"})
    assert env.display("LOADTEST_TOKEN") == "[CONFIGURED]"
    assert env.display("API_KEY") == "[CONFIGURED]"
    assert env.display("MODEL") == "m"
    assert env.display("BASE") == "(not set)"
    assert "s3cr3t" not in repr(env) and "k3y" not in repr(env)
    assert config.is_secret("K6_PROMETHEUS_RW_PASSWORD")


def test_module_level_env_is_filled_in_place() -> None:
    from indigo_loadtest import env as exported

    config.activate(config.Env({"MODEL": "run-1"}))
    assert exported["MODEL"] == "run-1"
    config.activate(config.Env({"MODEL": "run-2"}))
    assert exported["MODEL"] == "run-2"
    assert exported is config.env


def test_parse_assignments() -> None:
    assert config.parse_assignments(["A=1", "B=x=y", "C="], "--env") == {
        "A": "1", "B": "x=y", "C": ""}
    with pytest.raises(ScenarioError, match="--tag 'novalue': expected KEY=VALUE"):
        config.parse_assignments(["novalue"], "--tag")
