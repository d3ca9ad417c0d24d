"""Conversations and their items, and POST /v1/conv/chat/completions which stores into them.

A guest only ever sees its own conversations: anyone else's answer 404, like ids that
never existed.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .chat import parse_chat, run_chat
from .generation import Reply
from .http_util import (
    bad_request,
    json_object,
    json_response,
    list_body,
    not_found,
    optional,
    query_limit,
    query_order,
    string_map,
)
from .state import SIM, Simulator
from .store import new_id

MAX_ITEMS_PER_REQUEST = 20
ROLES = ("system", "user", "assistant", "tool")
DEFAULT_TITLE = "New conversation"


# --- representations ----------------------------------------------------------------------


def content_part(kind: str, text: str) -> dict[str, Any]:
    """A content part in the spec's ContentResponse shape (the field is named by the type)."""
    if kind == "input_text":
        return {"type": "input_text", "input_text": text}
    if kind == "output_text":
        return {"type": "output_text", "output_text": {"text": text, "annotations": []}}
    return {"type": "text", "text": {"value": text}}


def make_item(role: str, parts: list[tuple[str, str]], item_type: str = "message",
              ) -> dict[str, Any]:
    return {"id": new_id("msg"), "object": "conversation.item", "type": item_type,
            "role": role, "status": "completed", "created_at": int(time.time()),
            "content": [content_part(kind, text) for kind, text in parts]}


def parse_items(raw: Any) -> list[dict[str, Any]]:
    """The request's ConversationItemRequest list as stored items, or 400."""
    if not isinstance(raw, list):
        raise bad_request("'items' must be an array")
    if len(raw) > MAX_ITEMS_PER_REQUEST:
        raise bad_request(f"at most {MAX_ITEMS_PER_REQUEST} items per request")
    items = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise bad_request("every item needs a 'type'")
        role = entry.get("role") if entry.get("role") is not None else "user"
        if role not in ROLES:
            raise bad_request(f"item role must be one of {', '.join(ROLES)}")
        content = entry.get("content")
        if not isinstance(content, list):
            raise bad_request("every item needs a 'content' array")
        parts = []
        for part in content:
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise bad_request("every content part needs a 'type'")
            text = part.get("text") if part.get("text") is not None else ""
            if not isinstance(text, str):
                raise bad_request("content 'text' must be a string")
            parts.append((part["type"], text))
        items.append(make_item(role, parts, entry["type"]))
    return items


# --- conversations ------------------------------------------------------------------------


def _owned(sim: Simulator, request: web.Request) -> tuple[str, dict[str, Any]]:
    user = sim.user(request)
    conv = sim.store.conversation(request.match_info["conversation_id"], user)
    if conv is None:
        raise not_found("conversation")
    return user, conv


