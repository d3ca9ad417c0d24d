"""The simulator's shared state: settings, database, credentials, latency model."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .auth import Auth, AuthError
from .config import SimulatorConfig
from .http_util import ApiError
from .latency import HeaderError, LatencyModel, Plan
from .store import Store


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.store = Store(config.db)
        self.auth = Auth(self.store, config.jwt_secret, config.api_key, config.token_expiry_s,
                         config.refresh_expiry_s, rotate=config.refresh_rotation)
        self.latency = LatencyModel(config)
        self.models = frozenset(config.models)
        self.background: dict[str, asyncio.Task[Any]] = {}  # background responses by id

    def user(self, request: web.Request) -> str:
        """The caller's user id, or 401."""
        try:
            return self.auth.user_of(request.headers.get("Authorization"))
        except AuthError as exc:
            raise ApiError(401, "unauthorized", str(exc)) from None

    def model(self, name: str) -> str:
        if name not in self.models:
            raise ApiError(404, "model_not_found", f"model '{name}' does not exist")
        return name

    def plan(self, request: web.Request) -> Plan:
        try:
            return self.latency.plan(request.headers)
        except HeaderError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None

    async def close(self) -> None:
        for task in list(self.background.values()):
            task.cancel()
        self.store.close()


SIM = web.AppKey("simulator", Simulator)
