"""With --db FILE, everything acknowledged survives a restart (even a SIGKILL)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx2 as httpx
from sim_helpers import bearer, login

from indigo_loadtest.simulator.process import start_simulator_process


def test_state_survives_a_killed_server(tmp_path: Path) -> None:
    db = str(tmp_path / "sim.db")
    with start_simulator_process(db=db, ttft_ms=0, tokens_per_sec=0) as first, \
            httpx.Client(base_url=first.url, trust_env=False) as client:
        token = login(client)
        refresh = client.cookies["jan_refresh_token"]
        auth = bearer(token)
        conv = client.post("/v1/conversations", headers=auth, json={"title": "kept"}).json()
        client.post("/v1/conv/chat/completions", headers=auth, json={
            "model": "jan-v1-4b", "conversation": conv["id"], "store": True,
            "messages": [{"role": "user", "content": "remember me"}]})
        resp = client.post("/v1/responses", headers=auth,
                           json={"model": "jan-v1-4b", "input": "kept too"}).json()
        first.proc.kill()  # no clean shutdown: only committed writes can survive
        first.proc.wait()
    stored = b"".join(f.read_bytes() for f in tmp_path.iterdir())  # the db and its WAL
    assert refresh.encode() not in stored and token.encode() not in stored
    with start_simulator_process(db=db) as second, \
            httpx.Client(base_url=second.url, trust_env=False) as client:
        # The same signing secret (kept in the database): the old access token still works.
        assert client.get("/v1/auth/me", headers=auth).status_code == 200
        assert client.get(f"/v1/conversations/{conv['id']}", headers=auth).json()["title"] == "kept"
        items = client.get(f"/v1/conversations/{conv['id']}/items", headers=auth).json()
        assert items["total"] == 2
        got = client.get(f"/v1/responses/{resp['id']}", headers=auth).json()
        assert got["output"] == resp["output"]
        refreshed = client.get("/v1/auth/refresh-token",
                               headers={"Cookie": f"jan_refresh_token={refresh}"})
        assert refreshed.status_code == 200


def test_default_database_is_in_memory(tmp_path: Path) -> None:
    with start_simulator_process() as first, \
            httpx.Client(base_url=first.url, trust_env=False) as client:
        auth = bearer(login(client))
        conv = client.post("/v1/conversations", headers=auth, json={}).json()
    with start_simulator_process() as second, \
            httpx.Client(base_url=second.url, trust_env=False) as client:
        assert client.get(f"/v1/conversations/{conv['id']}", headers=auth).status_code == 401
        fresh = bearer(login(client))
        assert client.get(f"/v1/conversations/{conv['id']}", headers=fresh).status_code == 404
    assert list(tmp_path.iterdir()) == []


def test_a_logged_out_session_stays_revoked_after_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "sim.db")
    with start_simulator_process(db=db) as first, \
            httpx.Client(base_url=first.url, trust_env=False) as client:
        token = login(client)
        refresh = client.cookies["jan_refresh_token"]
        assert client.get("/v1/auth/logout").status_code == 200
    with start_simulator_process(db=db) as second, \
            httpx.Client(base_url=second.url, trust_env=False) as client:
        assert client.get("/v1/auth/me", headers=bearer(token)).status_code == 401
        assert client.get("/v1/auth/refresh-token",
                          headers={"Cookie": f"jan_refresh_token={refresh}"}).status_code == 401


def test_a_database_from_before_token_families_still_opens(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as con:  # the refresh_tokens table as earlier versions made it
        con.execute("CREATE TABLE refresh_tokens (token TEXT PRIMARY KEY, user_id TEXT NOT NULL,"
                    " expires_at REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0)")
    with start_simulator_process(db=str(db)) as sim, \
            httpx.Client(base_url=sim.url, trust_env=False) as client:
        login(client)
        assert client.get("/v1/auth/refresh-token").status_code == 200
