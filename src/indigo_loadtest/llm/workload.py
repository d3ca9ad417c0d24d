"""Benchmark workloads: what each request asks, seeded so a run repeats exactly.

- `LengthDist`: a token length, fixed or drawn (uniform, normal, lognormal) within
  min/max; `parse_length("lognormal:256:64:16:1024")`.
- `synthetic_workload(...)`: prompts built to a drawn length (optionally after a shared
  prefix, for prefix caching) with a drawn output length pinned by `max_tokens`.
- `load_jsonl(path)` (`prompt` or `messages`, optional `max_tokens`) and
  `load_sharegpt(path)` (first human turn as the prompt, the first answer's length as
  the output target), read one entry at a time; of a large file a seeded uniform sample
  is kept, in bounded memory (llm/dataset_stream.py).
- `TokenCounter`: a local `tokenizer.json` through the `tokenizers` library when given
  (nothing is downloaded), else an estimate (one token per whitespace-led word, the
  embedded simulator's rule) whose results are labelled `estimate`.

Item `i` of a workload is a pure function of the seed and `i`, so every worker process
sees the same requests without any being sent between them.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..scenario.errors import ExitCode, ScenarioError
from .dataset_stream import (
    DATASET_BUDGET,
    DATASET_REQUESTS,
    Reservoir,
    json_list_items,
    jsonl_lines,
)

_WORD = re.compile(r"\s*\S+")
DISTRIBUTIONS = ("fixed", "uniform", "normal", "lognormal")
# Words prompts are made of: common English words, each a single token for the usual
# BPE tokenizers when preceded by a space, and for the simulator's word-piece rule.
_WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an had they you were their one all we can her has there been if more "
    "when will would who so no time people year way day man thing woman life child world "
    "school state family student group country problem hand part place case week company "
    "system program question work government number night point home water room mother area "
    "money story fact month lot right study book eye job word business issue side kind head "
    "house service friend father power hour game line end member law car city community "
    "name"
)
VOCABULARY = tuple(_WORDS.split())


class WorkloadError(ScenarioError):
    """A workload the benchmark cannot use (one line, exit code 104)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.INVALID_CONFIG)


# --- lengths ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LengthDist:
    """A length in tokens: `fixed` (mean), `uniform` (min..max), `normal` or `lognormal`
    (mean and standard deviation of the length itself), always clamped to [min, max]."""

    kind: str = "fixed"
    mean: float = 128.0
    std: float = 0.0
    min: int = 1
    max: int = 1 << 20

    def draw(self, rng: random.Random) -> int:
        if self.kind == "uniform":
            return rng.randint(self.min, self.max)
        if self.kind == "normal":
            value = rng.gauss(self.mean, self.std)
        elif self.kind == "lognormal":
            # The underlying normal's parameters for a length of this mean and deviation.
            sigma2 = math.log1p((self.std / self.mean) ** 2)
            value = rng.lognormvariate(math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2))
        else:
            value = self.mean
        return max(self.min, min(self.max, round(value)))

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"{self.mean:g}"
        if self.kind == "uniform":
            return f"uniform {self.min}..{self.max}"
        return f"{self.kind} mean {self.mean:g} sd {self.std:g} in [{self.min}, {self.max}]"


def parse_length(text: str, name: str = "length") -> LengthDist:
    """`128` | `fixed:128` | `uniform:MIN:MAX` | `normal:MEAN:SD[:MIN:MAX]` |
    `lognormal:MEAN:SD[:MIN:MAX]`."""
    parts = str(text).strip().split(":")
    kind = parts[0].lower() if not _is_number(parts[0]) else "fixed"
    args = parts[1:] if kind != "fixed" or not _is_number(parts[0]) else parts
    usage = (f"{name}: expected N, uniform:MIN:MAX, normal:MEAN:SD[:MIN:MAX] or "
             f"lognormal:MEAN:SD[:MIN:MAX], got {text!r}")
    if kind not in DISTRIBUTIONS or not all(_is_number(a) for a in args):
        raise WorkloadError(usage)
    nums = [float(a) for a in args]
    if kind == "fixed" and len(nums) == 1 and nums[0] >= 1:
        return LengthDist("fixed", nums[0], 0.0, round(nums[0]), round(nums[0]))
    if kind == "uniform" and len(nums) == 2 and 1 <= nums[0] <= nums[1]:
        return LengthDist("uniform", (nums[0] + nums[1]) / 2, 0.0, round(nums[0]), round(nums[1]))
    if kind in ("normal", "lognormal") and len(nums) in (2, 4) and nums[0] >= 1 and nums[1] >= 0:
        lo, hi = (round(nums[2]), round(nums[3])) if len(nums) == 4 else (1, 1 << 20)
        if 1 <= lo <= hi:
            return LengthDist(kind, nums[0], nums[1], lo, hi)
    raise WorkloadError(usage)


