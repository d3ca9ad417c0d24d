"""Refresh tokens: reusable until they expire by default, as the real Jan server's
stateless ones (a script that works against it works against the simulator); with
`--refresh-rotation`, spent when used, and a spent one presented again revokes its
session (OAuth's reuse detection)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2 as httpx
import pytest
from sim_helpers import FAST, bearer, login
from test_auth import COOKIE, _cookie

from indigo_loadtest.simulator.process import SimulatorProcess, start_simulator_process


@pytest.fixture(scope="module")
def strict_sim() -> Iterator[SimulatorProcess]:
    proc = start_simulator_process(refresh_rotation=True, **FAST)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def strict(strict_sim: SimulatorProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=strict_sim.url, trust_env=False, timeout=10) as client:
        yield client


def test_a_refresh_token_may_be_reused_as_on_the_real_server(http: httpx.Client) -> None:
    login(http)
    first = http.cookies[COOKIE]
    resp = http.get("/v1/auth/refresh-token")
    assert resp.status_code == 200 and http.cookies[COOKIE] != first  # a new one is set
    second, access = http.cookies[COOKIE], resp.json()["access_token"]
    again = http.get("/v1/auth/refresh-token", headers=_cookie(first))
    assert again.status_code == 200, again.text  # the earlier token still refreshes
    for token in (second, http.cookies[COOKIE]):  # and its session was not revoked
        assert http.get("/v1/auth/refresh-token", headers=_cookie(token)).status_code == 200
    assert http.get("/v1/auth/me", headers=bearer(access)).status_code == 200


def test_logout_still_ends_the_session(http: httpx.Client) -> None:
    login(http)
    cookie = http.cookies[COOKIE]
    assert http.get("/v1/auth/refresh-token").status_code == 200
    assert http.get("/v1/auth/logout").status_code == 200
    assert http.get("/v1/auth/refresh-token", headers=_cookie(cookie)).status_code == 401


def test_with_rotation_a_used_refresh_token_is_refused(strict: httpx.Client) -> None:
    login(strict)
    first = strict.cookies[COOKIE]
    resp = strict.get("/v1/auth/refresh-token")
    assert resp.status_code == 200 and resp.json()["access_token"]
    second = strict.cookies[COOKIE]
    assert second != first
    assert strict.get("/v1/auth/refresh-token").status_code == 200  # the jar holds `second`
    third = strict.cookies[COOKIE]
    reused = strict.get("/v1/auth/refresh-token", headers=_cookie(first))
    assert reused.status_code == 401
    assert set(reused.json()) == {"code", "error"}
    # Reuse detection: the spent token's whole family is revoked, its successor too.
    assert strict.get("/v1/auth/refresh-token", headers=_cookie(third)).status_code == 401


def test_reusing_a_spent_refresh_token_revokes_the_new_one_and_its_access_token(
        strict: httpx.Client) -> None:
    login(strict)
    stolen = strict.cookies[COOKIE]
    fresh = strict.get("/v1/auth/refresh-token")
    new_access, new_refresh = fresh.json()["access_token"], strict.cookies[COOKIE]
    assert strict.get("/v1/auth/me", headers=bearer(new_access)).status_code == 200
    assert strict.get("/v1/auth/refresh-token", headers=_cookie(stolen)).status_code == 401
    assert strict.get("/v1/auth/refresh-token", headers=_cookie(new_refresh)).status_code == 401
    assert strict.get("/v1/auth/me", headers=bearer(new_access)).status_code == 401
    # Another guest's session is untouched.
    with httpx.Client(base_url=str(strict.base_url), trust_env=False) as other:
        assert other.get("/v1/auth/me", headers=bearer(login(other))).status_code == 200
