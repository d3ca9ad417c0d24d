"""The building blocks of an LLM serving benchmark, usable from any scenario file.

`indigo-loadtest bench` generates a scenario from a `BenchSpec` (the packaged
`bench_scenario/llm-bench.py` reads it from the run's env), so a benchmark runs on the
same engine, executors, workers, thresholds and outputs as `run`. A scenario file can do
the same by hand:

    from indigo_loadtest.llm.benchmark import BenchSpec, BenchScenario
    bench = BenchScenario(BenchSpec(profile="poisson", rate=4, duration="30s"))
    options, default = bench.options, bench.iteration

Per request it records the `llm_*` stream metrics (TTFT, ITL, TPOT, E2EL = llm_total_ms,
output tokens) through `stream_metrics`, plus `llm_prompt_tokens`,
`llm_request_failed` (a Rate), `llm_good_requests` (a Counter: requests meeting every
per-request SLO; its rate is the goodput) and, for open-loop profiles,
`llm_schedule_delay_ms` (how late the request was sent after its scheduled instant).
Every sample is tagged `tokens=usage|tokenizer|estimate`: where its token counts came from.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from ..engine.arrival_rate import scheduled_start
from ..metrics.exact import keep_exact
from ..metrics.registry import Registry, active_registry, current_tags
from ..metrics.thresholds import ThresholdError, parse_metric_key
from ..scenario.errors import ExitCode, ScenarioError
from .bench_args import CLOSED_PROFILES, OPEN_PROFILES, PROFILES
from .bench_failures import STATUS_TAG, ErrorSampler
from .chunk_gaps import ChunkGapMeter
from .slo import Objective, parse_slos, request_meets
from .stream_metrics import (
    ITL,
    TOTAL,
    TPOT,
    TTFT,
    LLMMetrics,
    StreamMeter,
    StreamResult,
    parse_queue_ms,
    read_stream,
)
from .workload import (
    BenchRequest,
    SyntheticWorkload,
    TokenCounter,
    Workload,
    dataset_workload,
    guess_kind,
    parse_length,
)

PROMPT_TOKENS = "llm_prompt_tokens"
SCHEDULE_DELAY = "llm_schedule_delay_ms"
REQUEST_FAILED = "llm_request_failed"
GOOD_REQUESTS = "llm_good_requests"
# Each request's start and end, in wall-clock seconds since the point was launched
# (`BenchSpec.epoch`): its min and max, which merge across worker processes, bound the
# benchmark's duration, first send to last byte.
WINDOW = "llm_request_window"
# With a warm-up or cool-down, every sample is tagged with the phase its request
# started in; a point's figures count the steady phase only.
PHASE_TAG, STEADY = "bench_phase", "steady"
OK_TAG = "request_ok"
# The metrics whose every sample is of one request, so tagged with its phase.
PHASED_METRICS = ("llm_", "http_req", "data_")

ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions",
             "responses": "/v1/responses",
             "conv": "/v1/conv/chat/completions"}  # conv: Jan's, stored in a conversation
CONVERSATIONS = "/v1/conversations"
SPEC_ENV = "INDIGO_BENCH"  # the env variable the generated scenario reads its spec from


@dataclass
class BenchSpec:
    """Everything one benchmark point needs; JSON round-trips through the run's env."""

    model: str = ""
    endpoint: str = "chat"  # chat | responses
    stream: bool = True
    itl_per_chunk: bool = False  # ITL as vLLM's bench takes it: a gap per chunk (chunk_gaps)
    ignore_eos: bool = False
    auth: str = "none"  # none | jan-guest (API_KEY, when set, is always the bearer first)
    # workload
    dataset: str = ""  # "" synthetic | a JSONL or ShareGPT file | "sample"
    dataset_kind: str = ""  # jsonl | sharegpt ("" = from the file name)
    input_len: str = "128"
    output_len: str = "64"  # "" = the dataset's targets, or the server's choice
    prefix_tokens: int = 0
    seed: int = 0
    tokenizer: str = ""
    multi_turn: bool = False  # ShareGPT: a conversation's turns in order, history growing
    # load profile
    profile: str = "synchronous"
    concurrency: int = 1
    rate: float = 0.0
    burstiness: float = 1.0
    duration: str = "30s"
    requests: int = 0  # > 0: this many requests instead of a duration
    max_concurrency: int = 256  # VU limit of open-loop profiles and the throughput profile
    warmup: float = 0.0  # seconds from the first request not counted in the figures
    cooldown: float = 0.0  # seconds before the planned end not counted
    slos: str = ""
    timeout: str = ""  # per request ("" = the HTTP client's default, 60 s)
    thresholds: dict[str, list[str]] = field(default_factory=dict)
    label: str = ""  # the point's name in a sweep (tag bench_point)
    epoch: float = 0.0  # time.time() when the point was launched (llm_request_window's 0)

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> BenchSpec:
        return cls(**orjson.loads(text))

    def validate(self) -> None:
        from ..http.config import parse_timeout

        try:
            parse_timeout(self.timeout or None)
        except (TypeError, ValueError) as exc:
            raise ScenarioError(f"--timeout: {exc}", ExitCode.USAGE) from None
        if self.endpoint not in ENDPOINTS:
            raise ScenarioError(f"--endpoint: expected one of {', '.join(ENDPOINTS)}, "
                                f"got {self.endpoint!r}", ExitCode.USAGE)
        if self.profile not in PROFILES:
            raise ScenarioError(f"--profile: expected one of {', '.join(PROFILES)}, sweep "
                                f"or find, got {self.profile!r}", ExitCode.USAGE)
        if self.profile in OPEN_PROFILES and not 0 < self.rate < math.inf:
            raise ScenarioError(f"--profile {self.profile} needs --rate above 0 (a finite "
                                "number)", ExitCode.USAGE)
        if self.burstiness != 1.0 and self.profile != "gamma":
            raise ScenarioError("--burstiness is for --profile gamma", ExitCode.USAGE)
        if not 0 < self.burstiness < math.inf:
            raise ScenarioError("--burstiness: must be a finite number above 0",
                                ExitCode.USAGE)
        unmeasured = [o.text for o in parse_slos(self.slos) if o.metric != "e2el"]
        if not self.stream and unmeasured:
            # nothing to judge them on, and goodput would count every request as meeting them
            raise ScenarioError(f"--slo {', '.join(unmeasured)}: --no-stream measures no "
                                "TTFT, TPOT or ITL (only e2el)", ExitCode.USAGE)
        if (self.warmup or self.cooldown) and (
                self.requests or self.warmup + self.cooldown >= self.duration_s()):
            raise ScenarioError("--warmup and --cooldown: together shorter than --duration, "
                                "and not with --iterations", ExitCode.USAGE)
        if self.multi_turn and (not self.dataset or self.endpoint not in ("chat", "conv")):
            raise ScenarioError("--multi-turn: with a ShareGPT --dataset, on the chat or "
                                "conv endpoint", ExitCode.USAGE)
        if self.auth not in ("none", "jan-guest"):
            raise ScenarioError(f"--auth: expected jan-guest, got {self.auth!r}",
                                ExitCode.USAGE)

    def duration_s(self) -> float:
        from ..scenario.options import parse_duration

        return parse_duration(self.duration, "--duration")

    def vus(self) -> int:
        """The most requests this point may have in flight."""
        if self.profile == "synchronous":
            return 1
        if self.profile == "concurrency":
            return self.concurrency
        return self.max_concurrency


