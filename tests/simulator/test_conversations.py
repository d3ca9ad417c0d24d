"""Conversations CRUD, items, and chat completions stored into a conversation."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from sim_helpers import FAST, bearer


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return bearer(token)


def _item(text: str, role: str = "user") -> dict[str, object]:
    return {"type": "message", "role": role, "content": [{"type": "text", "text": text}]}


def test_conversation_crud(http: httpx.Client, auth: dict[str, str]) -> None:
    created = http.post("/v1/conversations", headers=auth,
                        json={"title": "Trip", "metadata": {"k": "v"}, "items": [_item("hi")]})
    assert created.status_code == 200
    conv = created.json()
    assert conv["id"].startswith("conv_") and conv["title"] == "Trip"
    assert conv["metadata"] == {"k": "v"} and isinstance(conv["created_at"], int)
    path = f"/v1/conversations/{conv['id']}"
    assert http.get(path, headers=auth).json() == conv
    patched = http.patch(path, headers=auth, json={"title": "Renamed"}).json()
    assert patched["title"] == "Renamed" and patched["metadata"] == {"k": "v"}
    items = http.get(path + "/items", headers=auth).json()
    assert items["object"] == "list" and items["total"] == 1
    assert items["data"][0]["content"] == [{"type": "text", "text": {"value": "hi"}}]
    deleted = http.delete(path, headers=auth).json()
    assert deleted == {"id": conv["id"], "object": "conversation.deleted", "deleted": True}
    assert http.get(path, headers=auth).status_code == 404


def test_list_pagination_and_order(http: httpx.Client, auth: dict[str, str]) -> None:
    ids = [http.post("/v1/conversations", headers=auth, json={"title": f"c{i}"}).json()["id"]
           for i in range(5)]
    newest_first = http.get("/v1/conversations", headers=auth, params={"limit": 2}).json()
    assert [c["id"] for c in newest_first["data"]] == ids[::-1][:2]
    assert newest_first["has_more"] is True
    rest = http.get("/v1/conversations", headers=auth,
                    params={"limit": 10, "after": newest_first["last_id"]}).json()
    assert [c["id"] for c in rest["data"]] == ids[::-1][2:]
    assert rest["has_more"] is False
    oldest = http.get("/v1/conversations", headers=auth,
                      params={"order": "asc", "limit": 1}).json()
    assert oldest["data"][0]["id"] == ids[0]
    for bad in ({"limit": 0}, {"limit": "x"}, {"order": "sideways"}):
        assert http.get("/v1/conversations", headers=auth, params=bad).status_code == 400


def test_items_create_get_delete(http: httpx.Client, auth: dict[str, str]) -> None:
    conv = http.post("/v1/conversations", headers=auth, json={}).json()
    base = f"/v1/conversations/{conv['id']}/items"
    added = http.post(base, headers=auth,
                      json={"items": [_item("a"), _item("b", "assistant")]}).json()
    assert [i["role"] for i in added["data"]] == ["user", "assistant"]
    first = added["data"][0]["id"]
    assert http.get(f"{base}/{first}", headers=auth).json()["id"] == first
    assert http.delete(f"{base}/{first}", headers=auth).json()["id"] == first
    assert http.get(f"{base}/{first}", headers=auth).status_code == 404
    listed = http.get(base, headers=auth, params={"order": "asc"}).json()
    assert [i["id"] for i in listed["data"]] == [added["data"][1]["id"]]
    too_many = {"items": [_item(str(i)) for i in range(21)]}
    assert http.post(base, headers=auth, json=too_many).status_code == 400
    assert http.post(base, headers=auth, json={"items": [{"role": "user"}]}).status_code == 400


def test_conv_completion_stores_the_exchange(http: httpx.Client, auth: dict[str, str]) -> None:
    conv = http.post("/v1/conversations", headers=auth, json={"title": "chat"}).json()
    payload = {"model": "jan-v1-4b", "conversation": conv["id"], "store": True,
               "messages": [{"role": "user", "content": "first question"}]}
    done = http.post("/v1/conv/chat/completions", headers=auth, json=payload).json()
    answer = done["choices"][0]["message"]["content"]
    streamed = http.post("/v1/conv/chat/completions", headers=auth, json={
        **payload, "stream": True, "messages": [{"role": "user", "content": "second"}]})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.text.rstrip().endswith("data: [DONE]")
    items = http.get(f"/v1/conversations/{conv['id']}/items", headers=auth,
                     params={"order": "asc"}).json()["data"]
    assert [i["role"] for i in items] == ["user", "assistant", "user", "assistant"]
    # The real server's shape for both sides: {"type": "text", "text": {"value": ...}}
    assert items[0]["content"] == [{"type": "text", "text": {"value": "first question"}}]
    assert items[2]["content"] == [{"type": "text", "text": {"value": "second"}}]
    assert items[1]["content"][0]["text"]["value"] == answer
    assert len(items[3]["content"][0]["text"]["value"].split()) == FAST["reply_tokens"]
    unstored = http.post("/v1/conv/chat/completions", headers=auth,
                         json={**payload, "store": False})
    assert unstored.status_code == 200
    assert http.get(f"/v1/conversations/{conv['id']}/items",
                    headers=auth).json()["total"] == 4


def test_conv_completion_with_unknown_conversation_is_404(http: httpx.Client,
                                                          auth: dict[str, str]) -> None:
    resp = http.post("/v1/conv/chat/completions", headers=auth, json={
        "model": "jan-v1-4b", "conversation": "conv_missing", "store": True,
        "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 404 and resp.json()["code"] == "not_found"