async def create_conversation(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    user = sim.user(request)
    body = await json_object(request)
    conv: dict[str, Any] = {
        "id": new_id("conv"), "object": "conversation",
        "title": optional(body, "title", str, DEFAULT_TITLE),
        "metadata": string_map(body, "metadata") or {}, "created_at": int(time.time())}
    workspace = optional(body, "workspace_id", str)
    if workspace:
        conv["workspace_id"] = workspace
    items = parse_items(body["items"]) if body.get("items") is not None else []
    sim.store.put_conversation(conv, user)
    if items:
        sim.store.add_items(conv["id"], items)
    return json_response(conv)


async def list_conversations(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    user = sim.user(request)
    page = sim.store.list_conversations(user, query_limit(request), request.query.get("after"),
                                        query_order(request))
    data = page.data
    workspace = request.query.get("workspace_id")
    if workspace:
        data = [c for c in data if c.get("workspace_id") == workspace]
    return json_response(list_body(data, page.has_more))


async def get_conversation(request: web.Request) -> web.StreamResponse:
    _, conv = _owned(request.app[SIM], request)
    return json_response(conv)


async def update_conversation(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    user, conv = _owned(sim, request)
    body = await json_object(request)
    title = optional(body, "title", str)
    meta = string_map(body, "metadata")
    if title is not None:
        conv["title"] = title
    if meta is not None:
        conv["metadata"] = meta
    sim.store.put_conversation(conv, user)
    return json_response(conv)


async def delete_conversation(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    user, conv = _owned(sim, request)
    sim.store.delete_conversation(conv["id"], user)
    return json_response({"id": conv["id"], "object": "conversation.deleted", "deleted": True})


# --- items --------------------------------------------------------------------------------


async def list_items(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    _, conv = _owned(sim, request)
    page = sim.store.list_items(conv["id"], query_limit(request), request.query.get("after"),
                                query_order(request))
    return json_response(list_body(page.data, page.has_more,
                                   total=sim.store.count_items(conv["id"])))


async def create_items(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    _, conv = _owned(sim, request)
    body = await json_object(request)
    if body.get("items") is None:
        raise bad_request("'items' is required")
    items = parse_items(body["items"])
    sim.store.add_items(conv["id"], items)
    return json_response(list_body(items, False, total=len(items)))


def _owned_item(sim: Simulator, request: web.Request) -> dict[str, Any]:
    _, conv = _owned(sim, request)
    item = sim.store.item(conv["id"], request.match_info["item_id"])
    if item is None:
        raise not_found("item")
    return item


async def get_item(request: web.Request) -> web.StreamResponse:
    return json_response(_owned_item(request.app[SIM], request))


async def delete_item(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    item = _owned_item(sim, request)
    sim.store.delete_item(request.match_info["conversation_id"], item["id"])
    return json_response(item)


# --- completions stored in a conversation -------------------------------------------------


def exchange_items(user_text: str, reply: Reply) -> list[dict[str, Any]]:
    """The user's message and the assistant's answer (or function call) as items, both
    with the real server's `{"type": "text", "text": {"value": ...}}` content."""
    items = [make_item("user", [("text", user_text)])] if user_text else []
    if reply.is_tool_call:
        items.append(make_item("assistant", [("text", reply.text)], "function_call"))
    else:
        items.append(make_item("assistant", [("text", reply.text)]))
    return items


def conversation_id_of(body: dict[str, Any]) -> str | None:
    """`conversation` as an id string (or an object with an id)."""
    raw = body.get("conversation")
    if isinstance(raw, dict):
        raw = raw.get("id")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise bad_request("'conversation' must be a conversation id")
    return raw


async def conv_chat_completions(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    user = sim.user(request)
    body = await json_object(request)
    conv_id = conversation_id_of(body)
    store = bool(optional(body, "store", bool, False))
    conv = sim.store.conversation(conv_id, user) if conv_id is not None else None
    if conv_id is not None and conv is None:
        raise not_found("conversation")
    req = parse_chat(body, sim)
    on_done = None
    if conv is not None:

        async def on_done(reply: Reply) -> dict[str, Any]:
            items = exchange_items(req.last_user, reply) if store else []
            return _completion_metadata(conv, store, items,
                                        bool(items) and sim.store.add_items(conv["id"], items))

    return await run_chat(request, sim, req, on_done)


def _completion_metadata(conv: dict[str, Any], store: bool, items: list[dict[str, Any]],
                         stored: bool) -> dict[str, Any]:
    """What the real server adds to a conversation completion: `metadata` naming the
    conversation and the stored items, and the assistant item's id as the answer's id."""
    meta: dict[str, Any] = {"conversation_id": conv["id"], "conversation_created": False,
                            "conversation_title": conv.get("title") or "", "store": store,
                            "store_reasoning": False}
    if not stored:
        return {"metadata": meta}
    meta["completion_item_id"] = items[-1]["id"]
    if len(items) > 1:
        meta["ask_item_id"] = items[0]["id"]
    return {"id": items[-1]["id"], "metadata": meta}


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/conv/chat/completions", conv_chat_completions)
    r.add_post("/v1/conversations", create_conversation)
    r.add_get("/v1/conversations", list_conversations)
    r.add_get("/v1/conversations/{conversation_id}", get_conversation)
    r.add_patch("/v1/conversations/{conversation_id}", update_conversation)
    r.add_delete("/v1/conversations/{conversation_id}", delete_conversation)
    r.add_get("/v1/conversations/{conversation_id}/items", list_items)
    r.add_post("/v1/conversations/{conversation_id}/items", create_items)
    r.add_get("/v1/conversations/{conversation_id}/items/{item_id}", get_item)
    r.add_delete("/v1/conversations/{conversation_id}/items/{item_id}", delete_item)
