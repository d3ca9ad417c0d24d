"""TLS with a self-signed certificate, the cookie jar, and secret masking in DEBUG output."""

from __future__ import annotations

import time
from typing import Any

import pytest
from http_servers import metric_sinks, run, with_client

from indigo_loadtest.http import Client, CookieJar, mask_headers, mask_text
from indigo_loadtest.http.cookie_jar import parse_set_cookie
from indigo_loadtest.metrics import Registry

# --- TLS ---------------------------------------------------------------------------------
pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


def test_self_signed_certificate_is_rejected_by_default(tls_server: Any) -> None:
    reg = Registry()
    resp = run(with_client(lambda c: c.get(f"{tls_server.url}/hello"), reg))
    assert (resp.status, resp.error_code) == (0, 1310)
    assert "unknown authority" in resp.error
    [sink] = metric_sinks(reg, "http_req_failed").values()
    assert sink.trues == 1


def test_insecure_skip_tls_verify_accepts_it_and_times_the_handshake(tls_server: Any) -> None:
    async def go(c: Client) -> list[Any]:
        return [await c.get(f"{tls_server.url}/peer"), await c.get(f"{tls_server.url}/peer")]

    first, second = run(with_client(go, insecure_skip_tls_verify=True))
    assert first.status == 200 and first.timings.tls_handshaking > 0
    assert first.timings.connecting > 0
    assert second.text == first.text and second.timings.tls_handshaking == 0


def test_trusted_ca_verifies_the_certificate(tls_ca: Any, tls_server: Any,
                                             tmp_path: Any, monkeypatch: Any) -> None:
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    port = tls_server.port

    async def go(c: Client) -> list[Any]:
        return [await c.get(f"https://localhost:{port}/hello"),
                await c.get(f"https://127.0.0.1:{port}/hello")]

    by_name, by_ip = run(with_client(go))
    assert by_name.status == 200 and by_name.body == b"hello"
    assert by_ip.status == 200


# --- cookies ----------------------------------------------------------------------------
def test_cookies_round_trip_through_the_jar(server: Any) -> None:
    async def go(c: Client) -> dict[str, Any]:
        u = server.url
        await c.get(f"{u}/cookies/set?name=session&value=abc")
        await c.get(f"{u}/cookies/set?name=deep&value=1&path=/cookies/sub")
        out = {
            "root": (await c.get(f"{u}/cookies")).text,
            "sub": (await c.get(f"{u}/cookies/sub/show")).text,
            "override": (await c.get(f"{u}/cookies", cookies={"session": "x", "extra": "y"})).text,
            "jar": c.cookies.get("session"),
            "for_url": c.cookies.for_url(f"{u}/cookies/sub/show"),
        }
        await c.get(f"{u}/cookies/set?name=session&value=gone&max_age=0")
        out["after_delete"] = (await c.get(f"{u}/cookies")).text
        c.cookies.set(u, "manual", "m")
        out["manual"] = (await c.get(f"{u}/cookies")).text
        return out

    out = run(with_client(go))
    assert out["root"] == "session=abc"
    assert out["sub"] == "deep=1; session=abc"  # longest path first
    assert out["override"] == "session=x; extra=y"
    assert out["jar"] == "abc"
    assert out["for_url"] == {"deep": "1", "session": "abc"}
    assert out["after_delete"] == ""
    assert out["manual"] == "manual=m"


def test_each_client_has_its_own_jar(server: Any) -> None:
    async def go(c: Client) -> str:
        await c.get(f"{server.url}/cookies/set?name=a&value=1")
        other = Client(Registry())
        try:
            return (await other.get(f"{server.url}/cookies")).text
        finally:
            await other.close()

    assert run(with_client(go)) == ""


