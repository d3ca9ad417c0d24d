"""The CI workflow template `.github/workflows/loadtest.yml` (issue 14, part 3): it passes
the offline linters, it handles inputs and secrets safely, the commands its steps run are
the ones docs/ci.md documents, and those steps, run here by bash as GitHub's runner runs
them, test the embedded simulator, write the job summary and fail with the tool's code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import REPO, clean_env

from indigo_loadtest.scenario.errors import ExitCode

WORKFLOW = REPO / ".github" / "workflows" / "loadtest.yml"
CI_DOC = REPO / "docs" / "ci.md"
BIN = Path(sys.executable).parent
# The old framework's inputs, then this one's additions.
OLD_INPUTS = {"test_case", "base_url", "model", "duration_min", "nonstream_rps", "stream_rps"}
EXPRESSION = re.compile(r"\$\{\{\s*(inputs|secrets)\.(\w+)\s*\}\}")
SECRET = "sk-ci-secret-0123456789"


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def triggers() -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True.
    wf = workflow()
    return wf.get("on", wf.get(True))


def steps() -> list[dict[str, Any]]:
    return workflow()["jobs"]["loadtest"]["steps"]


def step(name: str) -> dict[str, Any]:
    return next(s for s in steps() if s["name"] == name)


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def lint_commands(path: Path) -> dict[str, list[str]]:
    return {
        "check-jsonschema": [tool("check-jsonschema"), "--builtin-schema",
                             "vendor.github-workflows", str(path)],
        # --offline: no network, no token (the online audits need GitHub's API).
        "zizmor": [tool("zizmor"), "--offline", "--persona=auditor", "--no-progress",
                   str(path)],
    }


def lint(name: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN")}
    return subprocess.run(lint_commands(path)[name], capture_output=True, text=True,
                          timeout=30, env=env)


@pytest.mark.parametrize("linter", ["check-jsonschema", "zizmor"])
def test_workflow_passes_the_offline_linters(linter: str) -> None:
    res = lint(linter, WORKFLOW)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_linters_catch_an_input_spliced_into_a_script(tmp_path: Path) -> None:
    """The lint test can fail: the same workflow with an input pasted into the shell."""
    bad = tmp_path / "bad.yml"
    text = WORKFLOW.read_text(encoding="utf-8")
    bad.write_text(text.replace('indigo-loadtest run "$TEST_CASE"',
                                "indigo-loadtest run ${{ inputs.test_case }}"), encoding="utf-8")
    res = lint("zizmor", bad)
    assert res.returncode != 0 and "template-injection" in res.stdout + res.stderr
    bad.write_text(text.replace("runs-on:", "runs_on:"), encoding="utf-8")
    assert lint("check-jsonschema", bad).returncode != 0


def test_inputs_are_the_old_workflows_and_the_same_for_dispatch_and_call() -> None:
    on = triggers()
    dispatched = on["workflow_dispatch"]["inputs"]
    called = on["workflow_call"]["inputs"]
    assert OLD_INPUTS | {"single_run", "baseline", "fail_on"} <= set(dispatched)
    assert set(dispatched) == set(called)
    for name, spec in dispatched.items():
        assert (spec["type"], spec.get("default")) == (called[name]["type"],
                                                        called[name].get("default")), name
    assert set(on["workflow_call"]["secrets"]) == {"API_KEY", "LOADTEST_TOKEN"}


def test_inputs_and_secrets_reach_scripts_only_as_environment_variables() -> None:
    for s in steps():
        assert "${{" not in s.get("run", ""), s["name"]  # nothing spliced into a script
        for key, value in s.get("env", {}).items():
            if "secrets." in value:
                assert value == f"${{{{ secrets.{key} }}}}", key  # as is, into its own name
    run_env = step("Run the test")["env"]
    assert run_env["API_KEY"] == "${{ secrets.API_KEY }}"
    assert run_env["LOADTEST_TOKEN"] == "${{ secrets.LOADTEST_TOKEN }}"
    text = WORKFLOW.read_text(encoding="utf-8")
    assert text.count("secrets.") == 4  # the two env entries and the call example's two


def test_actions_are_pinned_by_commit() -> None:
    uses = [s["uses"] for s in steps() if "uses" in s]
    assert {u.split("@")[0] for u in uses} == {"actions/checkout", "actions/setup-python",
                                              "actions/upload-artifact"}
    assert all(re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", u) for u in uses), uses


def test_results_are_uploaded_and_summarised_however_the_run_ends() -> None:
    for name in ("Job summary", "Upload the results"):
        assert "always()" in step(name)["if"], name
    assert step("Upload the results")["with"]["path"] == "results/"
    assert "always()" in step("Compare with the baseline")["if"]  # also after a failed run


def invocations(script: str) -> list[str]:
    return [line.strip() for line in script.replace("\\\n", " ").splitlines()
            if line.strip().startswith("indigo-loadtest ")]


def test_the_commands_the_workflow_runs_are_the_documented_ones() -> None:
    commands = [c for s in steps() for c in invocations(s.get("run", ""))]
    assert [c.split()[1] for c in commands] == ["run", "compare"]
    doc = CI_DOC.read_text(encoding="utf-8")
    for command in commands:
        assert command in doc, command
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docs/ci.md" in readme and "--summary-markdown" in readme
    assert ".github/workflows/loadtest.yml" in readme


# --- the steps, run as GitHub's runner runs them ---------------------------------------------

def step_env(name: str, inputs: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """The step's `env`, its `${{ inputs.X }}` / `${{ secrets.X }}` resolved."""
    context = {"inputs": inputs, "secrets": secrets}
    env = {}
    for key, value in step(name).get("env", {}).items():
        env[key] = EXPRESSION.sub(lambda m: context[m[1]].get(m[2], ""), str(value))
    return env


