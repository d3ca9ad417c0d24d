"""Helpers of the bench tests."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest


def make_tokenizer(path: Path) -> Path:
    """A real tokenizer.json (word level, whitespace pre-tokenizer), built locally."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers

    vocab = {"[UNK]": 0, "hello": 1, "world": 2, ",": 3}
    tok = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    file = path / "tokenizer.json"
    tok.save(str(file))
    return file


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answer_says_what_it_rests_on(tmp_path: Path, stdout: str, answer: dict[str, Any],
                                 at: dict[str, Any], slo: str) -> None:
    """The answer's certainty (docs/benchmark.md, "--find max-rate"): the offered against
    the achieved rate, the values behind the percentile judged, a warning when they are
    too few. Before: 'max rate meeting the SLO: 2.339 req/s (±0.029: ...)', the ± only
    the bisection step, nothing of the 21 requests the percentile was taken over."""
    lines = stdout.splitlines()
    line = next(x for x in lines if "max rate meeting the SLO:" in x)
    achieved = f"achieved {at['request_rate']:.4g} req/s over {at['completed']} requests"
    assert achieved in line
    if at["offered_rate"]:
        assert f"offered {at['offered_rate']:.4g} req/s" in line
    assert "half the last bisection step, not a confidence interval" in line
    count = at["tpot_ms"]["count"]
    assert f"  judged: {slo} over {count} values" in lines
    assert at["slo_support"] == [{"slo": slo, "percentile": 50.0, "count": count,
                                  "needed": 10, "enough": count >= 10}]
    warning = f"  warning: {at['label']}: {slo} rests on {count} values, too few"
    assert any(x.startswith(warning) for x in lines) == (count < 10)
    assert achieved in (tmp_path / "bench.html").read_text()