# --- the generated scenario's options -----------------------------------------------------

def bench_options(spec: BenchSpec) -> dict[str, Any]:
    """k6 options for the spec's load profile: closed loop (constant-vus or
    shared-iterations) or open loop (constant-arrival-rate with constant, Poisson or
    gamma gaps)."""
    scenario: dict[str, Any]
    if spec.profile in CLOSED_PROFILES:
        vus = spec.vus()
        if spec.requests:
            scenario = {"executor": "shared-iterations", "vus": min(vus, spec.requests),
                        "iterations": spec.requests, "maxDuration": "24h"}
        else:
            scenario = {"executor": "constant-vus", "vus": vus, "duration": spec.duration}
    else:
        duration: Any = spec.duration
        if spec.requests:  # the time the schedule needs for that many, on average
            duration = spec.requests / spec.rate
        scenario = {
            "executor": "constant-arrival-rate", "rate": spec.rate, "timeUnit": "1s",
            "duration": duration, "maxVUs": spec.max_concurrency,
            "preAllocatedVUs": min(spec.max_concurrency, max(1, math.ceil(spec.rate))),
            "arrivals": "constant" if spec.profile == "constant" else spec.profile,
            "seed": spec.seed,
        }
        if spec.profile == "gamma":
            scenario["burstiness"] = spec.burstiness
    if spec.label:
        scenario["tags"] = {"bench_point": spec.label}
    options: dict[str, Any] = {"scenarios": {"bench": scenario}}
    if spec.thresholds:
        options["thresholds"] = steady_thresholds(spec)
    if spec.timeout:
        options["timeout"] = spec.timeout
    return options


