"""Datasets read one entry at a time, a seeded uniform sample kept (llm/dataset_stream.py):
real files on disk, the real readers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from indigo_loadtest.llm.dataset_stream import MAX_ENTRY_CHARS, json_list_items
from indigo_loadtest.llm.workload import (
    Sampling,
    TokenCounter,
    WorkloadError,
    dataset_workload,
    sample_jsonl,
    sample_sharegpt,
)


def write_jsonl(path: Path, n: int, words: int = 3) -> Path:
    path.write_text("".join(json.dumps({"prompt": f"p{i} " + "w " * words}) + "\n"
                            for i in range(n)))
    return path


def write_sharegpt(path: Path, n: int, indent: int | None = None) -> Path:
    data: list[object] = [{"conversations": [{"from": "human", "value": f"q{i}"},
                                             {"from": "gpt", "value": "a b c"}]}
                          for i in range(n)]
    data[1:1] = [7, "not a conversation", {"conversations": []}]  # skipped, as before
    path.write_text(json.dumps(data, indent=indent))
    return path


def index(prompt: str) -> int:
    return int(prompt.split()[0][1:])


def test_a_file_within_the_bounds_is_kept_whole_in_the_order_shuffled_as_before(
        tmp_path: Path) -> None:
    items, total = sample_jsonl(str(write_jsonl(tmp_path / "d.jsonl", 500)))
    assert total == 500 and [index(r.prompt) for r in items] == list(range(500))
    workload = dataset_workload(str(tmp_path / "d.jsonl"), "jsonl", 7, TokenCounter())
    expected = list(range(500))
    random.Random(7).shuffle(expected)
    assert [index(workload.item(i).prompt) for i in range(500)] == expected
    assert workload.describe() == "jsonl d.jsonl: 500 requests, seed 7"


@pytest.mark.parametrize("indent", [None, 2])
def test_sharegpt_is_read_entry_by_entry_across_chunks(tmp_path: Path, indent: int | None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import indigo_loadtest.llm.dataset_stream as stream

    path = write_sharegpt(tmp_path / "s.json", 300, indent)
    monkeypatch.setattr(stream, "CHUNK_CHARS", 7)  # entries cut at every place
    items, total = sample_sharegpt(str(path))
    assert total == 300 and [r.prompt for r in items] == [f"q{i}" for i in range(300)]
    assert {r.max_tokens for r in items} == {3}


def test_the_point_keeps_only_the_requests_it_needs_a_seeded_uniform_sample(
        tmp_path: Path) -> None:
    path = str(write_jsonl(tmp_path / "d.jsonl", 10_000))
    picks = [index(r.prompt) for r in sample_jsonl(path, sampling=Sampling(200, seed=3))[0]]
    assert len(set(picks)) == 200
    assert picks == [index(r.prompt) for r in
                     sample_jsonl(path, sampling=Sampling(200, seed=3))[0]]  # every process
    assert picks != [index(r.prompt) for r in sample_jsonl(path, sampling=Sampling(200))[0]]
    # Uniform over the file: a tenth of the picks in each tenth, within wide margins.
    tenths = [sum(p // 1000 == k for p in picks) for k in range(10)]
    assert all(5 <= n <= 40 for n in tenths), tenths
    workload = dataset_workload(path, "jsonl", 3, TokenCounter(), needed=200)
    assert workload.describe() == "jsonl d.jsonl: 200 requests (a seeded sample of 10000), seed 3"


def test_the_text_kept_stays_within_the_budget(tmp_path: Path) -> None:
    path = str(write_jsonl(tmp_path / "d.jsonl", 5_000, words=50))
    line = len(json.dumps({"prompt": "p1000 " + "w " * 50})) + 1
    items, total = sample_jsonl(path, sampling=Sampling(budget=100 * line))
    assert total == 5_000 and 50 <= len(items) <= 100
    assert len({r.prompt for r in items}) == len(items)
    tenths = [sum(index(r.prompt) // 500 == k for r in items) for k in range(10)]
    assert max(tenths) <= len(items) // 2, tenths  # not the file's first (or last) lines


def test_an_entry_too_long_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_text('{"prompt": "ok"}\n' + "x" * (MAX_ENTRY_CHARS + 10) + "\n")
    with pytest.raises(WorkloadError, match=r"long\.jsonl: line 2 is longer than 16 MiB"):
        sample_jsonl(str(path))
    path = tmp_path / "long.json"
    path.write_text('[{"conversations": []}, "' + "x" * (MAX_ENTRY_CHARS + 10))
    with pytest.raises(WorkloadError, match=r"long\.json: an entry longer than 16 MiB"):
        sample_sharegpt(str(path))


@pytest.mark.parametrize("text,message", [
    ("", "expected a JSON list"),
    ('{"conversations": []}', "expected a JSON list"),
    ("[1, 2", "not JSON"),
    ("[1 2]", "expected ',' or ']'"),
    ("[1] x", "more after the list"),
    ('[{"a": }]', "not JSON"),
])
def test_a_broken_sharegpt_file_is_one_line_error(tmp_path: Path, text: str,
                                                  message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(WorkloadError, match=message) as err:
        sample_sharegpt(str(path))
    assert "\n" not in str(err.value)


def test_an_empty_list_and_white_space_read_as_no_entries(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text(" \n[ \n ] \n")
    assert list(json_list_items(str(path))) == []
