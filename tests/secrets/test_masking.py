"""The masking functions behind every output: URLs, remembered secrets and their
encoded forms (the end-to-end proof is test_no_secret_leaks.py)."""

from __future__ import annotations

import base64
import secrets
from urllib.parse import quote

import pytest

from indigo_loadtest.http.redact import (
    MASK,
    mask_known,
    mask_secrets,
    mask_text,
    mask_url,
    remember_secrets,
)
from indigo_loadtest.outputs.prometheus_rw import PrometheusRemoteWriteOutput

SECRET_PARAMS = ("key", "api_key", "apikey", "access_token", "token", "password", "secret",
                 "signature", "sig", "API_KEY", "Token", "X-Amz-Signature", "client_secret",
                 "refresh_token", "x-api-key")


@pytest.mark.parametrize("param", SECRET_PARAMS)
def test_secret_query_parameters_are_masked(param: str) -> None:
    url = f"https://h.example/v1/x?page=2&{param}=s3cr3t-value&monkey=1#frag"
    assert mask_url(url) == f"https://h.example/v1/x?page=2&{param}={MASK}&monkey=1#frag"
    assert mask_url(f"/v1/x?{param}=s3cr3t-value") == f"/v1/x?{param}={MASK}"  # a name tag
    assert mask_url(f"https://h/#{param}=s3cr3t-value") == f"https://h/#{param}={MASK}"


def test_userinfo_is_masked_and_other_urls_are_left_alone() -> None:
    assert mask_url("http://me:pa55word@h:8080/x?q=1") == f"http://{MASK}@h:8080/x?q=1"
    assert mask_url("https://ghp_token123@h/") == f"https://{MASK}@h/"
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"
    assert mask_url(f"http://h/sessions/{jwt}/x") == f"http://h/sessions/{MASK}/x"
    for url in ("http://h/x", "http://h/x?page=2&monkey=1&keys=3", "http://h/a@b",
                "/v1/chat/completions"):
        assert mask_url(url) == url


def test_masked_in_free_text_too() -> None:
    text = "ValueError: invalid URL 'http://u:pw@h/x?api_key=abc123': bad port"
    masked = f"ValueError: invalid URL 'http://{MASK}@h/x?api_key={MASK}': bad port"
    assert mask_text(text) == masked
    assert mask_secrets(text) == mask_text(text)


@pytest.mark.parametrize("user", ["rwuser", "u", "ab", ""])
def test_a_remembered_secret_is_masked_plain_encoded_and_inside_base64(user: str) -> None:
    value = "pw-" + secrets.token_urlsafe(12) + "+/&"
    remember_secrets([value])
    basic = base64.b64encode(f"{user}:{value}".encode()).decode()
    urlsafe = base64.urlsafe_b64encode(f"{user}:{value}".encode()).decode().rstrip("=")
    for shown in (value, quote(value, safe=""), basic, urlsafe,
                  base64.b64encode(value.encode()).decode()):
        masked = mask_known(f"echo: {shown} end")
        assert masked == f"echo: {MASK} end", shown  # the whole base64 token, user name too
    # The Basic header an endpoint echoes back, whatever the wording around it.
    assert mask_text(f"got Basic {basic}") == f"got Basic {MASK}"
    assert mask_secrets(f'{{"auth": "{basic}"}}') == f'{{"auth": "{MASK}"}}'


def test_numbers_short_values_and_flags_are_not_remembered() -> None:
    remember_secrets(["604800", "abc", "true", "", None])
    assert mask_known("ttl 604800 abc true") == "ttl 604800 abc true"


def test_the_runs_own_text_keeps_its_words() -> None:
    # The summary and the tool's messages: only credentials go, not the words around them.
    line = "✓ refresh token status 200 | Basic flow | Token budget"
    assert mask_secrets(line) == line


def test_the_remote_write_url_is_shown_without_its_credentials() -> None:
    out = PrometheusRemoteWriteOutput.from_config(
        {}, "https://me:pa55-word@h.example/api/v1/write?api_key=k3y-value")
    for text in (out.description(), out.summary_line()):
        assert "pa55-word" not in text and "k3y-value" not in text
        assert "https://h.example/api/v1/write?api_key=[MASKED]" in text