def steady_thresholds(spec: BenchSpec) -> dict[str, list[str]]:
    """--threshold judges the samples the point's figures count: with a warm-up or
    cool-down, those of the requests started in the steady phase (`bench_phase:steady`
    added to the filter of each metric a request tags, PHASED_METRICS). The others
    (vus, iterations, iteration_duration, dropped_iterations) are of the whole point."""
    if not (spec.warmup or spec.cooldown):
        return spec.thresholds
    out: dict[str, list[str]] = {}
    for key, expressions in spec.thresholds.items():
        try:
            name, suffix, tags = parse_metric_key(key)
        except ThresholdError:  # the run reports it, in its own words
            name, tags = "", ()
        if name.startswith(PHASED_METRICS) and PHASE_TAG not in dict(tags):
            key = f"{name}{{{suffix + ',' if suffix else ''}{PHASE_TAG}:{STEADY}}}"
        out.setdefault(key, []).extend(expressions)
    return out


def build_workload(spec: BenchSpec, counter: TokenCounter) -> Workload:
    """A dataset keeps its own output targets unless `output_len` (a fixed number then)
    is given; synthetic prompts take both lengths from the spec."""
    output = parse_length(spec.output_len, "--output-tokens") if spec.output_len else None
    if spec.dataset:
        if output is not None and output.kind != "fixed":
            raise ScenarioError("--output-tokens: with --dataset, a fixed number",
                                ExitCode.USAGE)
        kind = spec.dataset_kind or guess_kind(spec.dataset)
        return dataset_workload(spec.dataset, kind, spec.seed, counter,
                                output.min if output is not None else None, spec.multi_turn,
                                needed=spec.requests)
    return SyntheticWorkload(parse_length(spec.input_len, "--input-tokens"), output,
                             spec.seed, spec.prefix_tokens, counter)


# --- metrics ------------------------------------------------------------------------------

# The point's percentiles of these come from every value (metrics/exact.py), not the sketch.
EXACT_METRICS = (TTFT, TPOT, ITL, TOTAL, SCHEDULE_DELAY)


class BenchMetrics:
    """The benchmark's metrics in one registry (the run's, when created at import)."""

    def __init__(self, registry: Registry | None = None) -> None:
        reg = registry or active_registry()
        self.registry = reg
        for name in EXACT_METRICS:
            keep_exact(reg, name)
        self.llm = LLMMetrics(reg)
        self.prompt_tokens = reg.metric(PROMPT_TOKENS, "trend")
        self.schedule_delay = reg.metric(SCHEDULE_DELAY, "trend", True)
        self.failed = reg.metric(REQUEST_FAILED, "rate")
        self.good = reg.metric(GOOD_REQUESTS, "counter")
        self.window = reg.metric(WINDOW, "gauge")
        self.samples = ErrorSampler(reg)  # why requests failed: one body line per status


@dataclass
class RequestOutcome:
    """What one benchmark request did (also returned to scenario code)."""

    result: StreamResult | None
    status: int
    ok: bool
    good: bool
    prompt_tokens: int
    output_tokens: int
    tokens: str  # usage | tokenizer | estimate
    schedule_delay_ms: float | None


