"""Helpers of the bench tests."""

from __future__ import annotations

import socket
from pathlib import Path

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
