"""Side by side with guidellm: the same simulator, the same rate, the same prompts.

The embedded simulator (fixed speed: TTFT 100 ms, 50 tokens/s, 32 output tokens) runs
on one core (`taskset -c 1`); `indigo-loadtest bench` and `guidellm run` take turns on
the other (`taskset -c 0`), each sending the same JSONL prompts (64 words) at the same
constant rate for the same time. Printed: TTFT, TPOT (vLLM's definition, guidellm's
"ITL") and E2EL medians of each, and each generator's CPU per request.

CPU per request is marginal: each tool runs twice, for --duration and for a short
5 s, and the CPU difference is divided by the difference in requests, so start-up
(guidellm imports torch and transformers) does not count.

guidellm lives in its own virtual environment, never in the project's:

    python3 -m venv /tmp/guidellm-venv && /tmp/guidellm-venv/bin/pip install guidellm
    python bench/bench_vs_guidellm.py [--guidellm /tmp/guidellm-venv/bin/guidellm]
                                      [--rate 10] [--duration 30] [--runs 3]

With --runs N (default 3) the runs are interleaved (ours and guidellm alternate which
goes first) and each figure's median over the runs is printed after the runs' own.
Our medians are exact (the results file's percentiles are of every request's value,
numpy's linear percentile, as guidellm's and vLLM's); a run whose figure fell back to
the sketch stops the script. On a shared machine, keep each measurement short and take
turns: `--record FILE` appends each run (with its load average) to FILE, `--first
guidellm` starts a single run with guidellm, and `--summarize FILE` prints every rate's
medians over the runs recorded there:

    flock LOCK python bench/bench_vs_guidellm.py --runs 1 --rate 10 --record runs.jsonl
    python bench/bench_vs_guidellm.py --summarize runs.jsonl

Nothing is downloaded at run time: guidellm's tokenizer is a word-level one made here
(HF_HUB_OFFLINE=1), and the prompts are words it knows, so both tools count the same
64 prompt tokens the simulator reports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common import (
    GEN_CORE,
    PYTHON,
    TARGET_CORE,
    background,
    free_port,
    log,
    ours_cmd,
    pinned,
    run,
)

API_KEY = "bench-vs-guidellm"
MODEL = "jan-v1-4b"
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
PROMPTS, PROMPT_WORDS, OUTPUT_TOKENS = 400, 64, 32
SIMULATOR = ("--ttft-ms", "100", "--tokens-per-sec", "50", "--slots", "1024",
             "--reply-tokens", str(OUTPUT_TOKENS))
SHORT_S = 5.0


@dataclass
class Result:
    """One run of one tool: medians in ms, completed requests, CPU seconds."""

    ttft: float
    tpot: float
    e2el: float
    requests: int
    cpu_s: float


def write_inputs(tmp: Path) -> tuple[Path, Path, Path]:
    """The prompts as each tool reads them, and guidellm's local tokenizer directory."""
    prompts = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(PROMPT_WORDS))
               + f" {WORDS[i % len(WORDS)]}" for i in range(PROMPTS)]
    ours, theirs = tmp / "ours.jsonl", tmp / "guidellm.jsonl"
    ours.write_text("".join(json.dumps({"prompt": p, "max_tokens": OUTPUT_TOKENS}) + "\n"
                            for p in prompts))
    theirs.write_text("".join(json.dumps({"prompt": p, "output_tokens_count": OUTPUT_TOKENS})
                              + "\n" for p in prompts))
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, **{w: i + 1 for i, w in enumerate(WORDS)}},
                                     unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok_dir = tmp / "tokenizer"
    tok_dir.mkdir()
    tok.save(str(tok_dir / "tokenizer.json"))
    (tok_dir / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]",
        "model_max_length": 4096}))
    return ours, theirs, tok_dir


