"""The documentation's scenario examples, copied verbatim as a user would, pass against the
embedded simulator."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cli_helpers import REPO, clean_env, run_cli, write_scenario


def python_block_after(doc: Path, marker: str) -> str:
    text = doc.read_text(encoding="utf-8")
    return re.search(r"```python\n(.*?)```", text[text.index(marker):], re.S).group(1)


def test_measure_stream_example_runs_with_an_api_key(workdir: Path) -> None:
    code = python_block_after(REPO / "docs" / "scenarios.md", "llm.measure_stream(resp, tags)")
    write_scenario(workdir, "my-stream", code)
    res = run_cli("run", "my-stream", "-q", "--summary-export", "out.json", cwd=workdir,
                  env=clean_env(API_KEY="doc-example-key"))
    assert res.returncode == 0, res.stderr
    metrics = json.loads((workdir / "out.json").read_text())["metrics"]
    assert metrics["checks"]["passes"] == 2 and metrics["checks"]["fails"] == 0
    assert metrics["http_req_failed"]["passes"] == 0
    assert metrics["llm_ttft_ms"]["max"] > 0
    assert "doc-example-key" not in res.stdout + res.stderr