def _is_number(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value)


# --- token counting -------------------------------------------------------------------------

class TokenCounter:
    """Counts tokens with a local tokenizer.json, or estimates them (`source` says which)."""

    def __init__(self, tokenizer_path: str | None = None) -> None:
        self._tok: Any = None
        self.source = "estimate"
        if tokenizer_path:
            self._tok = load_tokenizer(tokenizer_path)
            self.source = "tokenizer"

    def count(self, text: str) -> int:
        if self._tok is not None:
            return len(self._tok.encode(text, add_special_tokens=False).ids)
        return len(text.split())  # = len(_WORD.findall(text)), without the regex: 10x faster

    def count_messages(self, messages: Sequence[dict[str, Any]]) -> int:
        return sum(self.count(m["content"]) for m in messages
                   if isinstance(m.get("content"), str))

    def fit(self, text: str, n: int) -> str:
        """`text` cut to its first `n` tokens (a tokenizer's, or words)."""
        if self._tok is None:
            return "".join(_WORD.findall(text)[:n]).strip()
        # Cut the text itself after its n-th token (decoding ids would not give the
        # text back, e.g. unknown words); a cut that re-tokenizes differently at the
        # boundary is moved by the difference, a few times at most.
        offsets = self._tok.encode(text, add_special_tokens=False).offsets
        k = n
        cut = text
        for _ in range(5):
            cut = text[:offsets[max(1, min(k, len(offsets))) - 1][1]]
            diff = self.count(cut) - n
            if diff == 0:
                break
            k -= diff
        return cut


def tokenizer_file(path: str) -> str:
    """The tokenizer.json itself, or the one inside a folder (a Hugging Face model's, as
    every peer's --tokenizer accepts)."""
    if not Path(path).is_dir():
        return path
    inside = Path(path) / "tokenizer.json"
    if not inside.is_file():
        raise ScenarioError(f"--tokenizer {path}: the folder holds no tokenizer.json",
                            ExitCode.USAGE)
    return str(inside)


def load_tokenizer(path: str) -> Any:
    """A `tokenizers.Tokenizer` from a local tokenizer.json or a model folder holding one
    (the optional dependency)."""
    path = tokenizer_file(path)
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise WorkloadError("--tokenizer needs the 'tokenizers' package "
                            "(pip install tokenizers)") from None
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:
        raise WorkloadError(f"--tokenizer {path}: cannot load it: {exc}") from None


# --- requests ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchRequest:
    """One request of a workload: a prompt (or chat messages) and its output target."""

    prompt: str = ""
    messages: tuple[dict[str, Any], ...] = ()
    prompt_tokens: int = 0
    max_tokens: int | None = None
    # Multi-turn: the conversation's later user turns and their output targets, sent in
    # order after this one with the history growing.
    followups: tuple[tuple[str, int | None], ...] = ()

    def as_messages(self) -> list[dict[str, Any]]:
        return list(self.messages) or [{"role": "user", "content": self.prompt}]


class Workload:
    """`item(i)` for any i >= 0; `describe()` for headers and the results file."""

    name = "workload"

    def item(self, i: int) -> BenchRequest:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


