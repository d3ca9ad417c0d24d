"""Secret masking for everything the tool prints or writes.

Tokens, API keys, passwords and cookies must never reach a terminal, a log or a
result file. `mask_headers` handles header mappings (names are matched without
regard to case); `mask_text` handles free text such as bodies, URLs and messages;
`mask_url` handles one URL (the `url` and `name` tags of every request). Secret values
the run knows (`remember_secrets`: API_KEY, LOADTEST_TOKEN, the remote-write password...)
are masked wherever they appear, as are their base64 and percent-encoded forms.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any, overload
from urllib.parse import quote, quote_plus

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


# A query or fragment parameter that carries a credential: the usual names (key, api_key,
# apikey, token, access_token, password, secret, signature, sig...) and any name ending in
# one of them after a separator (x-amz-signature, client_secret, refresh_token).
_URL_PARAM = re.compile(
    r"([?&#](?:[\w.\-]*(?:token|secret|password|passwd|signature|credential)"
    r"|(?:[\w.\-]*[_.\-])?(?:key|apikey|pwd|sig|auth|jwt))=)[^&#\s'\"<>]+",
    re.IGNORECASE,
)
# user:password@ (or a lone token@) in a URL's authority; greedy to the authority's last @.
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.\-]*://)[^/?#\s'\"<>]+@", re.IGNORECASE)
# Shorter remembered values would mask ordinary words and numbers.
MIN_SECRET_LEN = 6
# A base64 fragment shorter than this could match by chance.
_MIN_B64_CORE = 6
_known: set[str] = set()
_known_re: re.Pattern[str] | None = None
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")
_B64_CHARS_PADDED = _B64_CHARS | {"="}
_CACHE_LIMIT = 20_000
_url_cache: dict[str, str] = {}


def _base64_cores(raw: bytes) -> set[str]:
    """The part of any base64 text that encodes `raw`, for its 3 possible alignments.

    `raw` inside a longer byte string (`user:password` in a Basic header) is encoded
    differently depending on its offset modulo 3; for each offset, the characters
    that come from `raw`'s bits alone are the same whatever surrounds it."""
    cores = set()
    for shift in range(3):
        enc = base64.b64encode(bytes(shift) + raw).decode()
        start = -(-8 * shift // 6)  # the first character with no bit of the prefix
        end = 8 * (shift + len(raw)) // 6  # past the last character made of raw only
        core = enc[start:end]
        if len(core) >= _MIN_B64_CORE:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))  # the URL-safe alphabet
    return cores


def _alternation(forms: Iterable[str]) -> str:
    # Longest first, so a value is masked whole rather than around a shorter one.
    return "|".join(map(re.escape, sorted(forms, key=len, reverse=True)))


def _could_be_secret(value: str | None) -> bool:
    # A number or a yes/no under a secret-looking name (TOKEN_EXPIRY_S=604800) is a
    # setting: masking it would hide ordinary figures in the summary.
    if not value or len(value.strip()) < MIN_SECRET_LEN:
        return False
    try:
        float(value)
    except ValueError:
        return value.strip().lower() not in ("true", "false")
    return False


def remember_secrets(values: Iterable[str | None]) -> None:
    """Mask these values in everything printed or written from now on: as they are,
    percent-encoded, and inside base64 text. Values shorter than MIN_SECRET_LEN
    characters, and numbers, are ignored (they would mask ordinary words and figures)."""
    global _known_re
    new = {v for v in values if _could_be_secret(v)} - _known
    if not new:
        return
    _known.update(new)
    plain = set().union(*({v, quote(v, safe=""), quote_plus(v, safe="")} for v in _known))
    encoded = set().union(*(_base64_cores(v.encode("utf-8")) for v in _known))
    pattern = f"(?P<plain>{_alternation(plain)})"
    if encoded:
        pattern += f"|(?P<b64>{_alternation(encoded)})"
    _known_re = re.compile(pattern)
    _url_cache.clear()


def mask_known(text: str) -> str:
    """`text` with every remembered secret masked; a base64 token that encodes one is
    masked whole (what surrounds the secret in it, e.g. the user name, goes too)."""
    if _known_re is None or not text:
        return text
    out: list[str] = []
    done = 0
    for m in _known_re.finditer(text):
        start, end = m.span()
        if start < done:
            continue  # inside a base64 token already masked
        if m.lastgroup == "b64":
            while start > done and text[start - 1] in _B64_CHARS:
                start -= 1
            while end < len(text) and text[end] in _B64_CHARS_PADDED:
                end += 1
        out.append(text[done:start])
        out.append(MASK)
        done = end
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def mask_url(url: str) -> str:
    """`url` with secret query/fragment parameters, user:password@, JWTs and remembered
    secrets masked. Cheap on the hot path: a URL with no `?`, `#`, `@` or JWT is returned
    as is when no secret is remembered, and results are cached."""
    has_params = "?" in url or "#" in url
    has_userinfo = "@" in url
    has_jwt = "eyJ" in url
    if _known_re is None and not (has_params or has_userinfo or has_jwt):
        return url
    masked = _url_cache.get(url)
    if masked is None:
        masked = _URL_PARAM.sub(_keep_name, url) if has_params else url
        if has_userinfo:
            masked = _URL_USERINFO.sub(_keep_scheme, masked)
        if has_jwt:
            masked = _JWT.sub(MASK, masked)
        masked = mask_known(masked)
        if len(_url_cache) >= _CACHE_LIMIT:
            _url_cache.clear()
        _url_cache[url] = masked
    return masked


def _keep_name(m: re.Match[str]) -> str:
    return m.group(1) + MASK


def _keep_scheme(m: re.Match[str]) -> str:
    return m.group(1) + MASK + "@"


def mask_secrets(text: str) -> str:
    """`text` with URL credentials, JWTs and remembered secrets masked: for text the tool
    composes itself (the summary, its own messages), where the looser patterns of
    `mask_text` would also hit ordinary words ("refresh token status 200")."""
    if not text:
        return text
    text = _URL_PARAM.sub(_keep_name, _URL_USERINFO.sub(_keep_scheme, text))
    return mask_known(_JWT.sub(MASK, text))


def mask_strings(doc: Any) -> Any:
    """A copy of a JSON document with every string in it, keys too, through
    `mask_secrets`: what a result file or a page shows of names the run was given (a check,
    a group, a tag, a scenario) whatever they hold. Numbers and the rest are kept as is."""
    if isinstance(doc, str):
        return mask_secrets(doc)
    if isinstance(doc, dict):
        return {mask_strings(k): mask_strings(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):  # a series' column of numbers: no call per number
        return [mask_strings(v) if isinstance(v, str | dict | list | tuple) else v
                for v in doc]
    return doc


def mask_text(text: str) -> str:
    """`text` with remembered secrets, secret JSON fields, key=value pairs, URL credentials,
    Bearer/Basic tokens and JWTs masked."""
    if not text:
        return text
    text = _URL_USERINFO.sub(_keep_scheme, text)
    text = _URL_PARAM.sub(_keep_name, text)
    text = _HEADER_LINE.sub(lambda m: m.group(1) + MASK, text)
    text = _JSON_FIELD.sub(lambda m: m.group(1) + '"' + MASK + '"', text)
    text = _PAIR_FIELD.sub(lambda m: m.group(1) + MASK, text)
    text = _BEARER.sub(lambda m: m.group(1) + " " + MASK, text)
    # Last: the patterns above keep names and structure; this catches the rest.
    return mask_known(_JWT.sub(MASK, text))


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
