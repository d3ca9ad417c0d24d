"""Conformance to the Jan Server Swagger 2.0 document, with Schemathesis.

For every endpoint the simulator implements, Schemathesis generates requests from the
spec (valid ones, then invalid ones) and checks the answers: never a 5xx, a documented
status code and content type, and a body that matches the documented schema. Half the
valid cases are steered to the success path (a real model, conversation and ids, usable
messages), and the run asserts that chat completions, conversation completions and
POST /v1/responses really answered 200 bodies that were validated, so a steering mistake
cannot turn the run into "not a server error" only. Invalid cases must be rejected (4xx)
on the operations whose every input the simulator checks (`STRICT_NEGATIVE`).

The spec is used as published except where it contradicts what it describes (listed in
`CORRECTIONS`): the chat endpoints document their 200 as a string (the SSE form) while
the handlers answer the document's own `openai.ChatCompletionResponse` /
`ExtendedCompletionResponse` when not streaming, unknown models answer 404 (the spec
omits it), and POST /v1/responses can stream. Hypothesis is derandomized (a fixed seed)
with a bounded example count, so the run is the same on every machine.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs  # schemathesis' own validator
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
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
# The JSON (non-streamed) answer of each chat endpoint, in the document's own types.
CHAT_BODIES = {
    "/v1/chat/completions": "openai.ChatCompletionResponse",
    "/v1/conv/chat/completions": "app_interfaces_http_routes_v1_conv.ExtendedCompletionResponse",
}
RESPONSE_DEF = "menlo_ai_jan-api-gateway_app_interfaces_http_responses.Response"
ERROR = {"$ref": "#/definitions/menlo_ai_jan-api-gateway_app_interfaces_http_responses."
                 "ErrorResponse"}
POSITIVE_EXAMPLES = 15
NEGATIVE_EXAMPLES = 8
# Operations whose success bodies must have been validated at least this often.
GENERATION = {("POST", "/v1/chat/completions"), ("POST", "/v1/conv/chat/completions"),
              ("POST", "/v1/responses")}
MIN_VALIDATED_SUCCESSES = 3
# Invalid input must be a 4xx here. Elsewhere the simulator checks only the fields it uses
# (a chat request's sampling options, unknown list filters), a documented departure.
LENIENT_NEGATIVE = {("POST", "/v1/chat/completions"), ("POST", "/v1/conv/chat/completions"),
                    ("GET", "/v1/conversations")}


def corrected_spec() -> dict[str, Any]:
    """The published spec, limited to the simulated endpoints, with the CORRECTIONS."""
    spec = json.loads(SPEC.read_text())
    wanted = {path for _, path in OPERATIONS}
    spec["paths"] = {p: ops for p, ops in spec["paths"].items() if p in wanted}
    for path, definition in CHAT_BODIES.items():
        responses = spec["paths"][path]["post"]["responses"]
        responses["200"]["schema"] = {"$ref": f"#/definitions/{definition}"}
        responses.setdefault("404", {"description": "Unknown model", "schema": ERROR})
    create = spec["paths"]["/v1/responses"]["post"]
    create["responses"].setdefault("404", {"description": "Unknown model", "schema": ERROR})
    create["produces"] = ["application/json", "text/event-stream"]
    return spec


CORRECTIONS = corrected_spec
SCHEMA = schemathesis.openapi.from_dict(corrected_spec())
# Schemathesis stops reading an event stream after 20 events by default, which cuts a
# Responses stream short (or not, depending on how its events were batched on the wire):
# read every stream to its end, so its [DONE] and final response can be checked.
SCHEMA.config.max_stream_events = 10_000
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
    """Every event is a JSON object and the stream ends with `data: [DONE]` (chat and
    Responses alike, as on the real server); a Responses stream's last event before it is
    response.completed, whose response must match the document's Response."""
    datas = [line[len("data: "):] for event in text.split("\n\n") for line in event.split("\n")
             if line.startswith("data: ")]
    assert datas and datas[-1] == "[DONE]", f"no [DONE] at the end of the stream: {text[-300:]!r}"
    objects = [json.loads(d) for d in datas[:-1]]
    assert all(isinstance(o, dict) for o in objects)
    if "type" in objects[-1]:  # a Responses stream
        assert objects[-1]["type"] == "response.completed"
        RESPONSE_VALIDATOR.validate(objects[-1]["response"])


