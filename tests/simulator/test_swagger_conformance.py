"""Conformance to the Jan Server Swagger 2.0 document, with Schemathesis.

For every endpoint the simulator implements, Schemathesis generates requests from the
spec (valid ones, then invalid ones) and checks the answers: never a 5xx, a documented
status code and content type, and a body that matches the documented schema.

The spec is used as published except where it contradicts what it describes (listed in
`CORRECTIONS`): the chat endpoints document their JSON answer as a string (that is only
the SSE form), unknown models answer 404 (the issue requires it; the spec omits it), and
POST /v1/responses can stream.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sim_helpers import bearer

from indigo_loadtest.simulator.process import SimulatorProcess

# The server's published Swagger 2.0 document, kept in the repository as the contract.
SPEC = Path(__file__).resolve().parents[2] / "docs" / "reference" / "jan-server-swagger.json"
OPERATIONS = [
    ("POST", "/v1/auth/guest-login"), ("GET", "/v1/auth/refresh-token"),
    ("GET", "/v1/auth/me"), ("GET", "/v1/auth/logout"),
    ("GET", "/v1/models"), ("GET", "/v1/conv/models"), ("GET", "/v1/version"),
    ("POST", "/v1/chat/completions"), ("POST", "/v1/conv/chat/completions"),
    ("GET", "/v1/conversations"), ("POST", "/v1/conversations"),
    ("GET", "/v1/conversations/{conversation_id}"),
    ("PATCH", "/v1/conversations/{conversation_id}"),
    ("DELETE", "/v1/conversations/{conversation_id}"),
    ("GET", "/v1/conversations/{conversation_id}/items"),
    ("POST", "/v1/conversations/{conversation_id}/items"),
    ("GET", "/v1/conversations/{conversation_id}/items/{item_id}"),
    ("DELETE", "/v1/conversations/{conversation_id}/items/{item_id}"),
    ("POST", "/v1/responses"), ("GET", "/v1/responses/{response_id}"),
    ("DELETE", "/v1/responses/{response_id}"), ("POST", "/v1/responses/{response_id}/cancel"),
    ("GET", "/v1/responses/{response_id}/input_items"),
]
CHAT_COMPLETION = {
    "type": "object", "required": ["id", "object", "created", "model", "choices"],
    "properties": {
        "id": {"type": "string"}, "object": {"type": "string", "enum": ["chat.completion"]},
        "created": {"type": "integer"}, "model": {"type": "string"},
        "choices": {"type": "array", "items": {"type": "object",
                                               "required": ["index", "message"]}},
        "usage": {"type": "object", "required": ["prompt_tokens", "completion_tokens",
                                                 "total_tokens"]},
    },
}
ERROR = {"$ref": "#/definitions/menlo_ai_jan-api-gateway_app_interfaces_http_responses."
                 "ErrorResponse"}
POSITIVE_EXAMPLES = 15
NEGATIVE_EXAMPLES = 8


def corrected_spec() -> dict[str, Any]:
    """The published spec, limited to the simulated endpoints, with the CORRECTIONS."""
    spec = json.loads(SPEC.read_text())
    wanted = {path for _, path in OPERATIONS}
    spec["paths"] = {p: ops for p, ops in spec["paths"].items() if p in wanted}
    for path in ("/v1/chat/completions", "/v1/conv/chat/completions"):
        responses = spec["paths"][path]["post"]["responses"]
        responses["200"]["schema"] = copy.deepcopy(CHAT_COMPLETION)
        responses.setdefault("404", {"description": "Unknown model", "schema": ERROR})
    create = spec["paths"]["/v1/responses"]["post"]
    create["responses"].setdefault("404", {"description": "Unknown model", "schema": ERROR})
    create["produces"] = ["application/json", "text/event-stream"]
    return spec


CORRECTIONS = corrected_spec
SCHEMA = schemathesis.openapi.from_dict(corrected_spec())
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def session(sim: SimulatorProcess) -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # loopback only, never a proxy
        token = s.post(sim.url + "/v1/auth/guest-login", json={}).json()["access_token"]
        s.headers.update(bearer(token))
        yield s


def _valid_ids(session: requests.Session, url: str) -> dict[str, str]:
    """Ids that exist, so generated requests reach the success paths too."""
    conv = session.post(url + "/v1/conversations", json={"title": "conformance", "items": [
        {"type": "message", "role": "user", "content": [{"type": "text", "text": "hi"}]}]})
    conv_id = conv.json()["id"]
    item_id = session.get(f"{url}/v1/conversations/{conv_id}/items").json()["data"][0]["id"]
    resp = session.post(url + "/v1/responses", json={"model": "jan-v1-4b", "input": "hi"})
    return {"conversation_id": conv_id, "item_id": item_id, "response_id": resp.json()["id"]}


def _steer(case: Any, use_valid: bool, ids: dict[str, str]) -> None:
    """Half the cases reach the success paths: an existing model, conversation and ids,
    and a usable prompt, keeping every other generated field."""
    if not use_valid:
        return
    body = case.body
    if isinstance(body, dict) and case.method == "POST" and "completions" in case.path:
        body["model"] = "jan-v1-4b"
        if not (isinstance(body.get("messages"), list) and body["messages"]
                and all(isinstance(m, dict) for m in body["messages"])):
            body["messages"] = [{"role": "user", "content": "hello"}]
        if "conversation" in body:
            body["conversation"] = ids["conversation_id"]
    if isinstance(body, dict) and case.method == "POST" and case.path == "/v1/responses":
        body.update(model="jan-v1-4b", input="hello")
        for key in ("conversation", "previous_response_id"):
            body.pop(key, None)
    for name in list(case.path_parameters or {}):
        if name in ids and not (name == "conversation_id" and case.method == "DELETE"):
            case.path_parameters[name] = ids[name]


def content_type(response: Any) -> str:
    """Schemathesis' Response keeps headers as lower-cased names to lists of values."""
    values = response.headers.get("content-type") or [""]
    return values[0] if isinstance(values, list) else values


