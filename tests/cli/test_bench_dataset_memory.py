"""`bench --dataset` in bounded memory (issue 22 §6): the file is read one entry at a time
and only the requests the point needs are kept (llm/dataset_stream.py), so a 60 MB file
costs the run about what no file does. Measured as the peak RSS of the real CLI (the
largest of its processes: rss_helpers.py), against a control
run without a dataset measured the same way at the same time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import clean_env
from rss_helpers import measured_cli

FILE_BYTES = 60_000_000
# What the dataset may add to the run's peak: the few requests kept and one read chunk.
# Reading the file whole took at least twice its size (its bytes, then its lines).
EXTRA_LIMIT = 40_000_000

_TEXT = " ".join(["the quick brown fox jumps over the lazy dog"] * 40)


def jsonl(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as f:
        n = 0
        while f.tell() < FILE_BYTES:
            f.write("".join(json.dumps({"prompt": f"{n + k} {_TEXT}"}) + "\n"
                            for k in range(1000)))
            n += 1000
    return path


def sharegpt(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as f:
        f.write("[")
        n = 0
        while f.tell() < FILE_BYTES:
            f.write(",".join(json.dumps({"id": n + k, "conversations": [
                {"from": "human", "value": f"{n + k} {_TEXT}"},
                {"from": "gpt", "value": "four words of answer"}]}) for k in range(1000)))
            f.write(",")
            n += 1000
        f.write('{"conversations": []}]')
    return path


def peak_bench(tmp_path: Path, *args: str) -> int:
    """The bench run's peak RSS in bytes; it must pass."""
    done = measured_cli("bench", "-q", "--no-summary", "--results-dir", str(tmp_path),
                        "--iterations", "4", "--output-tokens", "2", *args, cwd=tmp_path,
                        env=clean_env(INDIGO_SIM_TTFT_MS="0", INDIGO_SIM_TOKENS_PER_SEC="0"))
    assert done.returncode == 0, done.stderr
    return done.peak


@pytest.mark.parametrize("make", [jsonl, sharegpt])
def test_a_large_dataset_costs_about_nothing_beyond_the_requests_kept(
        tmp_path: Path, make: object) -> None:
    data = make(tmp_path / ("big.jsonl" if make is jsonl else "big.json"))  # type: ignore[operator]
    assert data.stat().st_size >= FILE_BYTES
    control = peak_bench(tmp_path, "--input-tokens", "400")
    measured = peak_bench(tmp_path, "--dataset", str(data))
    assert measured - control < EXTRA_LIMIT, (measured >> 20, control >> 20)