def run_step(name: str, cwd: Path, inputs: dict[str, str],
             secrets: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = cwd / ".step.sh"
    script.write_text(step(name)["run"], encoding="utf-8")
    env = clean_env(**step_env(name, inputs, secrets))
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["GITHUB_STEP_SUMMARY"] = str(cwd / "step_summary.md")
    # GitHub runs `shell: bash` as `bash --noprofile --norc -eo pipefail {0}`.
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def inputs() -> dict[str, str]:
    """The defaults of the dispatch form, in functional mode (a few seconds)."""
    specs = triggers()["workflow_dispatch"]["inputs"]
    values = {k: str(v.get("default", "")).lower() if v["type"] == "boolean"
              else str(v.get("default", "")) for k, v in specs.items()}
    values["single_run"] = "true"
    return values


def test_workflow_steps_test_the_embedded_simulator_and_summarise(
        tmp_path: Path, inputs: dict[str, str]) -> None:
    tool("indigo-loadtest")
    secrets = {"API_KEY": SECRET}  # the simulator accepts it as its static key
    ran = run_step("Run the test", tmp_path, inputs, secrets)
    assert ran.returncode == 0, ran.stderr
    results = tmp_path / "results"
    assert {"run.json", "run.timeseries.json.gz", "run.html", "summary.md"} <= {
        p.name for p in results.iterdir()}

    # Compared with itself (as the baseline of a later run would be): the default rules hold.
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    for name in ("run.json", "run.timeseries.json.gz"):
        shutil.copy(results / name, baseline / name)
    inputs["baseline"] = "baseline/run.json"
    compared = run_step("Compare with the baseline", tmp_path, inputs, secrets)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert (results / "compare.html").is_file()

    # A rule that holds fails the step with compare's code, 99.
    inputs["fail_on"] = "http_req_failed:rate>0.5\nhttp_reqs:count>0\n"
    compared = run_step("Compare with the baseline", tmp_path, inputs, secrets)
    assert compared.returncode == ExitCode.THRESHOLDS_FAILED, compared.stdout + compared.stderr
    # Each line of fail_on became one rule.
    assert "✓ http_req_failed:rate>0.5: ok" in compared.stdout
    assert "✗ http_reqs:count>0: FAILED" in compared.stdout

    summarised = run_step("Job summary", tmp_path, inputs, secrets)
    assert summarised.returncode == 0, summarised.stderr
    summary = (tmp_path / "step_summary.md").read_text(encoding="utf-8")
    assert summary.startswith("### indigo-loadtest: test-completion-standard\n")
    assert "**✓ passed**\n\nAll 6 thresholds passed." in summary
    assert "| `http_req_failed` `rate<0.05` | ✓ |" in summary
    assert "| LLM time to first token p(95) |" in summary
    assert "#### Compared with the baseline" in summary and "✗ http_reqs:count>0" in summary

    everything = [ran.stdout, ran.stderr, compared.stdout, compared.stderr, summary]
    everything += [p.read_bytes().decode("utf-8", "replace") for p in results.iterdir()
                   if p.suffix in (".json", ".md", ".html", ".txt")]
    assert not [text for text in everything if SECRET in text]


def test_a_failed_run_step_fails_with_the_tools_code_and_the_summary_says_so(
        tmp_path: Path, inputs: dict[str, str]) -> None:
    tool("indigo-loadtest")
    inputs["test_case"] = "no-such-scenario"
    ran = run_step("Run the test", tmp_path, inputs, {})
    assert ran.returncode == ExitCode.USAGE, ran.stderr
    assert run_step("Job summary", tmp_path, inputs, {}).returncode == 0
    summary = (tmp_path / "step_summary.md").read_text(encoding="utf-8")
    assert summary.startswith("No summary: the test did not run")
