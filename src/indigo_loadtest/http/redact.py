"""Secret masking for everything the tool prints or writes.

Tokens, API keys, passwords and cookies must never reach a terminal, a log or a
result file. `mask_headers` handles header mappings (names are matched without
regard to case); `mask_text` handles free text such as bodies, URLs and messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import overload

MASK = "[MASKED]"

SECRET_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie",
    "x-loadtest-token", "x-api-key", "api-key",
})

_SECRET_FIELDS = r"access_token|refresh_token|id_token|token|api_key|apikey|password|client_secret"

# "field": "value" in JSON (escaped quotes inside the value included).
_JSON_FIELD = re.compile(r'("(?:' + _SECRET_FIELDS + r')"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE)
# field=value in query strings, form bodies and cookie strings.
_PAIR_FIELD = re.compile(
    r"(?<![\w-])((?:jan_refresh_token|" + _SECRET_FIELDS + r")=)[^&\s;,\"']+", re.IGNORECASE
)
_BEARER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)
# A JWT anywhere (three base64url parts, the first a JSON header).
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
# "Header: value" lines in free text (e.g. a pasted request).
_HEADER_LINE = re.compile(
    r"(?im)^(\s*(?:" + "|".join(sorted(SECRET_HEADERS)) + r")\s*:\s*).+$"
)


def mask_text(text: str) -> str:
    """`text` with secret JSON fields, key=value pairs, Bearer tokens and JWTs masked."""
    if not text:
        return text
    text = _HEADER_LINE.sub(lambda m: m.group(1) + MASK, text)
    text = _JSON_FIELD.sub(lambda m: m.group(1) + '"' + MASK + '"', text)
    text = _PAIR_FIELD.sub(lambda m: m.group(1) + MASK, text)
    text = _BEARER.sub(lambda m: m.group(1) + " " + MASK, text)
    return _JWT.sub(MASK, text)


def _mask_cookie_list(value: str) -> str:
    # "a=1; b=2" -> "a=[MASKED]; b=[MASKED]": names stay readable for debugging.
    parts = []
    for part in value.split(";"):
        name, sep, _ = part.partition("=")
        parts.append(f"{name}={MASK}" if sep else part)
    return ";".join(parts)


def _mask_set_cookie(value: str) -> str:
    # Only the cookie's own value is secret; attributes (Path, Expires...) stay.
    first, sep, attrs = value.partition(";")
    name, eq, _ = first.partition("=")
    return f"{name}={MASK}{sep}{attrs}" if eq else MASK


def mask_header_value(name: str, value: str) -> str:
    """One header's value, masked if the header carries a secret."""
    lname = name.lower()
    if lname not in SECRET_HEADERS:
        return mask_text(value)
    if lname == "cookie":
        return _mask_cookie_list(value)
    if lname == "set-cookie":
        return _mask_set_cookie(value)
    scheme, sep, _ = value.strip().partition(" ")
    if sep and lname in ("authorization", "proxy-authorization"):
        return f"{scheme} {MASK}"
    return MASK


@overload
def mask_headers(headers: Mapping[str, str]) -> dict[str, str]: ...
@overload
def mask_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]: ...


def mask_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> dict[str, str] | list[tuple[str, str]]:
    """A copy of `headers` (a mapping, or (name, value) pairs) with secret values masked."""
    if isinstance(headers, Mapping):
        return {str(k): mask_header_value(str(k), str(v)) for k, v in headers.items()}
    return [(str(k), mask_header_value(str(k), str(v))) for k, v in headers]
