"""The flags of `indigo-loadtest bench` (light: imported whenever the CLI parses)."""

from __future__ import annotations

import argparse

CLOSED_PROFILES = ("synchronous", "concurrency", "throughput")
OPEN_PROFILES = ("constant", "poisson", "gamma")
PROFILES = CLOSED_PROFILES + OPEN_PROFILES
MAX_ERROR_RATE = 0.05  # a point failing more of its requests fails the run (exit 114)
BENCH_DESCRIPTION = (
    "Benchmark an OpenAI-compatible server as `vllm bench serve` measures it, through the "
    "same engine and outputs as `run`. Of the run flags, --vus is the concurrency of "
    "--profile concurrency, --iterations the number of requests, --duration the length "
    "of each point (default 30s). See docs/benchmark.md."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """bench's own flags (the run flags --duration, --vus, --iterations, --out, ... are
    added by the CLI: --vus is the concurrency, --iterations the number of requests)."""
    t = p.add_argument_group("target")
    t.add_argument("--base", metavar="URL", help="server base URL (default: BASE, else the "
                   "embedded simulator)")
    t.add_argument("--api-key", metavar="KEY", help="bearer key (default: API_KEY; prefer "
                   "the variable, a flag is visible to other users of the machine)")
    t.add_argument("--auth", choices=["jan-guest"], help="log in as a Jan guest")
    t.add_argument("--model", help="model id (default: MODEL, else the first of /v1/models)")
    t.add_argument("--endpoint", choices=["chat", "completions", "responses", "conv"],
                   default="chat", help="/v1/chat/completions, /v1/completions, "
                   "/v1/responses, or Jan's /v1/conv/chat/completions (multi-turn: stored "
                   "in a conversation)")
    t.add_argument("--sim", action="append", default=[], metavar="SETTING=VALUE",
                   help="a setting of the embedded simulator, as `serve` takes it, e.g. "
                   "latency_model=batching (repeatable; INDIGO_SIM_* variables work too)")
    t.add_argument("--no-stream", action="store_true", help="non-streamed requests "
                   "(no TTFT, ITL or TPOT)")
    t.add_argument("--timeout", default="", metavar="DURATION", help="per request "
                   "(default 60s; long outputs may need more)")
    t.add_argument("--itl-per-chunk", action="store_true", help="ITL as vLLM's bench "
                   "takes it: a gap at every chunk, empty ones too (default: at every "
                   "chunk with output)")
    t.add_argument("--ignore-eos", action="store_true", help="send ignore_eos (vLLM, "
                   "SGLang) so the server decodes exactly max_tokens")
    w = p.add_argument_group("workload")
    w.add_argument("--dataset", metavar="FILE", help="JSONL (prompt or messages, optional "
                   "max_tokens) or ShareGPT JSON; 'sample' is the packaged ShareGPT sample")
    w.add_argument("--dataset-kind", choices=["jsonl", "sharegpt"])
    w.add_argument("--multi-turn", action="store_true", help="ShareGPT: send each "
                   "conversation's turns in order, the history growing")
    w.add_argument("--input-tokens", default="128", metavar="DIST", help="prompt length: N, "
                   "uniform:MIN:MAX, normal:MEAN:SD[:MIN:MAX], lognormal:MEAN:SD[:MIN:MAX]")
    w.add_argument("--output-tokens", metavar="DIST", help="output length (max_tokens), "
                   "same forms (default: 64; with --dataset, the dataset's)")
    w.add_argument("--prefix-tokens", type=int, default=0, metavar="N",
                   help="a shared prefix of N tokens before every synthetic prompt")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--tokenizer", metavar="PATH", help="a local tokenizer.json, or a model "
                   "folder holding one, to count tokens with (else the server's usage, "
                   "else an estimate)")
    lp = p.add_argument_group("load")
    lp.add_argument("--profile", default="synchronous", choices=[*PROFILES, "sweep"])
    lp.add_argument("--rate", type=float, default=0.0, help="requests/s of constant, "
                    "poisson and gamma")
    lp.add_argument("--burstiness", type=float, default=1.0, help="gamma's shape "
                    "(1 = Poisson, lower = burstier)")
    lp.add_argument("--max-concurrency", type=int, default=256, metavar="N",
                    help="in-flight limit of open-loop profiles and of throughput")
    lp.add_argument("--warmup", default="0s", metavar="DURATION", help="requests started "
                    "in this first part of each point are not counted")
    lp.add_argument("--cooldown", default="0s", metavar="DURATION", help="nor those started "
                    "in this last part")
    lp.add_argument("--max-error-rate", type=float, default=MAX_ERROR_RATE, metavar="SHARE",
                    help="a point failing more than this share of its requests fails the "
                    f"run, exit 114 (default {MAX_ERROR_RATE:g}; 1 never)")
    lp.add_argument("--sweep-rates", type=int, default=5, metavar="N",
                    help="rates between synchronous and throughput in a sweep")
    lp.add_argument("--slo", metavar="SLOS", help="e.g. ttft:p99<500ms,tpot:p99<50ms: "
                    "goodput counts requests meeting all; points are judged on the "
                    "percentiles")
    lp.add_argument("--find", choices=["max-rate"], help="search the highest rate whose "
                    "point meets every --slo")
    lp.add_argument("--fail-below", type=float, metavar="RATE", help="with --find: exit "
                    "99 when the max rate meeting the SLO is below RATE (a CI gate)")
    lp.add_argument("--find-steps", type=int, default=5, metavar="N",
                    help="bisection steps of --find (default: 5)")
    lp.add_argument("--threshold", action="append", default=[], metavar="METRIC=EXPR",
                    help="a k6 threshold on any metric, e.g. llm_ttft_ms='p(99)<500'")
    lp.add_argument("--results-file", metavar="FILE", help="the JSON results of every "
                    "point (default: RESULTS_DIR/bench_TIMESTAMP.json)")
