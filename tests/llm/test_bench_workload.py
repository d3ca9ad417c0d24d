"""Benchmark workloads, token counting, SLOs and request bodies (pure functions)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from indigo_loadtest.llm.benchmark import BenchSpec, bench_options, request_body
from indigo_loadtest.llm.slo import parse_slos, point_verdicts, request_meets
from indigo_loadtest.llm.workload import (
    SAMPLE_DATASET,
    BenchRequest,
    SyntheticWorkload,
    TokenCounter,
    WorkloadError,
    dataset_workload,
    load_jsonl,
    load_sharegpt,
    parse_length,
)
from indigo_loadtest.scenario.errors import ScenarioError
from indigo_loadtest.scenario.options import parse_options


def test_length_forms_and_bounds() -> None:
    import random

    assert parse_length("128").draw(random.Random(1)) == 128
    assert parse_length("fixed:7").draw(random.Random(1)) == 7
    rng = random.Random(3)
    uniform = [parse_length("uniform:5:9").draw(rng) for _ in range(500)]
    assert min(uniform) == 5 and max(uniform) == 9
    clamped = [parse_length("normal:100:80:60:120").draw(rng) for _ in range(500)]
    assert min(clamped) == 60 and max(clamped) == 120


def test_lognormal_has_the_requested_mean_and_spread() -> None:
    import random

    dist = parse_length("lognormal:200:50")
    rng = random.Random(11)
    draws = [dist.draw(rng) for _ in range(20000)]
    assert statistics.fmean(draws) == pytest.approx(200, rel=0.02)
    assert statistics.pstdev(draws) == pytest.approx(50, rel=0.05)
    assert statistics.median(draws) < statistics.fmean(draws)  # skewed right


@pytest.mark.parametrize("bad", ["0", "uniform:9:5", "normal:100", "zipf:3", "1:2:x", "nan"])
def test_bad_length_is_one_line_error(bad: str) -> None:
    with pytest.raises(WorkloadError, match="--input-tokens: expected"):
        parse_length(bad, "--input-tokens")


def test_synthetic_prompts_have_the_drawn_length_and_repeat_with_the_seed() -> None:
    counter = TokenCounter()
    make = lambda seed: SyntheticWorkload(  # noqa: E731
        parse_length("uniform:20:60"), parse_length("uniform:5:15"), seed, 0, counter)
    a, b, c = make(1), make(1), make(2)
    items = [a.item(i) for i in range(50)]
    assert items == [b.item(i) for i in range(50)]  # same seed, same requests
    assert items != [c.item(i) for i in range(50)]
    for req in items:
        assert counter.count(req.prompt) == req.prompt_tokens
        assert 20 <= req.prompt_tokens <= 60 and 5 <= (req.max_tokens or 0) <= 15
    assert len({r.prompt for r in items}) == 50  # no accidental cache hits between requests


def test_shared_prefix_is_the_same_for_every_prompt_and_counted() -> None:
    counter = TokenCounter()
    w = SyntheticWorkload(parse_length("30"), parse_length("4"), 5, 16, counter)
    prompts = [w.item(i).prompt for i in range(10)]
    prefix = w.prefix
    assert counter.count(prefix) == 16
    assert all(p.startswith(prefix + " ") for p in prompts)
    assert all(counter.count(p) == 46 == w.item(0).prompt_tokens for p in prompts)


def test_jsonl_prompts_messages_and_max_tokens(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        json.dumps({"prompt": "one two three", "max_tokens": 7}) + "\n\n"
        + json.dumps({"messages": [{"role": "system", "content": "be brief"},
                                   {"role": "user", "content": "hi there"}]}) + "\n")
    items = load_jsonl(str(path))
    assert items[0] == BenchRequest(prompt="one two three", prompt_tokens=3, max_tokens=7)
    assert items[1].prompt_tokens == 4 and items[1].max_tokens is None
    assert items[1].as_messages()[0]["role"] == "system"
    assert load_jsonl(str(path), output_len=9)[1].max_tokens == 9


@pytest.mark.parametrize("line,message", [
    ("{not json", "prompts.jsonl:1: not JSON"),
    ('{"text": "x"}', "prompts.jsonl:1: expected a non-empty 'prompt'"),
    ('{"prompt": "x", "max_tokens": 0}', "prompts.jsonl:1: max_tokens must be"),
])
def test_jsonl_mistakes_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(WorkloadError, match=message):
        load_jsonl(str(path))


def test_sharegpt_sample_first_human_turn_and_answer_length() -> None:
    data = json.loads(SAMPLE_DATASET.read_text())
    items = load_sharegpt(str(SAMPLE_DATASET))
    answered = [e for e in data if len(e["conversations"]) >= 2]
    assert len(items) == len(answered) == len(data) - 1  # the unanswered one is skipped
    counter = TokenCounter()
    first = answered[0]["conversations"]
    assert items[0].prompt == first[0]["value"]
    assert items[0].max_tokens == counter.count(first[1]["value"])
    workload = dataset_workload("sample", "", 3, counter)
    assert sorted(r.prompt for r in workload.items) == sorted(r.prompt for r in items)
    assert workload.item(len(items)) == workload.item(0)  # repeated as needed


def test_missing_dataset_is_one_line_error() -> None:
    with pytest.raises(WorkloadError, match=r"nope\.json: No such file"):
        dataset_workload("nope.json", "sharegpt", 0, TokenCounter())


def test_slos_per_request_and_per_point() -> None:
    slos = parse_slos("ttft:p99<500ms, tpot:p90<=50, e2el:2s, itl:p50<20ms")
    assert [(o.metric, o.percentile, o.bound_ms) for o in slos] == [
        ("ttft", 99, 500), ("tpot", 90, 50), ("e2el", 99, 2000), ("itl", 50, 20)]
    assert request_meets(slos, {"ttft": 499, "tpot": 50, "e2el": 1999})
    assert not request_meets(slos, {"ttft": 500, "tpot": 10, "e2el": 10})  # strict <
    assert request_meets(slos, {"ttft": 1, "tpot": None, "e2el": 10})  # one-token answer
    verdicts = point_verdicts(slos, {"ttft": {"p99": 400}, "tpot": {"p90": 60},
                                     "e2el": {"p99": None}, "itl": {"p50": 5}})
    assert [v["ok"] for v in verdicts] == [True, False, False, True]  # no samples: missed
    with pytest.raises(ScenarioError, match="--slo 'ttfb:p99<5'"):
        parse_slos("ttfb:p99<5")


def test_request_bodies_pin_the_output_length() -> None:
    req = BenchRequest(prompt="hi", prompt_tokens=1, max_tokens=12)
    chat = request_body(BenchSpec(model="m", ignore_eos=True), req)
    assert chat == {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}],
                    "stream_options": {"include_usage": True}, "max_tokens": 12,
                    "ignore_eos": True}
    responses = request_body(BenchSpec(model="m", endpoint="responses", stream=False), req)
    assert responses == {"model": "m", "stream": False, "input": "hi", "max_output_tokens": 12}


@pytest.mark.parametrize("spec,executor,extra", [
    (BenchSpec(profile="synchronous", duration="5s"), "constant-vus", {"vus": 1}),
    (BenchSpec(profile="concurrency", concurrency=4, requests=10), "shared-iterations",
     {"vus": 4, "iterations": 10}),
    (BenchSpec(profile="poisson", rate=3, seed=9), "constant-arrival-rate",
     {"arrivals": "poisson", "seed": 9}),
    (BenchSpec(profile="gamma", rate=3, burstiness=0.5), "constant-arrival-rate",
     {"arrivals": "gamma", "burstiness": 0.5}),
])
def test_profiles_are_k6_scenarios(spec: BenchSpec, executor: str,
                                   extra: dict[str, object]) -> None:
    options = bench_options(spec)
    scenario = options["scenarios"]["bench"]
    assert scenario["executor"] == executor
    assert extra.items() <= scenario.items()
    plan = parse_options(options).plan  # valid for the runner as it stands
    assert plan.scenarios[0].executor == executor
