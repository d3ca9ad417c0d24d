"""The official `openai` Node client (from npm) against the simulator: chat, streaming,
tools, Responses and streamed Responses. `run-tests.sh` installs the package into
tests/simulator/node; the test is skipped where `node` or the package is absent."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest
from sim_helpers import FAST, login

from indigo_loadtest.simulator.process import SimulatorProcess

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE = shutil.which("node")
pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(not (NODE_DIR / "node_modules" / "openai").is_dir(),
                       reason="the openai npm package is not installed "
                              "(cd tests/simulator/node && npm install)"),
]


@pytest.fixture(scope="module")
def node_results(sim: SimulatorProcess) -> dict[str, dict[str, object]]:
    with httpx.Client(base_url=sim.url, trust_env=False) as client:
        token = login(client)
    done = subprocess.run([str(NODE), "client_check.mjs", sim.url + "/v1", token],
                          cwd=NODE_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_node_chat(node_results: dict[str, dict[str, object]]) -> None:
    chat = node_results["chat"]
    assert isinstance(chat["content"], str) and chat["content"]
    assert chat["usage"]["completion_tokens"] == FAST["reply_tokens"]  # type: ignore[index]


def test_node_chat_stream(node_results: dict[str, dict[str, object]]) -> None:
    stream = node_results["stream"]
    assert stream["deltas"] == FAST["reply_tokens"]
    assert stream["usage"]["completion_tokens"] == stream["deltas"]  # type: ignore[index]


def test_node_tool_call(node_results: dict[str, dict[str, object]]) -> None:
    tools = node_results["tools"]
    assert tools["finish"] == "tool_calls" and tools["name"] == "google_search"
    assert json.loads(str(tools["arguments"])) == {"q": "search the news"}


def test_node_responses(node_results: dict[str, dict[str, object]]) -> None:
    resp = node_results["responses"]
    assert resp["status"] == "completed" and resp["text"]
    assert resp["usage"]["output_tokens"] == FAST["reply_tokens"]  # type: ignore[index]


def test_node_streamed_responses_reach_the_final_response(
        node_results: dict[str, dict[str, object]]) -> None:
    stream = node_results["responses_stream"]
    events = stream["events"]
    assert events[0] == "response.created" and events[-1] == "response.completed"  # type: ignore[index]
    assert stream["final_status"] == "completed"
    assert stream["final_text"] == stream["text"] and stream["text"]


def test_node_models_retrieve(node_results: dict[str, dict[str, object]]) -> None:
    assert node_results["model"] == {"id": "jan-v1-4b", "object": "model"}
