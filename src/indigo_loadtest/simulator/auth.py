"""Guest identities: HS256 access tokens, rotating refresh tokens, a static API key."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

import jwt

from .store import Store, new_id

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
                 refresh_expiry_s: int) -> None:
        self.store = store
        self.secret = secret or store.setting("jwt_secret", lambda: secrets.token_hex(32))
        self.api_key = api_key.encode()
        self.token_expiry_s = token_expiry_s
        self.refresh_expiry_s = refresh_expiry_s
        self._verified: dict[str, tuple[str, float]] = {}  # token -> (user id, exp)
        if api_key and store.user(API_KEY_USER) is None:
            store.create_user(API_KEY_USER, "API key", "")

    def guest_login(self) -> Tokens:
        user_id = new_id("user")
        self.store.create_user(user_id, f"Guest {user_id[-6:]}", "")
        return self._issue(user_id)

    def refresh(self, refresh_token: str) -> Tokens:
        """Rotate: the presented token is spent (refused if already spent) and replaced."""
        user_id = self.store.use_refresh_token(refresh_token) if refresh_token else None
        if user_id is None:
            raise AuthError("invalid, expired or already used refresh token")
        return self._issue(user_id)

    def logout(self, refresh_token: str) -> None:
        if not refresh_token or self.store.use_refresh_token(refresh_token) is None:
            raise AuthError("missing or invalid refresh token")

    def user_of(self, authorization: str | None) -> str:
        """The user id of an `Authorization: Bearer ...` header, or AuthError."""
        if not authorization or not authorization[:7].lower() == "bearer ":
            raise AuthError("missing bearer token")
        token = authorization[7:].strip()
        cached = self._verified.get(token)
        now = time.time()
        if cached is not None and cached[1] > now:
            return cached[0]
        if self.api_key and hmac.compare_digest(token.encode(), self.api_key):
            return API_KEY_USER
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"],
                                options={"require": ["exp", "sub"]}, issuer=ISSUER)
        except jwt.ExpiredSignatureError:
            raise AuthError("access token expired") from None
        except jwt.PyJWTError:
            raise AuthError("invalid access token") from None
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified.clear()
        self._verified[token] = (claims["sub"], float(claims["exp"]))
        return claims["sub"]

    def _issue(self, user_id: str) -> Tokens:
        now = int(time.time())
        access = jwt.encode({"sub": user_id, "iss": ISSUER, "iat": now,
                             "exp": now + self.token_expiry_s, "jti": secrets.token_hex(8)},
                            self.secret, algorithm="HS256")
        refresh = secrets.token_urlsafe(32)
        self.store.add_refresh_token(refresh, user_id, now + self.refresh_expiry_s)
        return Tokens(access, self.token_expiry_s, refresh, self.refresh_expiry_s)
