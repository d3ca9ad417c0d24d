"""The aiohttp application: routes, error middleware, auth, models and version."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from .. import __version__ as package_version
from . import conversations, responses
from .auth import AuthError, Tokens
from .chat import chat_completions
from .completions import completions
from .config import SimulatorConfig
from .connections import Connections
from .http_util import ApiError, error_response, json_response
from .state import SIM, Simulator

REFRESH_COOKIE = "jan_refresh_token"
CONNECTIONS = web.AppKey("connections", Connections)
log = logging.getLogger("indigo_loadtest.simulator")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure answers with the spec's error body; never a bare 500 page."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason,
                              {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None)
    except ConnectionError:
        # The client went away (or a dropped-connection fault): nothing left to answer.
        return web.Response(status=499)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal server error")


# --- auth ---------------------------------------------------------------------------------


def _token_response(tokens: Tokens) -> web.Response:
    # "access.token" and "me" (below) are the object names the real server writes.
    resp = json_response({"object": "access.token", "access_token": tokens.access_token,
                          "expires_in": tokens.expires_in})
    resp.set_cookie(REFRESH_COOKIE, tokens.refresh_token, max_age=tokens.refresh_max_age,
                    path="/", httponly=True, samesite="Strict")
    return resp


def _auth_failed(exc: AuthError) -> ApiError:
    return ApiError(401, "unauthorized", str(exc))


async def guest_login(request: web.Request) -> web.StreamResponse:
    return _token_response(request.app[SIM].auth.guest_login())


async def refresh_token(request: web.Request) -> web.StreamResponse:
    try:
        tokens = request.app[SIM].auth.refresh(request.cookies.get(REFRESH_COOKIE, ""))
    except AuthError as exc:
        raise _auth_failed(exc) from None
    return _token_response(tokens)


async def logout(request: web.Request) -> web.StreamResponse:
    """200 and a cleared cookie whatever the cookie held, as the real server answers; a
    usable refresh token also revokes its session (its access tokens stop working)."""
    request.app[SIM].auth.logout(request.cookies.get(REFRESH_COOKIE, ""))
    resp = json_response({"object": "logout", "status": "logged out"})
    resp.del_cookie(REFRESH_COOKIE, path="/")
    return resp


async def me(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    user = sim.store.user(sim.user(request))
    if user is None:
        raise ApiError(401, "unauthorized", "user no longer exists")
    return json_response({"object": "me", **user})


# --- models and version -------------------------------------------------------------------

_CREATED = int(time.time())


def _model(model_id: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "menlo"}


async def models(request: web.Request) -> web.StreamResponse:
    """Public, like the real server's models route (no auth middleware on it)."""
    return json_response({"object": "list",
                          "data": [_model(m) for m in request.app[SIM].config.models]})


async def model(request: web.Request) -> web.StreamResponse:
    """OpenAI's `GET /v1/models/{id}` (what `client.models.retrieve` calls)."""
    return json_response(_model(request.app[SIM].model(request.match_info["model_id"])))


async def version(request: web.Request) -> web.StreamResponse:
    return json_response({"version": package_version, "server": "indigo-loadtest simulator"})


def build_app(config: SimulatorConfig) -> web.Application:
    sim = Simulator(config)
    connections = Connections(config.body_timeout_s)
    app = web.Application(middlewares=[connections.read_body, errors],
                          client_max_size=8 * 1024 * 1024)
    app[SIM] = sim
    app[CONNECTIONS] = connections
    app.router.add_post("/v1/auth/guest-login", guest_login)
    app.router.add_get("/v1/auth/refresh-token", refresh_token)
    app.router.add_get("/v1/auth/logout", logout)
    app.router.add_get("/v1/auth/me", me)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model_id:.+}", model)
    app.router.add_get("/v1/conv/models", models)
    app.router.add_get("/v1/version", version)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    conversations.add_routes(app)
    responses.add_routes(app)

    async def close(_: web.Application) -> None:
        await sim.close()

    app.on_cleanup.append(close)
    return app

