"""Shared constants and small helpers of the simulator tests."""

from __future__ import annotations

import httpx2 as httpx  # the HTTP client the openai package ships with

API_KEY = "sim-test-key"
JWT_SECRET = "sim-test-jwt-secret-of-at-least-32-bytes"
# Fast but non-zero timings, so the suite stays quick while streams still pace.
FAST = {"ttft_ms": 5, "tokens_per_sec": 2000, "reply_tokens": 12}


def login(client: httpx.Client) -> str:
    resp = client.post("/v1/auth/guest-login", json={})
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
