"""`bench`'s target: the server given by BASE, or the embedded simulator started for every
point, and the model (the first of GET /v1/models when none is given)."""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import TYPE_CHECKING, Any

from ..scenario.config import Env
from ..scenario.errors import ExitCode, ScenarioError
from .benchmark import BenchSpec

if TYPE_CHECKING:
    from .bench_cli import Bench

MODELS_TIMEOUT = 10.0  # seconds for the whole GET /v1/models (or guest login)
MODELS_MAX_BODY = 1 << 20


def open_target(bench: Bench, console: Any) -> Any:
    """BASE, or the embedded simulator (started once for every point); the model, if not
    given, is the first of GET /v1/models. Returns the simulator to stop, or None."""
    from ..run.prepare import start_simulator

    env, settings = bench.env, bench.settings
    base, simulator = env.get("BASE", ""), None
    if not base:
        # The simulator wants a bearer: without API_KEY (and no guest login asked for),
        # the run gets a random key it alone knows.
        if not env.get("API_KEY") and bench.spec.auth == "none":
            settings.env["API_KEY"] = secrets.token_urlsafe(16)
            env = bench.env = Env({**env, "API_KEY": settings.env["API_KEY"]})
        options = {**simulator_settings(bench.spec), **bench.sim_options}
        simulator = start_simulator(env.get("API_KEY", ""), **options)
        base = simulator.url
    settings.env["BASE"] = base
    try:
        if not bench.spec.model:
            bench.spec.model = first_model(base, env.get("API_KEY", ""), bench.spec.auth,
                                           lookup_timeout(bench.spec))
            console.note(f"model: {bench.spec.model} (the first of {base}/v1/models)")
    except BaseException:
        if simulator is not None:
            simulator.stop()
        raise
    return simulator


def simulator_settings(spec: BenchSpec) -> dict[str, Any]:
    """The embedded simulator answers up to `reply_tokens` tokens; raise it to the
    workload's longest output target, so max_tokens pins every output length (as
    ignore_eos does on vLLM), unless INDIGO_SIM_REPLY_TOKENS says otherwise."""
    if os.environ.get("INDIGO_SIM_REPLY_TOKENS"):
        return {}
    from .benchmark import build_workload
    from .workload import LengthDist, ListWorkload, TokenCounter, parse_length

    if spec.dataset:
        workload = build_workload(spec, TokenCounter(spec.tokenizer or None))
        items = workload.items if isinstance(workload, ListWorkload) else []
        longest = max((t or 0 for r in items
                       for t in (r.max_tokens, *(target for _, target in r.followups))),
                      default=0)
    else:
        dist: LengthDist | None = parse_length(spec.output_len) if spec.output_len else None
        longest = dist.max if dist is not None and dist.max < (1 << 20) else 0
        if dist is not None and dist.kind in ("normal", "lognormal") and dist.max >= 1 << 20:
            longest = int(dist.mean + 6 * dist.std)
    return {"reply_tokens": longest} if longest > 32 else {}


def lookup_timeout(spec: BenchSpec) -> float:
    """The model lookup's deadline: MODELS_TIMEOUT, or --timeout when shorter."""
    from ..http.config import parse_timeout

    return min(MODELS_TIMEOUT, parse_timeout(spec.timeout or None))


def first_model(base: str, api_key: str, auth: str, timeout: float = MODELS_TIMEOUT) -> str:
    headers = {"Accept": "application/json"}
    token = api_key or (guest_token(base, timeout) if auth == "jan-guest" else "")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = _get_json(f"{base.rstrip('/')}/v1/models", headers, timeout=timeout)
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict) and data[0].get("id"):
        return str(data[0]["id"])
    raise ScenarioError(f"{base}/v1/models lists no model; give --model", ExitCode.INVALID_CONFIG)


def guest_token(base: str, timeout: float = MODELS_TIMEOUT) -> str:
    body = _get_json(f"{base.rstrip('/')}/v1/auth/guest-login", {}, data=b"{}",
                     timeout=timeout)
    token = body.get("access_token") if isinstance(body, dict) else None
    if not token:
        raise ScenarioError(f"{base}: the Jan guest login gave no access token",
                            ExitCode.INVALID_CONFIG)
    return str(token)


def _get_json(url: str, headers: dict[str, str], data: bytes | None = None,
              timeout: float = MODELS_TIMEOUT) -> Any:
    """GET (POST with `data`) through the tool's own HTTP client: its timeout bounds the
    whole exchange, body included (a server that drips its answer cannot hold the run
    before it starts), and its limits bound the body."""
    from ..http.client import Client
    from ..metrics.registry import Registry

    async def fetch() -> Any:
        client = Client(Registry())
        try:
            return await client.request(
                "POST" if data is not None else "GET", url, data=data,
                headers={**headers, "Content-Type": "application/json"},
                timeout=timeout, limits={"maxResponseBodySize": MODELS_MAX_BODY})
        finally:
            await client.close()

    resp = asyncio.run(fetch())
    if resp.error or not 200 <= resp.status < 300:
        problem = resp.error or f"HTTP {resp.status}"
    else:
        try:
            return resp.json()
        except ValueError as exc:
            problem = f"not JSON ({exc})"
    raise ScenarioError(f"{url}: {problem}; give --model (and check --base / API_KEY)",
                        ExitCode.INVALID_CONFIG)