class SyntheticWorkload(Workload):
    name = "synthetic"

    def __init__(self, input_len: LengthDist, output_len: LengthDist | None, seed: int = 0,
                 prefix_tokens: int = 0, counter: TokenCounter | None = None) -> None:
        self.input_len, self.output_len = input_len, output_len
        self.seed, self.prefix_tokens = seed, prefix_tokens
        self.counter = counter or TokenCounter()
        self.prefix = build_text(random.Random(f"{seed}:prefix"), prefix_tokens, self.counter)

    def item(self, i: int) -> BenchRequest:
        rng = random.Random(f"{self.seed}:{i}")
        n = self.input_len.draw(rng)
        out = self.output_len.draw(rng) if self.output_len is not None else None
        body = build_text(rng, n, self.counter)
        prompt = f"{self.prefix} {body}" if self.prefix else body
        return BenchRequest(prompt=prompt, prompt_tokens=self.prefix_tokens + n, max_tokens=out)

    def describe(self) -> str:
        out = self.output_len.describe() if self.output_len else "server's choice"
        prefix = f", shared prefix {self.prefix_tokens}" if self.prefix_tokens else ""
        return (f"synthetic: input {self.input_len.describe()} tokens{prefix}, "
                f"output {out} tokens, seed {self.seed}")


def build_text(rng: random.Random, n: int, counter: TokenCounter) -> str:
    """Text of exactly `n` tokens by `counter` (random words, cut to length)."""
    if n <= 0:
        return ""
    words = [rng.choice(VOCABULARY) for _ in range(n + 8)]
    return counter.fit(" ".join(words), n)


class ListWorkload(Workload):
    """Requests from a file, in an order shuffled by the seed, repeated as needed.
    `total`: how many the file had, when these are a sample of them."""

    def __init__(self, items: list[BenchRequest], name: str, seed: int = 0,
                 total: int | None = None) -> None:
        if not items:
            raise WorkloadError(f"{name}: no usable requests in it")
        self.items = list(items)
        random.Random(seed).shuffle(self.items)
        self.name, self.seed, self.total = name, seed, total

    def item(self, i: int) -> BenchRequest:
        return self.items[i % len(self.items)]

    def describe(self) -> str:
        sampled = (f" (a seeded sample of {self.total})"
                   if self.total is not None and self.total > len(self.items) else "")
        return f"{self.name}: {len(self.items)} requests{sampled}, seed {self.seed}"


@dataclass(frozen=True)
class Sampling:
    """How much of a dataset is kept (llm/dataset_stream.py): at most `requests`
    requests holding at most `budget` characters, a uniform sample drawn with `seed`."""

    requests: int = DATASET_REQUESTS
    budget: int = DATASET_BUDGET
    seed: int = 0

    def reservoir(self) -> Reservoir[Any]:
        return Reservoir(self.requests, self.budget, random.Random(f"{self.seed}:sample"))


def _entries(path: str, read: Any) -> Iterator[Any]:
    """The file's entries, its errors as one line naming it."""
    try:
        yield from read(path)
    except OSError as exc:
        raise WorkloadError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise WorkloadError(f"{path}: {exc}") from None


def sample_jsonl(path: str, counter: TokenCounter | None = None,
                 output_len: int | None = None,
                 sampling: Sampling = Sampling()) -> tuple[list[BenchRequest], int]:
    """One JSON object a line: `prompt` (text) or `messages` (chat), optional `max_tokens`.
    Every line is checked; a sample is kept (`sampling`). Returns it and the count."""
    counter = counter or TokenCounter()
    kept = sampling.reservoir()
    for n, line in _entries(path, jsonl_lines):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise WorkloadError(f"{path}:{n}: not JSON ({exc})") from None
        _jsonl_item(obj, f"{path}:{n}", None, output_len)  # checked now, counted if kept
        kept.offer((n, line), len(line))
    items = []
    kept.items.reverse()
    while kept.items:  # each raw line freed as its request is made: the budget once
        n, line = kept.items.pop()
        items.append(_jsonl_item(orjson.loads(line), f"{path}:{n}", counter, output_len))
    return items, kept.seen


def load_jsonl(path: str, counter: TokenCounter | None = None,
               output_len: int | None = None) -> list[BenchRequest]:
    return sample_jsonl(path, counter, output_len)[0]


