"""SQLite persistence: users, refresh tokens, conversations, items, responses.

Every write is committed before the handler answers, so whatever the server
acknowledged survives a restart (WAL with synchronous=NORMAL is durable against a
process crash). Calls are synchronous: each is a few tens of microseconds, which is
cheaper than handing them to a thread.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS refresh_tokens (
  token TEXT PRIMARY KEY, user_id TEXT NOT NULL, expires_at REAL NOT NULL,
  used INTEGER NOT NULL DEFAULT 0, family TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS revoked_families (family TEXT PRIMARY KEY, revoked_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, user_id TEXT NOT NULL,
  body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_user ON conversations (user_id, seq);
CREATE TABLE IF NOT EXISTS items (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
  conversation_id TEXT NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS items_conversation ON items (conversation_id, seq);
CREATE TABLE IF NOT EXISTS responses (
  id TEXT PRIMARY KEY, user_id TEXT NOT NULL, body BLOB NOT NULL, input_items BLOB NOT NULL);
"""


def _digest(token: str) -> str:
    """Refresh tokens are kept as digests: the database never holds a usable one."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_id(prefix: str) -> str:
    """A random id for stored objects (unique across restarts)."""
    return f"{prefix}_{secrets.token_hex(12)}"


_RUN = secrets.token_hex(6)
_SERIAL = itertools.count(1)


def fast_id(prefix: str, sep: str = "-") -> str:
    """A cheap unique id for objects that are never stored (completions, tool calls)."""
    return f"{prefix}{sep}{_RUN}{next(_SERIAL):012x}"


@dataclass(frozen=True)
class RefreshToken:
    """A stored refresh token: its user, its login session (family), whether it is spent."""

    user_id: str
    family: str
    used: bool
    expires_at: float


@dataclass(frozen=True)
class Page:
    """One page of a cursor-paginated list."""

    data: list[dict[str, Any]]
    has_more: bool


class Store:
    """The simulator's database (one connection, used from the event loop thread)."""

    def __init__(self, path: str = ":memory:") -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(refresh_tokens)")}
        if "family" not in columns:  # a database written before token families existed
            self.db.execute("ALTER TABLE refresh_tokens ADD COLUMN family TEXT NOT NULL "
                            "DEFAULT ''")

    def close(self) -> None:
        self.db.close()

    # --- meta -------------------------------------------------------------------------

    def setting(self, key: str, make: Any) -> str:
        """A persistent value, created by `make()` the first time."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row:
            return row[0]
        value = make()
        self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        return value

    # --- users and refresh tokens -----------------------------------------------------

    def create_user(self, user_id: str, name: str, email: str) -> None:
        self.db.execute("INSERT INTO users (id, name, email, created_at) VALUES (?,?,?,?)",
                        (user_id, name, email, int(time.time())))

    def user(self, user_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT id, name, email FROM users WHERE id=?",
                              (user_id,)).fetchone()
        return {"id": row[0], "name": row[1], "email": row[2]} if row else None

    def add_refresh_token(self, token: str, user_id: str, expires_at: float,
                          family: str = "") -> None:
        self.db.execute(
            "INSERT INTO refresh_tokens (token, user_id, expires_at, family) VALUES (?,?,?,?)",
            (_digest(token), user_id, expires_at, family))

    def refresh_token(self, token: str) -> RefreshToken | None:
        row = self.db.execute(
            "SELECT user_id, family, used, expires_at FROM refresh_tokens WHERE token=?",
            (_digest(token),)).fetchone()
        return RefreshToken(row[0], row[1], bool(row[2]), row[3]) if row else None

    def spend_refresh_token(self, token: str) -> None:
        self.db.execute("UPDATE refresh_tokens SET used=1 WHERE token=?", (_digest(token),))

    def revoke_family(self, family: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO revoked_families (family, revoked_at) "
                        "VALUES (?, ?)", (family, time.time()))

    def revoked_families(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT family FROM revoked_families")}

    # --- conversations ----------------------------------------------------------------

    def put_conversation(self, conv: dict[str, Any], user_id: str) -> None:
        self.db.execute(
            "INSERT INTO conversations (id, user_id, body) VALUES (?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET body=excluded.body",
            (conv["id"], user_id, orjson.dumps(conv)))

    def conversation(self, conv_id: str, user_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT body FROM conversations WHERE id=? AND user_id=?",
                              (conv_id, user_id)).fetchone()
        return orjson.loads(row[0]) if row else None

    def delete_conversation(self, conv_id: str, user_id: str) -> bool:
        with self.db:
            self.db.execute("BEGIN")
            deleted = self.db.execute("DELETE FROM conversations WHERE id=? AND user_id=?",
                                      (conv_id, user_id)).rowcount
            if deleted:
                self.db.execute("DELETE FROM items WHERE conversation_id=?", (conv_id,))
        return bool(deleted)

    def list_conversations(self, user_id: str, limit: int, after: str | None,
                           descending: bool) -> Page:
        return self._page("conversations", "user_id", user_id, limit, after, descending)

    # --- items ------------------------------------------------------------------------

    def add_items(self, conv_id: str, items: Iterable[dict[str, Any]]) -> bool:
        """Add items to a conversation; False (nothing written) when it no longer exists,
        so a write that finishes after the conversation was deleted leaves no orphans."""
        with self.db:
            self.db.execute("BEGIN")
            if self.db.execute("SELECT 1 FROM conversations WHERE id=?",
                               (conv_id,)).fetchone() is None:
                return False
            self.db.executemany("INSERT INTO items (id, conversation_id, body) VALUES (?,?,?)",
                                [(i["id"], conv_id, orjson.dumps(i)) for i in items])
        return True

    def item(self, conv_id: str, item_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT body FROM items WHERE id=? AND conversation_id=?",
                              (item_id, conv_id)).fetchone()
        return orjson.loads(row[0]) if row else None

    def delete_item(self, conv_id: str, item_id: str) -> bool:
        return bool(self.db.execute("DELETE FROM items WHERE id=? AND conversation_id=?",
                                    (item_id, conv_id)).rowcount)

    def list_items(self, conv_id: str, limit: int, after: str | None,
                   descending: bool) -> Page:
        return self._page("items", "conversation_id", conv_id, limit, after, descending)

    def count_items(self, conv_id: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM items WHERE conversation_id=?",
                               (conv_id,)).fetchone()[0]

    # --- responses --------------------------------------------------------------------

    def put_response(self, resp: dict[str, Any], user_id: str,
                     input_items: list[dict[str, Any]] | None = None) -> None:
        if input_items is None:
            self.db.execute("UPDATE responses SET body=? WHERE id=?",
                            (orjson.dumps(resp), resp["id"]))
        else:
            self.db.execute(
                "INSERT INTO responses (id, user_id, body, input_items) VALUES (?,?,?,?)",
                (resp["id"], user_id, orjson.dumps(resp), orjson.dumps(input_items)))

    def response(self, resp_id: str, user_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT body FROM responses WHERE id=? AND user_id=?",
                              (resp_id, user_id)).fetchone()
        return orjson.loads(row[0]) if row else None

    def input_items(self, resp_id: str, user_id: str) -> list[dict[str, Any]] | None:
        row = self.db.execute("SELECT input_items FROM responses WHERE id=? AND user_id=?",
                              (resp_id, user_id)).fetchone()
        return orjson.loads(row[0]) if row else None

    def delete_response(self, resp_id: str, user_id: str) -> bool:
        return bool(self.db.execute("DELETE FROM responses WHERE id=? AND user_id=?",
                                    (resp_id, user_id)).rowcount)

    # --- pagination -------------------------------------------------------------------

    def _page(self, table: str, owner_col: str, owner: str, limit: int, after: str | None,
              descending: bool) -> Page:
        op, order = ("<", "DESC") if descending else (">", "ASC")
        sql = f"SELECT body FROM {table} WHERE {owner_col}=?"
        params: list[Any] = [owner]
        if after:
            sql += f" AND seq {op} COALESCE((SELECT seq FROM {table} WHERE id=?), ?)"
            params += [after, -1 if descending else 1 << 62]
        sql += f" ORDER BY seq {order} LIMIT ?"
        params.append(limit + 1)
        rows = self.db.execute(sql, params).fetchall()
        return Page([orjson.loads(r[0]) for r in rows[:limit]], len(rows) > limit)
