"""Deterministic, plausible model output and the simulator's notion of a token.

A *token* is a word piece: optional leading whitespace followed by a run of non-space
characters (`re.findall(r"\\s*\\S+", text)`). Replies are streamed one token per delta,
so `usage.completion_tokens` equals the number of content (or tool-argument) deltas.
Prompt tokens are counted the same way over every text in the request.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable
from typing import Any

_PIECE = re.compile(r"\s*\S+")

_CORPUS_TEXT = (
    "Sure, here is a short answer. Large language models generate text one token at a "
    "time, so the first token arrives after the prompt is processed and the rest follow "
    "at a steady pace. Under load, requests wait for a free generation slot, which adds "
    "queueing delay before the first token. Batching many streams together keeps the "
    "accelerator busy, but each stream then decodes a little slower. To measure a chat "
    "service well, track the time to first token, the interval between tokens, the total "
    "time of each request, and the error rate, and watch how they change as the number "
    "of concurrent users grows. A healthy service keeps its tail latency stable until it "
    "reaches saturation, then the queue grows and latency rises quickly. I hope this "
    "helps; let me know if you would like more detail on any of these points."
)
_CORPUS = _CORPUS_TEXT.split()

# Words in the last user message that make a model with a function tool call it.
TOOL_TRIGGERS = ("search", "look up", "lookup", "find", "weather", "latest", "news", "google")


def pieces(text: str) -> list[str]:
    """Split text into tokens (word pieces); "".join(pieces(t)) == t.strip()-ish."""
    return _PIECE.findall(text)


def count_tokens(texts: Iterable[str]) -> int:
    return sum(len(_PIECE.findall(t)) for t in texts)


def reply_tokens(prompt: str, n: int) -> list[str]:
    """n tokens of plausible text, chosen by the prompt so equal prompts get equal replies."""
    start = zlib.crc32(prompt.encode()) % len(_CORPUS)
    words = [_CORPUS[(start + i) % len(_CORPUS)] for i in range(n)]
    if words:
        words[0] = words[0][:1].upper() + words[0][1:]
    return [words[0], *(" " + w for w in words[1:])] if words else []


def texts_of(value: Any, depth: int = 0) -> list[str]:
    """Every text inside a message content / Responses input (strings, parts, items)."""
    if depth > 8:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for v in value for t in texts_of(v, depth + 1)]
    if isinstance(value, dict):
        out: list[str] = []
        for key in ("content", "text", "input_text", "output", "arguments", "value"):
            if key in value:
                out += texts_of(value[key], depth + 1)
        return out
    return []


def wants_tool(prompt: str) -> bool:
    lowered = prompt.lower()
    return any(word in lowered for word in TOOL_TRIGGERS)


def function_tools(tools: Any) -> list[dict[str, Any]]:
    """The function definitions of a `tools` list, in both the chat and Responses forms."""
    found: list[dict[str, Any]] = []
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        if isinstance(fn.get("name"), str) and fn["name"]:
            found.append(fn)
    return found


def choose_tool(tools: Any, tool_choice: Any, prompt: str) -> dict[str, Any] | None:
    """The deterministic rule: call a function tool when tool_choice forces one, or when
    tool_choice allows it ("auto"/absent) and the prompt asks to search/find/look up."""
    fns = function_tools(tools)
    if not fns or tool_choice == "none":
        return None
    if isinstance(tool_choice, dict):
        name = tool_choice.get("name") or (tool_choice.get("function") or {}).get("name")
        for fn in fns:
            if fn["name"] == name:
                return fn
    if tool_choice == "required" or wants_tool(prompt):
        return fns[0]
    return None


def tool_arguments(fn: dict[str, Any], prompt: str) -> str:
    """JSON arguments: the prompt for the required string parameters (or the first one)."""
    params = fn.get("parameters") if isinstance(fn.get("parameters"), dict) else {}
    props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
    required = [p for p in params.get("required") or () if isinstance(p, str) and p in props]
    names = required or list(props)[:1]
    args: dict[str, Any] = {}
    for name in names:
        kind = props[name].get("type") if isinstance(props[name], dict) else None
        if kind == "integer" or kind == "number":
            args[name] = 5
        elif kind == "boolean":
            args[name] = True
        else:
            args[name] = prompt.strip()[:200] or "query"
    return json.dumps(args)  # spaced separators, so the arguments stream as several tokens