def _definition_schema(name: str) -> dict[str, Any]:
    """One definition of the document as a standalone JSON Schema."""
    definitions = json.loads(SPEC.read_text())["definitions"]
    return {"$ref": f"#/definitions/{name}", "definitions": definitions}


RESPONSE_VALIDATOR = jsonschema_rs.Draft4Validator(_definition_schema(RESPONSE_DEF))


def _fuzz(operation: Any, mode: GenerationMode, examples: int, url: str,
          session: requests.Session, ids: dict[str, str]) -> int:
    """Run the cases; the number of 200 JSON bodies validated against the schema."""
    key = (operation.method.upper(), operation.path)
    if mode is GenerationMode.POSITIVE:
        checks = CHECKS
    elif key in LENIENT_NEGATIVE:
        checks = [not_a_server_error]
    else:
        checks = [not_a_server_error, negative_data_rejection]
    calls = itertools.count()
    validated = 0

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(mode))
    def run(case: Any) -> None:
        nonlocal validated
        _steer(case, mode is GenerationMode.POSITIVE and next(calls) % 2 == 1, ids)
        response = case.call(base_url=url, session=session)
        if content_type(response).startswith("text/event-stream"):
            # The spec's schema for a stream is just "string": check the SSE framing here.
            assert_well_formed_stream(response.text)
            case.validate_response(response, checks=checks,
                                   excluded_checks=[response_schema_conformance])
        else:
            case.validate_response(response, checks=checks)
            validated += response.status_code == 200 and response_schema_conformance in checks

    run()
    return validated


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms(method: str, path: str, sim: SimulatorProcess,
                            session: requests.Session) -> None:
    operation = SCHEMA[path][method]
    ids = _valid_ids(session, sim.url)
    validated = _fuzz(operation, GenerationMode.POSITIVE, POSITIVE_EXAMPLES, sim.url, session,
                      ids)
    if (method, path) in GENERATION:
        assert validated >= MIN_VALIDATED_SUCCESSES, (
            f"only {validated} success bodies of {method} {path} were validated")
    if has_inputs(method, path):  # nothing to make invalid otherwise
        _fuzz(operation, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, sim.url, session, ids)


def has_inputs(method: str, path: str) -> bool:
    return bool(SCHEMA.raw_schema["paths"][path][method.lower()].get("parameters"))


def string_map_operations() -> list[tuple[str, str]]:
    """The operations whose request body documents `metadata` as a map of strings."""
    spec = SCHEMA.raw_schema
    found = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                name = param.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
                props = spec["definitions"].get(name, {}).get("properties", {})
                if props.get("metadata", {}).get("additionalProperties") == {"type": "string"}:
                    found.append((method.upper(), path))
    return found


STRING_MAPS = string_map_operations()


@pytest.mark.parametrize(("method", "path"), STRING_MAPS,
                         ids=[f"{m} {p}" for m, p in STRING_MAPS])
@pytest.mark.parametrize("metadata", [{"k": True}, {"n": None}, {"x": 1}, {"o": {}}])
def test_metadata_outside_the_documented_string_map_is_rejected(
        method: str, path: str, metadata: dict[str, Any], sim: SimulatorProcess,
        session: requests.Session) -> None:
    """Random negative generation rarely reaches one property's value type; these cases
    do. Accepting them would echo values that violate the response schema."""
    ids = _valid_ids(session, sim.url)
    body: dict[str, Any] = {"metadata": metadata}
    if "completions" in path:
        body.update(model="jan-v1-4b", messages=[{"role": "user", "content": "hi"}])
    operation = SCHEMA[path][method]
    case = operation.Case(body=body, media_type="application/json", path_parameters={
        name: ids[name] for name in ("conversation_id",) if name in path})
    response = case.call(base_url=sim.url, session=session)
    assert response.status_code == 400, response.text
    case.validate_response(response, checks=CHECKS)
