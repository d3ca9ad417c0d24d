"""Simulator fixtures: real simulator processes on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2 as httpx  # the HTTP client the openai package ships with
import openai
import pytest
from sim_helpers import API_KEY, FAST, JWT_SECRET, login

from indigo_loadtest.simulator.process import SimulatorProcess, start_simulator_process


@pytest.fixture(scope="session")
def sim() -> Iterator[SimulatorProcess]:
    proc = start_simulator_process(api_key=API_KEY, jwt_secret=JWT_SECRET, slow_start_ms=300,
                                   **FAST)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def http(sim: SimulatorProcess) -> Iterator[httpx.Client]:
    """A plain HTTP client on the simulator (its own cookie jar: one guest)."""
    with httpx.Client(base_url=sim.url, trust_env=False, timeout=10) as client:
        yield client


@pytest.fixture
def token(http: httpx.Client) -> str:
    return login(http)


@pytest.fixture
def oai(sim: SimulatorProcess, token: str) -> Iterator[openai.OpenAI]:
    """The official client, unmodified, with a guest's access token as its API key."""
    client = openai.OpenAI(base_url=sim.url + "/v1", api_key=token, max_retries=0,
                           http_client=openai.DefaultHttpxClient(trust_env=False))
    try:
        yield client
    finally:
        client.close()
