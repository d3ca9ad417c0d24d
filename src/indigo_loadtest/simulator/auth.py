"""Guest identities: HS256 access tokens, refresh tokens, a static API key.

Each guest login starts a token *family* (its login session): every access and refresh
token issued from it carries the family id. Logout revokes the family, so the session's
access tokens stop working at once rather than when they expire.

A refresh token may be presented again until it expires, as the real Jan server's
stateless ones may (a script written against it works here too). With `rotate`
(`--refresh-rotation`), each is spent when used, and presenting a spent one (OAuth's
refresh-token reuse detection, RFC 9700 §4.14.2) revokes the family, including the
token that replaced it.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

import jwt

from .store import RefreshToken, Store, new_id

API_KEY_USER = "user_api_key"
ISSUER = "indigo-simulator"
_CACHE_LIMIT = 65536


class AuthError(Exception):
    """The request's credentials are missing or invalid (answered 401)."""


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_max_age: int


class Auth:
    """Issues and checks credentials; verified access tokens are cached until they expire."""

    def __init__(self, store: Store, secret: str, api_key: str, token_expiry_s: int,
                 refresh_expiry_s: int, *, rotate: bool = False) -> None:
        self.store = store
        self.rotate = rotate
        self.secret = secret or store.setting("jwt_secret", lambda: secrets.token_hex(32))
        self.api_key = api_key.encode()
        self.token_expiry_s = token_expiry_s
        self.refresh_expiry_s = refresh_expiry_s
        self._verified: dict[str, tuple[str, float, str]] = {}  # token -> (user, exp, family)
        self._revoked = store.revoked_families()
        if api_key and store.user(API_KEY_USER) is None:
            store.create_user(API_KEY_USER, "API key", "")

    def guest_login(self) -> Tokens:
        user_id = new_id("user")
        self.store.create_user(user_id, f"Guest {user_id[-6:]}", "")
        return self._issue(user_id, new_id("fam"))

    def refresh(self, refresh_token: str) -> Tokens:
        """New tokens in the presented token's family; with `rotate` it is spent."""
        row = self._usable(refresh_token)
        if self.rotate:
            self.store.spend_refresh_token(refresh_token)
        return self._issue(row.user_id, row.family)

    def logout(self, refresh_token: str) -> bool:
        """End the cookie's login session; False when the cookie held no usable token."""
        try:
            row = self._usable(refresh_token)
        except AuthError:
            return False
        self._revoke(row.family)
        return True

    def _usable(self, refresh_token: str) -> RefreshToken:
        row = self.store.refresh_token(refresh_token) if refresh_token else None
        if row is None or row.expires_at <= time.time():
            raise AuthError("missing, invalid or expired refresh token")
        if row.family in self._revoked:
            raise AuthError("refresh token revoked")
        if row.used:  # only with `rotate`
            # A spent token presented again was copied: end the whole session, so whoever
            # holds its successor (the thief or the user) must log in again.
            self._revoke(row.family)
            raise AuthError("refresh token already used; its session is revoked")
        return row

    def _revoke(self, family: str) -> None:
        if family:
            self.store.revoke_family(family)
            self._revoked.add(family)

    def user_of(self, authorization: str | None) -> str:
        """The user id of an `Authorization: Bearer ...` header, or AuthError."""
        if not authorization or not authorization[:7].lower() == "bearer ":
            raise AuthError("missing bearer token")
        token = authorization[7:].strip()
        cached = self._verified.get(token)
        now = time.time()
        if cached is not None and cached[1] > now:
            return self._unrevoked(cached[0], cached[2])
        if self.api_key and hmac.compare_digest(token.encode(), self.api_key):
            return API_KEY_USER
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"],
                                options={"require": ["exp", "sub"]}, issuer=ISSUER)
        except jwt.ExpiredSignatureError:
            raise AuthError("access token expired") from None
        except jwt.PyJWTError:
            raise AuthError("invalid access token") from None
        family = claims.get("fam") if isinstance(claims.get("fam"), str) else ""
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified.clear()
        self._verified[token] = (claims["sub"], float(claims["exp"]), family)
        return self._unrevoked(claims["sub"], family)

    def _unrevoked(self, user_id: str, family: str) -> str:
        if family and family in self._revoked:
            raise AuthError("access token revoked (logged out)")
        return user_id

    def _issue(self, user_id: str, family: str) -> Tokens:
        now = int(time.time())
        access = jwt.encode({"sub": user_id, "iss": ISSUER, "iat": now,
                             "exp": now + self.token_expiry_s, "jti": secrets.token_hex(8),
                             "fam": family}, self.secret, algorithm="HS256")
        refresh = secrets.token_urlsafe(32)
        self.store.add_refresh_token(refresh, user_id, now + self.refresh_expiry_s, family)
        return Tokens(access, self.token_expiry_s, refresh, self.refresh_expiry_s)
