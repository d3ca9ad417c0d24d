"""Guest login, access tokens, logout, API key, isolation (refresh-token reuse and
rotation: test_refresh_reuse.py)."""

from __future__ import annotations

import time

import httpx2 as httpx
import jwt
from sim_helpers import API_KEY, JWT_SECRET, bearer, login

from indigo_loadtest.simulator.auth import ISSUER

COOKIE = "jan_refresh_token"


def _jwt(secret: str, **claims: object) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "user_x", "iss": ISSUER, "iat": now, "exp": now + 60, **claims},
                      secret, algorithm="HS256")


def _cookie(value: str) -> dict[str, str]:
    """An explicit Cookie header (it takes precedence over the client's jar)."""
    return {"Cookie": f"{COOKIE}={value}"}


def test_guest_login_issues_a_signed_token_and_an_http_only_cookie(http: httpx.Client) -> None:
    resp = http.post("/v1/auth/guest-login", json={})
    assert resp.status_code == 200
    body = resp.json()
    assert body["object"] == "access.token" and body["expires_in"] == 900  # the real names
    claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"], issuer=ISSUER)
    assert claims["exp"] - claims["iat"] == 900
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "Path=/" in cookie
    me = http.get("/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == claims["sub"]
    assert me.json()["object"] == "me"


def test_missing_refresh_cookie_is_401_on_refresh_but_logout_still_clears(sim) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=sim.url, trust_env=False) as fresh:
        assert fresh.get("/v1/auth/refresh-token").status_code == 401
        out = fresh.get("/v1/auth/logout")  # the real server answers 200 whatever it gets
        assert out.status_code == 200 and f"{COOKIE}=" in out.headers["set-cookie"]


def test_logout_revokes_the_refresh_token_and_the_access_token(http: httpx.Client) -> None:
    access = login(http)
    cookie = http.cookies[COOKIE]
    assert http.get("/v1/auth/me", headers=bearer(access)).status_code == 200
    assert http.get("/v1/auth/logout").status_code == 200
    assert http.get("/v1/auth/refresh-token", headers=_cookie(cookie)).status_code == 401
    after = http.get("/v1/auth/me", headers=bearer(access))
    assert after.status_code == 401 and "revoked" in after.json()["error"]


def test_expired_token_and_bad_signature_are_401(http: httpx.Client) -> None:
    expired = _jwt(JWT_SECRET, exp=int(time.time()) - 5)
    forged = _jwt("some-other-secret-also-32-bytes-long")
    for token, reason in ((expired, "expired"), (forged, "invalid")):
        resp = http.get("/v1/conversations", headers=bearer(token))
        assert resp.status_code == 401
        assert reason in resp.json()["error"]
    assert http.get("/v1/conversations").status_code == 401  # no token at all
    valid = _jwt(JWT_SECRET)  # the same secret: accepted
    assert http.get("/v1/conversations", headers=bearer(valid)).status_code == 200


def test_api_key_is_accepted_as_bearer(http: httpx.Client) -> None:
    assert http.get("/v1/conversations", headers=bearer(API_KEY)).status_code == 200
    assert http.get("/v1/conversations", headers=bearer(API_KEY + "x")).status_code == 401


def test_models_are_public_like_the_real_server(http: httpx.Client) -> None:
    for headers in ({}, bearer("not-a-token")):
        listed = http.get("/v1/models", headers=headers)
        assert listed.status_code == 200 and listed.json()["data"][0]["id"] == "jan-v1-4b"
        assert http.get("/v1/conv/models", headers=headers).status_code == 200


def test_version_needs_no_token(http: httpx.Client) -> None:
    resp = http.get("/v1/version")
    assert resp.status_code == 200 and all(isinstance(v, str) for v in resp.json().values())


def test_a_guest_sees_only_its_own_conversations_and_responses(sim) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=sim.url, trust_env=False) as alice, \
            httpx.Client(base_url=sim.url, trust_env=False) as bob:
        a, b = bearer(login(alice)), bearer(login(bob))
        conv = alice.post("/v1/conversations", json={"title": "mine"}, headers=a).json()
        resp = alice.post("/v1/responses", json={"model": "jan-v1-4b", "input": "hi"},
                          headers=a).json()
        for path in (f"/v1/conversations/{conv['id']}", f"/v1/conversations/{conv['id']}/items",
                     f"/v1/responses/{resp['id']}", f"/v1/responses/{resp['id']}/input_items"):
            assert alice.get(path, headers=a).status_code == 200, path
            assert bob.get(path, headers=b).status_code == 404, path
        assert bob.delete(f"/v1/conversations/{conv['id']}", headers=b).status_code == 404
        assert bob.patch(f"/v1/conversations/{conv['id']}", json={"title": "x"},
                         headers=b).status_code == 404
        assert bob.post("/v1/conv/chat/completions", headers=b, json={
            "model": "jan-v1-4b", "conversation": conv["id"], "store": True,
            "messages": [{"role": "user", "content": "hi"}]}).status_code == 404
        listed = bob.get("/v1/conversations", headers=b).json()["data"]
        assert conv["id"] not in [c["id"] for c in listed]