def assert_well_formed_stream(text: str) -> None:
    """Every event is a JSON object; a chat stream ends with [DONE], a Responses stream
    with response.completed."""
    datas = [line[len("data: "):] for event in text.split("\n\n") for line in event.split("\n")
             if line.startswith("data: ")]
    assert datas, "empty stream"
    objects = [json.loads(d) for d in datas if d != "[DONE]"]
    assert all(isinstance(o, dict) for o in objects)
    if datas[-1] != "[DONE]":
        assert objects[-1]["type"] == "response.completed"


def _fuzz(operation: Any, mode: GenerationMode, examples: int, url: str,
          session: requests.Session, ids: dict[str, str]) -> None:
    checks = CHECKS if mode is GenerationMode.POSITIVE else [not_a_server_error]

    calls = itertools.count()

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(mode))
    def run(case: Any) -> None:
        _steer(case, next(calls) % 2 == 1, ids)
        response = case.call(base_url=url, session=session)
        if content_type(response).startswith("text/event-stream"):
            # The spec's schema for a stream is just "string": check the SSE framing here.
            assert_well_formed_stream(response.text)
            case.validate_response(response, checks=checks,
                                   excluded_checks=[response_schema_conformance])
        else:
            case.validate_response(response, checks=checks)

    run()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms(method: str, path: str, sim: SimulatorProcess,
                            session: requests.Session) -> None:
    operation = SCHEMA[path][method]
    ids = _valid_ids(session, sim.url)
    _fuzz(operation, GenerationMode.POSITIVE, POSITIVE_EXAMPLES, sim.url, session, ids)
    if has_inputs(method, path):  # nothing to make invalid otherwise
        _fuzz(operation, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, sim.url, session, ids)


def has_inputs(method: str, path: str) -> bool:
    return bool(SCHEMA.raw_schema["paths"][path][method.lower()].get("parameters"))