def request_body(spec: BenchSpec, req: BenchRequest) -> dict[str, Any]:
    """The OpenAI-compatible body for the spec's endpoint."""
    body: dict[str, Any] = {"model": spec.model, "stream": spec.stream}
    if spec.endpoint == "responses":
        body["input"] = req.prompt if not req.messages else list(req.messages)
        if req.max_tokens is not None:
            body["max_output_tokens"] = req.max_tokens
    elif spec.endpoint == "completions":
        body["prompt"] = req.prompt or messages_prompt(req.messages)
        if spec.stream:
            body["stream_options"] = {"include_usage": True}
        if req.max_tokens is not None:
            body["max_tokens"] = req.max_tokens
    else:
        body["messages"] = req.as_messages()
        if spec.stream:
            body["stream_options"] = {"include_usage": True}
        if req.max_tokens is not None:
            body["max_tokens"] = req.max_tokens
    if spec.ignore_eos:
        body["ignore_eos"] = True  # vLLM/SGLang: decode exactly max_tokens
    return body


def messages_prompt(messages: Sequence[dict[str, Any]]) -> str:
    """A chat dataset's messages as one /v1/completions prompt: their text, a line each
    (content given as parts keeps its text parts; no content, e.g. a tool call, is empty)."""
    return "\n".join(_content_text(m.get("content")) for m in messages)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content
                       if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


async def send_request(http: Any, base: str, spec: BenchSpec, req: BenchRequest,
                       headers: dict[str, str], metrics: BenchMetrics, counter: TokenCounter,
                       slos: list[Objective], phase: str = "",
                       extra: dict[str, Any] | None = None) -> RequestOutcome:
    """Send one request (its body plus `extra` fields), read it through the stream meter,
    record every metric (tagged `bench_phase=phase` when a phase is given)."""
    due = scheduled_start.get()
    started_at = time.time() - spec.epoch
    sent = time.perf_counter()
    delay = (sent - due) * 1000.0 if due is not None else None
    url = base.rstrip("/") + ENDPOINTS[spec.endpoint]
    name = ENDPOINTS[spec.endpoint]
    body = {**request_body(spec, req), **(extra or {})}
    if spec.stream:
        resp = await http.post(url, json=body, headers=headers, stream=True, name=name)
        refusal = await metrics.samples.refusal_body(resp)
        res = await read_stream(resp, ChunkGapMeter if spec.itl_per_chunk else StreamMeter)
        source = _output_tokens(res, counter)
        values = {"ttft": res.ttft_ms, "tpot": res.tpot_ms, "e2el": res.total_ms}
    else:
        resp = await http.post(url, json=body, headers=headers, name=name)
        refusal = b""
        res = _non_streamed(resp, sent, counter)
        source = "usage" if res.usage_tokens else counter.source
        values = {"e2el": res.total_ms}
    # A stream with no token (only [DONE], or events the meter does not read) measured
    # no TTFT or ITL: failed, as in vLLM's bench, not a completed request.
    ok = res.ok and 200 <= resp.status < 300 and (not spec.stream or bool(res.token_times))
    # request_ok: the per-point figures, as vLLM's, are of successful requests only
    tags = {"tokens": source if source == "usage" else counter.source,
            OK_TAG: "true" if ok else "false"}
    if phase:
        tags[PHASE_TAG] = phase
    metrics.llm.record_stream(res, tags, queue_ms=parse_queue_ms(resp.headers),
                              status=resp.status)
    ts = current_tags.get().with_tags(tags)
    rec = metrics.registry.record
    rec(metrics.window, started_at, ts)
    rec(metrics.window, started_at + (res.end_at - sent), ts)
    prompt_tokens, prompt_source = _prompt_tokens(res, req, counter)
    if ok:  # throughput counts the tokens of answered requests only, as vLLM does
        # its own `tokens` tag: where the prompt's count came from
        rec(metrics.prompt_tokens, float(prompt_tokens), ts.with_pairs(("tokens", prompt_source)))
    # a failed request's status says why it failed (bench_failures)
    rec(metrics.failed, 0.0 if ok else 1.0,
        ts if ok else ts.with_pairs((STATUS_TAG, str(resp.status or 0))))
    if not ok:
        metrics.samples.offer(resp, res, refusal, ts)
    good = ok and request_meets(slos, values)
    if good:
        rec(metrics.good, 1.0, ts)
    if delay is not None:
        rec(metrics.schedule_delay, max(delay, 0.0), ts)
    return RequestOutcome(res, resp.status, ok, good, prompt_tokens, res.output_tokens,
                          tags["tokens"], delay)


