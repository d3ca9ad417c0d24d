"""A generator process exempts what loading left (modules, the scenario) from the
garbage collector's later passes, and still collects what its run makes. Real runs of
the CLI; each process that runs iterations writes down what it saw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import clean_env, run_cli, write_scenario

from indigo_loadtest.engine.gc_tuning import FULL_COLLECTION_EVERY

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


SCENARIO = '''"""Notes the frozen objects and whether a cycle made now is still collected."""
import gc
import json
import os
import weakref
from pathlib import Path

from indigo_loadtest import check, env

options = {"vus": 2, "iterations": 4}


class Node:
    pass


async def default(vu):
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    dead = weakref.ref(a)
    del a, b
    gc.collect()
    note = {"frozen": gc.get_freeze_count(), "cycle_collected": dead() is None,
            "threshold": gc.get_threshold()}
    (Path(env["NOTES"]) / f"{os.getpid()}.json").write_text(json.dumps(note))
    check(note, {"cycle collected": lambda n: n["cycle_collected"]})
'''


@pytest.mark.parametrize("workers", ["1", "2"])
def test_loaded_objects_are_frozen_and_the_run_is_still_collected(
        tmp_path: Path, workers: str) -> None:
    (tmp_path / "scenarios").mkdir()
    notes = tmp_path / "notes"
    notes.mkdir()
    write_scenario(tmp_path, "gc_notes", SCENARIO)
    res = run_cli("run", "gc_notes", "--no-summary", "--quiet", "--workers", workers,
                  "--env", f"NOTES={notes}", cwd=tmp_path, env=clean_env())
    assert res.returncode == 0, res.stderr
    seen = [json.loads(p.read_text()) for p in notes.iterdir()]
    assert len(seen) == int(workers)
    for note in seen:
        # The package and its dependencies alone are tens of thousands of objects.
        assert note["frozen"] > 10_000, note
        assert note["cycle_collected"], note
        assert note["threshold"][2] == FULL_COLLECTION_EVERY, note