def _jsonl_item(obj: Any, where: str, counter: TokenCounter | None,
                output_len: int | None) -> BenchRequest:
    """The line's request (its tokens counted by `counter`; None: only checked)."""
    if not isinstance(obj, dict):
        raise WorkloadError(f"{where}: expected an object with 'prompt' or 'messages'")
    max_tokens = obj.get("max_tokens", output_len)
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1
                                   or isinstance(max_tokens, bool)):
        raise WorkloadError(f"{where}: max_tokens must be a whole number above 0")
    prompt, messages = obj.get("prompt"), obj.get("messages")
    if isinstance(prompt, str) and prompt:
        return BenchRequest(prompt=prompt, prompt_tokens=counter.count(prompt) if counter else 0,
                            max_tokens=max_tokens)
    if (isinstance(messages, list) and messages
            and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages)):
        return BenchRequest(messages=tuple(messages),
                            prompt_tokens=counter.count_messages(messages) if counter else 0,
                            max_tokens=max_tokens)
    raise WorkloadError(f"{where}: expected a non-empty 'prompt' string or 'messages' list "
                        "of {role, content}")


def sample_sharegpt(path: str, counter: TokenCounter | None = None,
                    output_len: int | None = None, multi_turn: bool = False,
                    sampling: Sampling = Sampling()) -> tuple[list[BenchRequest], int]:
    """ShareGPT's layout: a list of {"conversations": [{"from": "human"|"gpt", "value"}]}.
    The first human turn is the prompt; the answer after it sets the output target
    (`output_len` overrides it). Conversations without both are skipped, as vLLM does.
    `multi_turn`: every later human turn followed by an answer becomes a follow-up.
    Read one conversation at a time; a sample is kept (`sampling`). Returns it and the
    count of usable conversations."""
    counter = counter or TokenCounter()
    kept = sampling.reservoir()
    for entry, _ in _entries(path, json_list_items):
        turns = entry.get("conversations") if isinstance(entry, dict) else None
        pairs = _exchanges(turns) if isinstance(turns, list) else []
        if pairs:
            pairs = pairs if multi_turn else pairs[:1]
            kept.offer(pairs, sum(len(q) + len(a) for q, a in pairs))
    items = []
    for pairs in kept.items:
        targets = [(q, output_len or counter.count(a)) for q, a in pairs]
        prompt, target = targets[0]
        items.append(BenchRequest(prompt=prompt, prompt_tokens=counter.count(prompt),
                                  max_tokens=target, followups=tuple(targets[1:])))
    return items, kept.seen


def load_sharegpt(path: str, counter: TokenCounter | None = None,
                  output_len: int | None = None, multi_turn: bool = False) -> list[BenchRequest]:
    return sample_sharegpt(path, counter, output_len, multi_turn)[0]


def _exchanges(turns: list[Any]) -> list[tuple[str, str]]:
    """Each human turn with the answer right after it, in order."""
    pairs = []
    for k, turn in enumerate(turns[:-1]):
        nxt = turns[k + 1]
        if (isinstance(turn, dict) and isinstance(nxt, dict) and turn.get("from") == "human"
                and nxt.get("from") in ("gpt", "chatgpt", "bard", "bing")
                and isinstance(turn.get("value"), str) and turn["value"].strip()
                and isinstance(nxt.get("value"), str) and nxt["value"].strip()):
            pairs.append((turn["value"], nxt["value"]))
    return pairs


SAMPLE_DATASET = Path(__file__).parent / "data" / "sample_sharegpt.json"


def dataset_workload(path: str, kind: str, seed: int, counter: TokenCounter,
                     output_len: int | None = None, multi_turn: bool = False,
                     needed: int = 0) -> ListWorkload:
    """`kind` is jsonl or sharegpt; `path` "sample" is the packaged ShareGPT sample.
    `needed`: the requests the point makes (0: open), the most of the file kept."""
    if path == "sample":
        path, kind = str(SAMPLE_DATASET), "sharegpt"
    sampling = Sampling(requests=min(needed, DATASET_REQUESTS) if needed > 0
                        else DATASET_REQUESTS, seed=seed)
    if kind == "sharegpt":
        items, total = sample_sharegpt(path, counter, output_len, multi_turn, sampling)
    elif multi_turn:
        raise WorkloadError("--multi-turn needs a ShareGPT dataset")
    else:
        items, total = sample_jsonl(path, counter, output_len, sampling)
    name = f"{kind} {Path(path).name}" + (" (multi-turn)" if multi_turn else "")
    return ListWorkload(items, name, seed, total)


def guess_kind(path: str) -> str:
    return "jsonl" if path.endswith((".jsonl", ".ndjson")) else "sharegpt"