async def create_conversation(http: Any, base: str, headers: dict[str, str]) -> str | None:
    """POST /v1/conversations (Jan): the new conversation's id, None if it failed."""
    resp = await http.post(base.rstrip("/") + CONVERSATIONS, json={"title": "benchmark"},
                           headers=headers, name=CONVERSATIONS)
    try:
        body = resp.json() if 200 <= resp.status < 300 else None
    except ValueError:
        body = None
    conversation = body.get("id") if isinstance(body, dict) else None
    return conversation if isinstance(conversation, str) and conversation else None


def _output_tokens(res: StreamResult, counter: TokenCounter) -> str:
    """The server's usage when it sent one; else the tokenizer's count of the text; else
    the number of content events (an estimate)."""
    if res.usage_tokens:
        return "usage"
    if counter.source == "tokenizer":
        res.output_tokens = counter.count(res.text)
        return "tokenizer"
    return "estimate"


def _prompt_tokens(res: StreamResult, req: BenchRequest,
                   counter: TokenCounter) -> tuple[int, str]:
    """The server's usage.prompt_tokens when it sent one (its chat template's tokens
    included, as vLLM's bench counts them), else the workload's count of the prompt text."""
    if res.prompt_tokens is not None:
        return res.prompt_tokens, "usage"
    return req.prompt_tokens, counter.source


def _non_streamed(resp: Any, sent: float, counter: TokenCounter) -> StreamResult:
    """A non-streamed answer as a StreamResult without token times (no TTFT/ITL/TPOT)."""
    from .stream_metrics import usage_output_tokens, usage_prompt_tokens

    body: Any = None
    if 200 <= resp.status < 300:
        try:
            body = resp.json()
        except ValueError:
            body = None
    usage = usage_output_tokens(body)
    try:
        text, calls = _answer_text(body), isinstance(body, dict) and _tool_calls(body)
    except (TypeError, AttributeError):  # "choices": 5: malformed, not an exception
        body, text, calls = None, "", False
    tokens = usage if usage is not None else counter.count(text)
    # As for a stream with no token: a 2xx with no answer in it (`{}`, no choices, empty
    # content) generated nothing, and is a failed request, not a fast success.
    ok = (isinstance(body, dict) and not body.get("error")
          and bool(text or (usage or 0) > 0 or calls))
    return StreamResult(request_start=sent, headers_at=None, end_at=time.perf_counter(),
                        token_times=[], output_tokens=tokens, usage_tokens=usage is not None,
                        completed=ok, text=text, tool_calls=0, events=0,
                        errors=[] if ok else ["http_status"],
                        prompt_tokens=usage_prompt_tokens(body))


def _tool_calls(body: dict[str, Any]) -> bool:
    """A chat answer that calls a tool (it may have no text)."""
    return any(isinstance(c, dict) and isinstance(c.get("message"), dict)
               and c["message"].get("tool_calls") for c in body.get("choices") or ())


