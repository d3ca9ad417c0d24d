"""A raw-sample output on a disk that fills says how many samples the file holds: the
complete lines that reached it, not only the batches that were written whole (it said
"after 0 samples" while 64 KiB of samples were in the file). A real run on a small tmpfs."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import clean_env, run_cli, write_scenario

from indigo_loadtest.scenario.errors import ExitCode

SCENARIO = '''"""Records many samples of its own, no HTTP."""
from indigo_loadtest import Counter

hits = Counter("hits")
options = {"vus": 1, "iterations": 1}


async def default(vu):
    for i in range(6000):
        hits.add(1, {"i": str(i % 7)})
'''


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (needs root); unmounted however the test ends."""
    mount = tmp_path / "disk"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {res.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def complete_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return text.split("\n")[:-1]  # the last piece is cut where the disk filled


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_full_disk_counts_the_samples_in_the_file(workdir: Path, small_disk: Path,
                                                  fmt: str) -> None:
    write_scenario(workdir, "many", SCENARIO)
    target = small_disk / f"out.{fmt}"
    res = run_cli("run", "many", "-q", "--no-report", "--out", f"{fmt}={target}",
                  cwd=workdir, env=clean_env())
    assert res.returncode == ExitCode.OUTPUT_FAILED, res.stderr
    said = re.search(rf"the {fmt} output cannot write {re.escape(str(target))}: No space "
                     r"left on device; it stopped recording after (\d+) samples", res.stderr)
    assert said, res.stderr
    lines = complete_lines(target)
    if fmt == "json":
        samples = [line for line in lines if json.loads(line)["type"] == "Point"]
    else:
        samples = lines[1:]  # the header
    assert target.stat().st_size > 60_000 and samples
    assert int(said.group(1)) == len(samples)
