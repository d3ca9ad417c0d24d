"""Request parsing and response helpers shared by the handlers.

Errors use the Swagger's `ErrorResponse` body: `{"code": "...", "error": "message"}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

JSON = "application/json"


class ApiError(Exception):
    """Answered as `status` with the error body (and any extra headers)."""

    def __init__(self, status: int, code: str, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, self.headers)


class OpenAIError(ApiError):
    """Answered in OpenAI's error shape, `{"error": {"message", "type", "param", "code"}}`:
    for the endpoints only OpenAI defines (no Jan Swagger to follow)."""

    def __init__(self, status: int, code: str, message: str,
                 headers: Mapping[str, str] | None = None, param: str | None = None) -> None:
        super().__init__(status, code, message, headers)
        self.param = param

    @classmethod
    def of(cls, exc: ApiError) -> OpenAIError:
        return exc if isinstance(exc, OpenAIError) else cls(exc.status, exc.code, exc.message,
                                                            exc.headers)

    def response(self) -> web.Response:
        kind = "server_error" if self.status >= 500 else "invalid_request_error"
        return json_response({"error": {"message": self.message, "type": kind,
                                        "param": self.param, "code": self.code}},
                             self.status, self.headers)


def error_response(status: int, code: str, message: str,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"code": code, "error": message}),
                        content_type=JSON, headers=headers)


def json_response(obj: Any, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(obj), content_type=JSON,
                        headers=headers)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or 400."""
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise bad_request("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    return body


def optional(body: Mapping[str, Any], key: str, kinds: type | tuple[type, ...],
             default: Any = None) -> Any:
    """body[key] if present and of the given type(s) (null counts as absent), else 400."""
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise bad_request(f"'{key}' has the wrong type")
    if not isinstance(value, kinds):
        raise bad_request(f"'{key}' has the wrong type")
    return value


def string_map(body: Mapping[str, Any], key: str, max_keys: int = 16) -> dict[str, str] | None:
    """body[key] as an object of string values (the Swagger's `additionalProperties:
    string`; the real server decodes it into a string map and answers 400 otherwise)."""
    value = optional(body, key, dict)
    if value is None:
        return None
    if len(value) > max_keys:
        raise bad_request(f"'{key}' holds at most {max_keys} keys")
    if not all(isinstance(v, str) for v in value.values()):
        raise bad_request(f"every value of '{key}' must be a string")
    return value


def positive_int(body: Mapping[str, Any], key: str) -> int | None:
    value = optional(body, key, int)
    if value is not None and value < 1:
        raise bad_request(f"'{key}' must be at least 1")
    return value


def query_limit(request: web.Request, default: int = 20, maximum: int = 100) -> int:
    raw = request.query.get("limit")
    if raw in (None, ""):
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise bad_request("'limit' must be an integer") from None
    if not 1 <= limit <= maximum:
        raise bad_request(f"'limit' must be between 1 and {maximum}")
    return limit


def query_order(request: web.Request, default: str = "desc") -> bool:
    """True for descending."""
    order = (request.query.get("order") or default).lower()
    if order not in ("asc", "desc"):
        raise bad_request("'order' must be asc or desc")
    return order == "desc"


def list_body(data: list[dict[str, Any]], has_more: bool, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"object": "list", "data": data, "has_more": has_more, **extra}
    if data:  # the spec's cursors are strings: absent rather than null on an empty page
        body["first_id"] = data[0]["id"]
        body["last_id"] = data[-1]["id"]
    return body