def _answer_text(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    for choice in body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return message["content"]
        if isinstance(choice, dict) and isinstance(choice.get("text"), str):
            return choice["text"]  # /v1/completions
    parts = []
    for item in body.get("output") or ():
        for content in (item.get("content") or ()) if isinstance(item, dict) else ():
            if isinstance(content, dict) and isinstance(content.get("text"), str):
                parts.append(content["text"])
    return "".join(parts)


# --- the iteration ------------------------------------------------------------------------

class BenchScenario:
    """A spec turned into a scenario: `options` and the `iteration(vu)` function."""

    def __init__(self, spec: BenchSpec, registry: Registry | None = None) -> None:
        spec.validate()
        self.spec = spec
        self.options = bench_options(spec)
        self.counter = TokenCounter(spec.tokenizer or None)
        self.workload = build_workload(spec, self.counter)
        self.slos = parse_slos(spec.slos)
        self.metrics = BenchMetrics(registry)
        self._stride = max(1, spec.vus())
        self._pool: Any = None
        self._first_at: float | None = None  # this process's first request (time.time())

    def request_for(self, vu: Any) -> BenchRequest:
        """VU k's n-th request is item n·stride + k − 1: VUs walk the workload without
        overlapping, the same way in every run and every worker."""
        return self.workload.item(vu.iteration * self._stride + max(vu.id, 1) - 1)

    def phase(self) -> str:
        """warmup, steady or cooldown, by when this request starts (from the first one);
        "" when neither is set. Worker processes start together, so each measures from
        its own first request."""
        spec = self.spec
        if not (spec.warmup or spec.cooldown):
            return ""
        now = time.time()
        if self._first_at is None:
            self._first_at = now
        elapsed = now - self._first_at
        if elapsed < spec.warmup:
            return "warmup"
        return "cooldown" if elapsed >= spec.duration_s() - spec.cooldown else STEADY

    async def iteration(self, vu: Any) -> RequestOutcome | None:
        env = vu.env
        base = env.get("BASE", "")
        req = self.request_for(vu)
        phase = self.phase()
        # Every sample of the request (http_req_*, data_*) carries its phase, so the
        # thresholds can judge the steady phase as the figures do (`steady_thresholds`).
        token = current_tags.set(current_tags.get().with_tags({PHASE_TAG: phase})) \
            if phase else None
        try:
            if self.spec.auth == "jan-guest":
                return await self._as_guest(vu, base, req, phase)
            headers = {"Content-Type": "application/json"}
            if env.get("API_KEY"):
                headers["Authorization"] = f"Bearer {env['API_KEY']}"
            return await self.conversation(vu.http, base, req, headers, phase)
        finally:
            if token is not None:
                current_tags.reset(token)

    async def conversation(self, http: Any, base: str, req: BenchRequest,
                           headers: dict[str, str], phase: str = "") -> RequestOutcome | None:
        """The request, then its follow-up turns (multi-turn), each sent with the history
        so far (every earlier question and answer); stops at the first failed turn. On
        Jan's conv endpoint, a multi-turn conversation is also stored server-side: one
        conversation is created for it and every turn is sent with its id."""
        extra: dict[str, Any] | None = None
        if req.followups and self.spec.endpoint == "conv":
            conversation = await create_conversation(http, base, headers)
            if conversation is None:
                self.record_failed(phase)
                return None
            extra = {"conversation": conversation, "store": True}
        outcome = await send_request(http, base, self.spec, req, headers, self.metrics,
                                     self.counter, self.slos, phase, extra)
        history = req.as_messages()
        for text, target in req.followups:
            if not outcome.ok or outcome.result is None:
                break
            history += [{"role": "assistant", "content": outcome.result.text},
                        {"role": "user", "content": text}]
            turn = BenchRequest(messages=tuple(history), max_tokens=target,
                                prompt_tokens=self.counter.count_messages(history))
            outcome = await send_request(http, base, self.spec, turn, headers, self.metrics,
                                         self.counter, self.slos, phase, extra)
        return outcome

    def record_failed(self, phase: str) -> None:
        """A request that could not be sent (no conversation, no session): failed, tagged
        with the phase it started in, or a point's figures (the steady phase) miss it."""
        tags = current_tags.get()
        if phase:
            tags = tags.with_tags({PHASE_TAG: phase})
        self.metrics.registry.record(self.metrics.failed, 1.0, tags)

    async def _as_guest(self, vu: Any, base: str, req: BenchRequest,
                        phase: str) -> RequestOutcome | None:
        """Jan guest login (sessions pooled across iterations, refreshed near expiry)."""
        from ..jan.metrics import FlowMetrics
        from ..jan.session import JanConfig, SessionPool

        if self._pool is None:
            config = JanConfig.from_env({**vu.env, "SESSION_MODE": "pool",
                                         "REFRESH_MODE": "expiry"})
            self._pool = SessionPool(config, FlowMetrics("bench"))
        async with self._pool.lend(vu.http) as session:
            if session is None:
                self.record_failed(phase)
                return None
            return await self.conversation(vu.http, base, req, session.headers(), phase)