def run_ours(url: str, data: Path, rate: float, duration: float, tmp: Path) -> Result:
    results = tmp / "ours.json"
    cmd = ours_cmd("bench", "--base", url, "--model", MODEL, "--dataset", str(data),
                   "--dataset-kind", "jsonl", "--profile", "constant", "--rate", str(rate),
                   "-d", f"{duration:g}s", "--results-file", str(results),
                   "--results-dir", str(tmp), "--no-summary", "--no-report", "-q", base=url)
    res = run(pinned(cmd, GEN_CORE), timeout=duration + 120, cwd=tmp,
              env={**os.environ, "API_KEY": API_KEY})
    p = json.loads(results.read_text())["points"][0]
    sketched = [k for k in ("ttft_ms", "tpot_ms", "e2el_ms") if not p[k]["exact"]]
    if sketched:
        raise SystemExit(f"bench: our {', '.join(sketched)} percentiles are not exact")
    return Result(p["ttft_ms"]["p50"], p["tpot_ms"]["p50"], p["e2el_ms"]["p50"],
                  p["completed"], res.cpu_seconds)


def guidellm_run(exe: str, url: str, data: Path, tok_dir: Path, rate: float,
                 duration: float, tmp: Path, out: Path) -> Any:
    """One `guidellm run` at a constant rate against `url`, its JSON results in `out`
    (also used by bench_ttft_stamps.py)."""
    scenario = out.with_name(out.stem + "-scenario.json")
    scenario.write_text(json.dumps({"spec": {
        "backend": {"kind": "openai_http", "target": url, "model": MODEL,
                    "api_key": API_KEY, "validate_backend": False, "http2": False},
        "profile": {"kind": "constant", "rate": [rate]},
        "data": [{"kind": "json_file", "path": str(data)}],
        "tokenizer": {"kind": "hf_auto", "model": str(tok_dir)},
        "constraints": [{"kind": "max_duration", "seconds": duration}],
        "outputs": [{"kind": "json", "path": str(out)}]}}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [exe, "run", "-c", str(scenario), "--disable-console"]
    return run(pinned(cmd, GEN_CORE), timeout=duration + 300, cwd=tmp, env=env)


def run_guidellm(exe: str, url: str, data: Path, tok_dir: Path, rate: float,
                 duration: float, tmp: Path) -> Result:
    out = tmp / "guidellm-out.json"
    res = guidellm_run(exe, url, data, tok_dir, rate, duration, tmp, out)
    m = json.loads(out.read_text())["benchmarks"][0]["metrics"]

    def median(name: str) -> float:
        return float(m[name]["successful"]["median"])

    return Result(median("time_to_first_token_ms"), median("inter_token_latency_ms"),
                  median("request_latency") * 1000.0, int(m["request_totals"]["successful"]),
                  res.cpu_seconds)


def marginal_cpu_ms(long: Result, short: Result) -> float | None:
    extra = long.requests - short.requests
    return (long.cpu_s - short.cpu_s) / extra * 1000.0 if extra > 0 else None


def median_result(runs: list[Result]) -> Result:
    """Each figure's median over the runs."""
    def med(name: str) -> float:
        return statistics.median(getattr(r, name) for r in runs)

    return Result(med("ttft"), med("tpot"), med("e2el"), round(med("requests")), med("cpu_s"))


def report(rate: float, duration: float, ours: tuple[Result, Result],
           theirs: tuple[Result, Result]) -> str:
    (o, o_short), (g, g_short) = ours, theirs
    rows = [("TTFT p50 (ms)", o.ttft, g.ttft), ("TPOT p50 (ms; guidellm: ITL)", o.tpot, g.tpot),
            ("E2EL p50 (ms)", o.e2el, g.e2el)]
    lines = [f"constant {rate:g} req/s for {duration:g} s; simulator: TTFT 100 ms, "
             f"20 ms a token, {OUTPUT_TOKENS} tokens, {PROMPT_WORDS + 1}-token prompts",
             f"{'':32}{'indigo-loadtest':>16}{'guidellm':>12}{'difference':>12}"]
    lines += [f"{name:32}{a:16.2f}{b:12.2f}{a - b:+12.2f}" for name, a, b in rows]
    lines.append(f"{'completed requests':32}{o.requests:16d}{g.requests:12d}")
    lines.append(f"{'CPU, whole run (s)':32}{o.cpu_s:16.2f}{g.cpu_s:12.2f}")
    mo, mg = marginal_cpu_ms(o, o_short), marginal_cpu_ms(g, g_short)
    lines.append(f"{'CPU per request, marginal (ms)':32}"
                 f"{mo if mo is not None else float('nan'):16.2f}"
                 f"{mg if mg is not None else float('nan'):12.2f}")
    return "\n".join(lines)


def one_run(args: argparse.Namespace, exe: str, url: str, inputs: tuple[Path, Path, Path],
            tmp: Path, guidellm_first: bool) -> dict[float, tuple[Result, Result]]:
    """Both tools at both durations; which tool goes first alternates between runs, so
    neither always meets the machine in the same state."""
    ours_data, their_data, tok_dir = inputs
    results = {}
    for duration in (args.duration, SHORT_S):
        got: dict[str, Result] = {}
        for tool in (("guidellm", "ours") if guidellm_first else ("ours", "guidellm")):
            log(f"{tool}, {duration:g} s")
            got[tool] = (run_ours(url, ours_data, args.rate, duration, tmp) if tool == "ours"
                         else run_guidellm(exe, url, their_data, tok_dir, args.rate,
                                           duration, tmp))
        results[duration] = (got["ours"], got["guidellm"])
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--guidellm", default="/tmp/guidellm-venv/bin/guidellm")
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs; medians reported")
    ap.add_argument("--first", choices=("ours", "guidellm"), default="ours",
                    help="the tool that goes first in the first run (default: ours)")
    ap.add_argument("--record", type=Path, help="append each run to this JSON-lines file")
    ap.add_argument("--summarize", type=Path, help="print the medians of the runs recorded "
                    "in this file, per rate, and exit")
    args = ap.parse_args()
    if args.summarize:
        summarize(args.summarize, args.duration)
        return
    if not Path(args.guidellm).exists():
        raise SystemExit(f"bench: no guidellm at {args.guidellm} (see this file's docstring)")
    runs = []
    with tempfile.TemporaryDirectory(prefix="indigo-vs-guidellm-") as d:
        tmp = Path(d)
        inputs = write_inputs(tmp)
        port = free_port()
        server = [PYTHON, "-m", "indigo_loadtest.simulator", "--port", str(port), *SIMULATOR]
        env = {**os.environ, "INDIGO_SIM_API_KEY": API_KEY}
        with background(pinned(server, TARGET_CORE), port=port, env=env,
                        stdout=subprocess.DEVNULL):
            url = f"http://127.0.0.1:{port}"
            for i in range(args.runs):
                log(f"run {i + 1} of {args.runs}")
                load = os.getloadavg()
                runs.append(one_run(args, args.guidellm, url, inputs, tmp,
                                    (i % 2 == 1) != (args.first == "guidellm")))
                (o, g), (o_short, g_short) = runs[-1][args.duration], runs[-1][SHORT_S]
                if args.record:
                    record(args.record, args.rate, args.duration, runs[-1],
                           [load[0], os.getloadavg()[0]])
                print(f"run {i + 1}:\n" + report(args.rate, args.duration, (o, o_short),
                                                 (g, g_short)) + "\n", flush=True)

    def med(duration: float, side: int) -> Result:
        return median_result([r[duration][side] for r in runs])

    print(f"medians of {args.runs} runs:\n" + report(
        args.rate, args.duration, (med(args.duration, 0), med(SHORT_S, 0)),
        (med(args.duration, 1), med(SHORT_S, 1))))


def record(path: Path, rate: float, duration: float,
           run_: dict[float, tuple[Result, Result]], load: list[float]) -> None:
    """One run as a JSON line: each tool's long and short results, the load average
    (1 min) at its start and end, the time."""
    row = {"rate": rate, "duration": duration, "load": load,
           "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           **{f"{tool}_{'long' if d == duration else 'short'}": asdict(r[side])
              for d, r in run_.items() for side, tool in enumerate(("ours", "guidellm"))}}
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def summarize(path: Path, duration: float) -> None:
    """The medians of the runs recorded in `path`, per rate."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for rate in sorted({r["rate"] for r in rows}, reverse=True):
        runs = [r for r in rows if r["rate"] == rate and r["duration"] == duration]

        def med(key: str, runs: list[dict] = runs) -> Result:
            return median_result([Result(**r[key]) for r in runs])

        loads = [x for r in runs for x in r["load"]]
        print(f"medians of {len(runs)} run(s) ({runs[0]['at']} to {runs[-1]['at']}, load "
              f"average {min(loads):.2f}-{max(loads):.2f}):\n" + report(
                  rate, duration, (med("ours_long"), med("ours_short")),
                  (med("guidellm_long"), med("guidellm_short"))) + "\n")


if __name__ == "__main__":
    main()