def test_set_cookie_attributes() -> None:
    now = time.time()
    c = parse_set_cookie("id=42; Domain=.Example.com; Path=/api; Secure; HttpOnly; "
                         "Expires=Wed, 21 Oct 2099 07:28:00 GMT", "www.example.com", "/x", now)
    assert c is not None
    assert (c.name, c.value, c.domain, c.path, c.host_only, c.secure, c.http_only) == (
        "id", "42", "example.com", "/api", False, True, True)
    assert c.expires is not None and c.expires > now
    assert c.matches("api.example.com", "/api/v1", secure=True)
    assert not c.matches("api.example.com", "/api/v1", secure=False)  # Secure
    assert not c.matches("example.org", "/api", secure=True)
    assert not c.matches("api.example.com", "/apix", secure=True)
    # Max-Age wins over Expires; no Path: the request's directory.
    c2 = parse_set_cookie("t=1; Max-Age=60; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
                          "h", "/a/b", now)
    assert c2 is not None and c2.expires == pytest.approx(now + 60) and c2.path == "/a"
    assert c2.host_only and not c2.matches("sub.h", "/a", secure=False)
    # A server may not set a cookie for another site.
    assert parse_set_cookie("x=1; Domain=evil.com", "example.com", "/", now) is None


def test_expired_cookies_are_not_sent() -> None:
    jar = CookieJar()
    jar.update_from_response(["old=1; Expires=Thu, 01 Jan 1970 00:00:01 GMT", "new=2"],
                             "h", "/")
    assert jar.header_for("h", "/", secure=False) == "new=2" and len(jar) == 1
    jar.clear()
    assert not jar


# --- masking ----------------------------------------------------------------------------
def test_mask_headers() -> None:
    masked = mask_headers({
        "Authorization": "Bearer abc.def", "Cookie": "jan_refresh_token=r1; theme=dark",
        "Set-Cookie": "jan_refresh_token=r2; Path=/; HttpOnly", "X-LoadTest-Token": "lt",
        "x-api-key": "k", "API-Key": "k2", "Proxy-Authorization": "Basic zzz",
        "Content-Type": "application/json",
    })
    assert masked == {
        "Authorization": "Bearer [MASKED]", "Cookie": "jan_refresh_token=[MASKED]; theme=[MASKED]",
        "Set-Cookie": "jan_refresh_token=[MASKED]; Path=/; HttpOnly",
        "X-LoadTest-Token": "[MASKED]", "x-api-key": "[MASKED]", "API-Key": "[MASKED]",
        "Proxy-Authorization": "Basic [MASKED]", "Content-Type": "application/json",
    }
    assert mask_headers([("cookie", "a=1"), ("X", "y")]) == [("cookie", "a=[MASKED]"),
                                                             ("X", "y")]


def test_mask_text() -> None:
    text = ('{"access_token": "A1", "refresh_token":"R\\"2", "token": "T3", "api_key": "K4", '
            '"password": "P5", "max_tokens": 100} Authorization: Bearer eyJhbGc.eyJzdWI.sig '
            "cookie jan_refresh_token=R6; other=ok url ?api_key=K7&x=1")
    masked = mask_text(text)
    for secret in ("A1", 'R\\"2', "T3", "K4", "P5", "eyJhbGc", "R6", "K7"):
        assert secret not in masked, secret
    assert '"max_tokens": 100' in masked and "other=ok" in masked and "x=1" in masked
    assert mask_text("") == "" and mask_text("nothing secret") == "nothing secret"


def test_debug_output_masks_every_secret(server: Any, capsys: Any) -> None:
    async def go(c: Client) -> Any:
        await c.post(f"{server.url}/secrets", json={"password": "pw-SECRET-1"},
                     headers={"Authorization": "Bearer tok-BEARER-789", "x-api-key": "KEY-1"})
        return await c.get(f"{server.url}/cookies")

    resp = run(with_client(go, debug=True, headers={"x-loadtest-token": "LT-TOKEN-0"}))
    assert resp.text == "jan_refresh_token=tok-REFRESH-456"  # the secret was really sent
    captured = capsys.readouterr()
    out = captured.err  # on stderr: the summary on stdout stays clean
    assert "> POST" not in captured.out
    assert f"> POST {server.url}/secrets" in out and "< 200" in out
    assert '"expires_in": 900' in out  # bodies are shown...
    for secret in ("tok-ACCESS-123", "tok-REFRESH-456", "tok-BEARER-789", "pw-SECRET-1",
                   "KEY-1", "LT-TOKEN-0"):
        assert secret not in out, secret  # ...with their secrets masked
    assert out.count("[MASKED]") >= 6
