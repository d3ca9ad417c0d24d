"""A scenario that uses indigo_loadtest.llm may put thresholds on the llm_* metrics
without declaring them (issue 25 §2: `threshold on unknown metric 'llm_ttft_ms'` unless
it called an undocumented `LLMMetrics()` at import). Against the embedded simulator."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import clean_env, run_cli, write_scenario

from indigo_loadtest.scenario.errors import ExitCode

STREAM = """
from indigo_loadtest import check, env
from indigo_loadtest.llm import measure_stream

options = {"vus": 1, "iterations": 2, "thresholds": {"llm_ttft_ms": ["p(95)<30000"]}}

async def default(vu):
    resp = await vu.http.post(f"{env['BASE']}/v1/chat/completions", stream=True, json={
        "model": "jan-v1-4b", "stream": True, "max_tokens": 3,
        "messages": [{"role": "user", "content": "Say hello"}]},
        headers={"Authorization": "Bearer k"})
    result = await measure_stream(resp)
    check(result, {"completed": lambda r: r.completed})
"""

PLAIN = """
from indigo_loadtest import env

options = {"vus": 1, "iterations": 1, "thresholds": {"llm_ttft_ms": ["p(95)<30000"]}}

async def default(vu):
    await vu.http.get(f"{env['BASE']}/v1/models")
"""


def test_a_threshold_on_llm_ttft_needs_no_declaration(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    write_scenario(tmp_path, "stream", STREAM)
    proc = run_cli("run", "stream", cwd=tmp_path, env=clean_env(API_KEY="k"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "llm_ttft_ms" in proc.stdout and "✓ 'p(95)<30000'" in proc.stdout


def test_without_the_module_the_metric_is_still_unknown(tmp_path: Path) -> None:
    """A scenario that never uses indigo_loadtest.llm has no llm_* metrics: a threshold
    on one is still the typo it was."""
    (tmp_path / "scenarios").mkdir()
    write_scenario(tmp_path, "plain", PLAIN)
    proc = run_cli("run", "plain", cwd=tmp_path, env=clean_env(API_KEY="k"))
    assert proc.returncode == ExitCode.INVALID_CONFIG
    assert "threshold on unknown metric 'llm_ttft_ms'" in proc.stderr
    assert "Traceback" not in proc.stderr
