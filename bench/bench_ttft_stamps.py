"""Where a TTFT difference with guidellm comes from: each tool's own time stamps of a
request's start, first token and end, against the simulator's stamps of the same request.

The simulator runs in this script's `--serve` mode: the real simulator (the settings of
bench_vs_guidellm.py) whose connections, chat handler and stream writes are stamped, one
JSON line per request: each read of the request's bytes off the socket (the transport's
`data_received`, before any parsing), when the handler was entered, when the response
head, the first token's chunk and the last chunk were handed to the socket. The clocks
are the machine's (time.time() and time.perf_counter() are CLOCK_REALTIME and
CLOCK_MONOTONIC, shared by every process), so each client stamp can be set against the
server's stamp of the same request:

    start     = server: request's first byte read - client: request start stamp
    spread    = server: request's last byte read  - its first byte (head and body apart)
    server    = server: first token written - request's last byte read
    delivery  = client: first token stamp - server: first token written
    TTFT      = start + spread + server + delivery
    client    = TTFT - server: the tool's own part of its TTFT

On loopback a write reaches the other process's socket in microseconds, so `start` is
how long after its start stamp each tool put the request's first bytes on the wire.

Ours is read with the generator's own HTTP client and stream meter (`read_stream`, what
`bench` calls for every request), guidellm's is its `guidellm run` JSON (each request's
`info.timings`). Requests are matched by time (they are 100 ms apart, the stamps about
1 ms). Medians over every matched request; `--requests FILE` also writes every matched
request's parts (ms) as JSON lines.

    .venv/bin/python bench/bench_ttft_stamps.py [--guidellm /tmp/guidellm-venv/bin/guidellm]
                                                [--rates 10 8] [--runs 3] [--duration 20]

At 10 requests/s with the simulator's 100 ms TTFT, each first token arrives as the
client sends the next request; at 8 requests/s it arrives 25 ms before. Comparing the two
shows what a client busy sending does to its first-token stamp.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_vs_guidellm import API_KEY, MODEL, SIMULATOR, guidellm_run, write_inputs
from common import GEN_CORE, PYTHON, TARGET_CORE, background, free_port, log, pinned, run

SCRIPT = Path(__file__).resolve()


# --- the stamped simulator ---------------------------------------------------------------

def serve(port: int, stamps_path: Path) -> None:
    """The simulator with its chat handler and stream writes stamped (both clocks)."""
    from aiohttp import web
    from aiohttp.web_protocol import RequestHandler

    from indigo_loadtest.event_loop import run as run_loop
    from indigo_loadtest.simulator import app as sim_app
    from indigo_loadtest.simulator import cli, config

    out = stamps_path.open("a", buffering=1)

    def now() -> list[float]:
        return [time.time(), time.perf_counter()]

    def stamp(resp: web.StreamResponse, key: str) -> None:
        req = getattr(resp, "_req", None)
        if req is not None and "stamps" in req:
            req["stamps"].setdefault(key, []).append(now())

    prepare, write, write_eof = (web.StreamResponse.prepare, web.StreamResponse.write,
                                 web.StreamResponse.write_eof)

    async def stamped_prepare(self: web.StreamResponse, request: web.Request) -> Any:
        writer = await prepare(self, request)
        stamp(self, "head")
        return writer

    async def stamped_write(self: web.StreamResponse, data: Any) -> None:
        await write(self, data)
        stamp(self, "writes")

    async def stamped_eof(self: web.StreamResponse, data: bytes = b"") -> None:
        await write_eof(self, data)
        stamp(self, "eof")

    web.StreamResponse.prepare = stamped_prepare  # type: ignore[method-assign]
    web.StreamResponse.write = stamped_write  # type: ignore[method-assign]
    web.StreamResponse.write_eof = stamped_eof  # type: ignore[method-assign]
    # Each connection's reads, until the request they belong to takes them (RequestHandler
    # has __slots__: keyed by the protocol's id, which lives as long as the connection).
    reads: dict[int, list[list[float]]] = {}
    data_received = RequestHandler.data_received

    def stamped_received(self: RequestHandler, data: bytes) -> None:
        if data:  # aiohttp calls it with b"" itself, to parse what it has buffered
            reads.setdefault(id(self), []).append(now())
        data_received(self, data)

    RequestHandler.data_received = stamped_received  # type: ignore[method-assign]
    handler = sim_app.chat_completions

    async def stamped_chat(request: web.Request) -> web.StreamResponse:
        request["stamps"] = {"arrived": now()}
        key = id(request.protocol)
        got = reads.pop(key, [])  # the head (and any body) read so far
        try:
            return await handler(request)
        finally:
            # the body read later; never a read after the response began (the next
            # request's, on a keep-alive connection)
            head = request["stamps"].get("head", [[float("inf")] * 2])[0]
            got += [r for r in reads.pop(key, []) if r[1] <= head[1]]
            request["stamps"]["reads"] = got
            out.write(json.dumps(request["stamps"]) + "\n")

    sim_app.chat_completions = stamped_chat  # build_app routes to the stamped handler
    args = vars(cli.build_parser().parse_args(list(SIMULATOR)))
    settings = {k: v for k, v in args.items() if k not in ("host", "port", "parent_pid")}
    settings["api_key"] = API_KEY
    run_loop(cli.serve(config.from_sources(settings), "127.0.0.1", port))


# --- our client --------------------------------------------------------------------------

async def drive_ours(url: str, data: Path, rate: float, duration: float) -> list[dict]:
    """Constant-rate streamed chat completions with the generator's client and meter, one
    client (VU) per request in flight, as `bench` runs them."""
    from indigo_loadtest.http import Client, ClientConfig
    from indigo_loadtest.llm.stream_metrics import read_stream
    from indigo_loadtest.metrics import Registry

    prompts = [json.loads(line)["prompt"] for line in data.read_text().splitlines()]
    reg = Registry()
    idle: list[Any] = []
    headers = {"Authorization": f"Bearer {API_KEY}"}
    results: list[dict] = []

    async def one(i: int) -> None:
        client = idle.pop() if idle else Client(reg, ClientConfig(timeout=15))
        body = {"model": MODEL, "stream": True, "stream_options": {"include_usage": True},
                "max_tokens": 32, "messages": [{"role": "user",
                                                "content": prompts[i % len(prompts)]}]}
        resp = await client.post(url + "/v1/chat/completions", json=body, headers=headers,
                                 stream=True)
        res = await read_stream(resp)
        if res.ok and res.token_times:
            results.append({"start": res.request_start, "first": res.token_times[0],
                            "end": res.end_at})
        idle.append(client)

    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.2
    tasks = []
    for i in range(int(rate * duration)):
        await asyncio.sleep(max(0.0, t0 + i / rate - loop.time()))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    for client in idle:
        await client.close()
    return results


# --- matching ------------------------------------------------------------------------------

def load_server(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def request_parts(client: list[dict], server: list[dict], clock: int) -> list[dict]:
    """Each matched request's parts (ms; see the module docstring); `clock` 0 = wall
    (guidellm), 1 = perf_counter (ours)."""
    arrivals = sorted(server, key=lambda s: s["arrived"][clock])
    out = []
    for c in client:
        s = min(arrivals, key=lambda s: abs(s["arrived"][clock] - c["start"]))
        if abs(s["arrived"][clock] - c["start"]) > 0.05 or not s.get("writes") \
                or not s.get("reads"):
            continue
        first_read, last_read = s["reads"][0][clock], s["reads"][-1][clock]
        first_write, last_write = s["writes"][0][clock], s["writes"][-1][clock]
        ttft, server_ms = c["first"] - c["start"], first_write - last_read
        out.append({k: v * 1000.0 for k, v in (
            ("start", first_read - c["start"]), ("spread", last_read - first_read),
            ("server", server_ms), ("delivery", c["first"] - first_write),
            ("ttft", ttft), ("client", ttft - server_ms), ("end", c["end"] - last_write),
            ("e2el", c["end"] - c["start"]))})
        out[-1]["reads"] = len(s["reads"])
    return out


def decompose(parts: list[dict]) -> dict[str, float]:
    """Medians (ms) of each part over the requests (TTFT = start + spread + server +
    delivery for each request; the medians need not add up). Medians, not means: on a
    shared machine a descheduled process makes a few stamps tens of ms late."""
    out = {k: statistics.median(p[k] for p in parts) for k in COLUMNS} if parts else {}
    out["client_p90"] = (statistics.quantiles([p["client"] for p in parts], n=10)[-1]
                         if len(parts) > 1 else float("nan"))
    out["matched"] = len(parts)
    return out


COLUMNS = ("start", "spread", "server", "delivery", "ttft", "client", "end", "e2el")
HEADER = ("p50: start", "spread", "server", "delivery", "TTFT", "client", "end", "E2EL")


def guidellm_requests(out: Path) -> list[dict]:
    reqs = json.loads(out.read_text())["benchmarks"][0]["requests"]["successful"]
    timings = [r["info"]["timings"] for r in reqs]
    return [{"start": t["request_start"], "first": t["first_token_iteration"],
             "end": t["request_end"]} for t in timings if t.get("first_token_iteration")]


def run_guidellm(exe: str, url: str, data: Path, tok_dir: Path, rate: float,
                 duration: float, tmp: Path) -> list[dict]:
    out = tmp / "guidellm-stamps.json"
    guidellm_run(exe, url, data, tok_dir, rate, duration, tmp, out)
    return guidellm_requests(out)


def report(name: str, d: dict[str, float]) -> str:
    return f"{name:20}" + "".join(f"{d.get(k, float('nan')):>{max(9, len(h) + 1)}.3f}"
                                  for k, h in zip(COLUMNS, HEADER, strict=True)) + \
        f"{d['client_p90']:>11.3f}{int(d['matched']):9d}"


def measure(args: argparse.Namespace, tool: str, rate: float, inputs: tuple[Path, Path, Path],
            tmp: Path) -> list[dict]:
    """One tool at one rate against a fresh stamped simulator."""
    ours_data, their_data, tok_dir = inputs
    port, stamps = free_port(), tmp / f"stamps-{tool}-{rate:g}.jsonl"
    stamps.unlink(missing_ok=True)
    server = [PYTHON, str(SCRIPT), "--serve", str(port), str(stamps)]
    with background(pinned(server, TARGET_CORE), port=port):
        url = f"http://127.0.0.1:{port}"
        log(f"{tool}: {rate:g} req/s for {args.duration:g} s")
        if tool == "ours":
            out = tmp / "ours-stamps.json"
            run(pinned([PYTHON, str(SCRIPT), "--rate", str(rate), "--duration",
                        str(args.duration), "--ours", url, str(ours_data), str(out)],
                       GEN_CORE), timeout=args.duration + 60)
            client, clock = json.loads(out.read_text()), 1
        else:
            client, clock = run_guidellm(args.guidellm, url, their_data, tok_dir, rate,
                                         args.duration, tmp), 0
    return request_parts(client, load_server(stamps), clock)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--guidellm", default="/tmp/guidellm-venv/bin/guidellm")
    ap.add_argument("--rate", type=float, default=10.0, help=argparse.SUPPRESS)
    ap.add_argument("--rates", type=float, nargs="+", default=[10.0, 8.0],
                    help="request rates, each run in turn (default: 10 8)")
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs (default: 3)")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--requests", type=Path, help="also write every matched request's "
                    "parts (ms) here, one JSON line each")
    ap.add_argument("--serve", nargs=2, metavar=("PORT", "STAMPS"), help=argparse.SUPPRESS)
    ap.add_argument("--ours", nargs=3, metavar=("URL", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]))
        return
    if args.ours:
        url, data, out = args.ours
        from indigo_loadtest.event_loop import run as run_loop

        results = run_loop(drive_ours(url, Path(data), args.rate, args.duration))
        Path(out).write_text(json.dumps(results))
        return
    if not Path(args.guidellm).exists():
        raise SystemExit(f"bench: no guidellm at {args.guidellm} (see bench_vs_guidellm.py)")
    print(f"{'ms':20}" + "".join(f"{h:>{max(9, len(h) + 1)}}" for h in HEADER)
          + f"{'client p90':>11}{'requests':>9}", flush=True)
    with tempfile.TemporaryDirectory(prefix="indigo-ttft-stamps-") as d:
        tmp = Path(d)
        inputs = write_inputs(tmp)
        for i in range(args.runs):
            for rate in args.rates:
                tools = ("ours", "guidellm") if i % 2 == 0 else ("guidellm", "ours")
                for tool in tools:
                    parts = measure(args, tool, rate, inputs, tmp)
                    print(report(f"{tool} {rate:g}/s #{i + 1}", decompose(parts)), flush=True)
                    if args.requests:
                        with args.requests.open("a") as f:
                            f.writelines(json.dumps({"tool": tool, "rate": rate, "run": i + 1,
                                                     **p}) + "\n" for p in parts)


if __name__ == "__main__":
    main()
