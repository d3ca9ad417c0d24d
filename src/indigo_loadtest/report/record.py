"""The run record: metadata, verdict, totals and the time series of one run, in one file.

Written beside the summary export as `<export stem>.timeseries.json.gz` (gzip-compressed
JSON), so the export keeps k6's exact layout for k6 tooling and a `results/*.json` glob
still finds only exports. Layout (`FORMAT`):

    {"format": "indigo-loadtest.run/1",
     "meta": {tool, version, scenario, scenario_file, testid, target, started_at, ended_at,
              elapsed, planned: {scenarios, thresholds, duration}, workers, machine, tags},
     "verdict": {exit_code, text},
     "thresholds": [{key, expression, ok, observed, aggregation}],
     "checks": [{path, name, passes, fails}],
     "totals": {series key: statistics over the whole run},
     "endpoints": [{method, name, count, failed, p50, p95, p99}],
     "histograms": {metric: {"edges": [...], "counts": [...]}},
     "series": {"interval", "t": [...], "metrics": {key: {type, unit, cols: {...}}}}}

`report` and `compare` read only this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import math
import os
import platform
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..http.redact import mask_strings
from ..llm.stream_metrics import ITL, TOKENS_PER_SEC, TPOT, TTFT
from ..metrics.registry import Metric, Registry
from ..metrics.sinks import GaugeSink, RateSink, TrendSink
from ..metrics.summary import check_tree
from ..metrics.thresholds import ThresholdResult
from ..metrics.timeseries import (
    Recorder,
    bucket_value,
    group_tags,
    round_value,
    series_key,
    unit_of,
)

FORMAT = "indigo-loadtest.run/1"
RECORD_SUFFIX = ".timeseries.json.gz"
HISTOGRAM_BINS = 40
# The most a results file may hold (inflated): several times the largest record a run
# writes (at most ~1,400 points of a bounded set of series), and what `report` and
# `compare` can parse in well under a gigabyte. A gzip bomb stops here.
MAX_RECORD_BYTES = 128 * 1024 * 1024
STAT_KINDS = ("trend", "counter", "rate", "gauge")
HISTOGRAM_METRICS = ("http_req_duration", "iteration_duration", TTFT, ITL, TPOT,
                     TOKENS_PER_SEC)


class RecordError(ValueError):
    """A results file that cannot be read as a run record (one-line message)."""


def record_path(summary_path: Path) -> Path:
    return summary_path.with_name(results_stem(summary_path) + RECORD_SUFFIX)


def default_report_path(summary_path: Path) -> Path:
    return summary_path.with_name(results_stem(summary_path) + ".html")


def results_stem(path: Path) -> str:
    """`results/x` of `results/x.json` or `results/x.timeseries.json.gz`."""
    name = path.name
    for suffix in (RECORD_SUFFIX, ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


# --- recording while the test runs ----------------------------------------------------

class LiveRecording:
    """Reads `source()` every point width of the load clock and records a point (see
    metrics.timeseries).

    `clock()`: the load clock (the backend's `elapsed`: 0 until the scenarios start, so
    the workers' start-up leaves no empty points); `as_of()`: the load-clock instant
    `source()` holds the measurements up to (the backend's `live_as_of`: with shards,
    their latest snapshots', which may lag the clock), None when there is nothing new
    to read. Each point is dated by it: it holds exactly the requests up to that instant,
    so a point's rate is its count over its real width, the last point's too. Both
    default to the time since this recording was made."""

    def __init__(self, source: Callable[[], Registry], planned: float | None,
                 clock: Callable[[], float] | None = None,
                 as_of: Callable[[], float | None] | None = None) -> None:
        self.source = source
        self.recorder = Recorder(planned)
        self.started_at = time.time()  # wall time of the load clock's 0, once it runs
        self._t0 = time.monotonic()
        self._anchored = False
        self.clock = clock or (lambda: time.monotonic() - self._t0)
        self.as_of = as_of or self.clock
        self._task: asyncio.Future[None] | None = None
        self.dashboard: Any = None  # run --dashboard: stopped with the recording

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        next_t = 0.0
        while True:
            next_t += self.recorder.width(next_t)
            await self._until(next_t)
            t = await self._fresh(next_t)
            last = self.recorder.series.t[-1] if self.recorder.series.t else 0.0
            if t is not None and t > last:  # else nothing new yet: the next point has it
                await self.recorder.sample_async(self.source(), t)

    async def _until(self, t: float) -> None:
        """Sleep until the load clock reads `t` (it stands at 0 until the load starts)."""
        while (now := self.clock()) < t:
            await asyncio.sleep(t - now)
        if not self._anchored:
            self.started_at, self._anchored = time.time() - now, True

    async def _fresh(self, t: float) -> float | None:
        """The instant the live metrics hold up to, waited for up to LIVE_WAIT to reach
        `t` (shards' snapshots of that instant are on their way); rounded to POINT_ROUNDING
        so that runs read on time share their points' times (compare aligns them)."""
        deadline = time.monotonic() + LIVE_WAIT
        while (at := self.as_of()) is not None and at < t - POINT_ROUNDING \
                and time.monotonic() < deadline:
            await asyncio.sleep(LIVE_POLL)
        return None if at is None else round(at, 2)

    async def finish(self, final: Registry, end: float | None = None) -> None:
        """Stop reading, and add the last (partial) point from the run's final registry,
        dated `end` (the load clock at the load's end; default: the clock now)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        t = self.clock() if end is None else end
        if self.recorder.series.t:  # never a point of no width
            t = max(t, self.recorder.series.t[-1] + POINT_ROUNDING)
        self.recorder.sample(final, t)
        if self.dashboard is not None:
            await self.dashboard.stop()


# How long a reading waits for the shards' snapshots of its instant, how often it looks,
# and the precision of a point's time (s).
LIVE_WAIT = 0.3
LIVE_POLL = 0.02
POINT_ROUNDING = 0.01


# --- the record ----------------------------------------------------------------------

def build_record(*, meta: dict[str, Any], verdict: dict[str, Any], registry: Registry,
                 results: Sequence[ThresholdResult], elapsed: float,
                 recorder: Recorder) -> dict[str, Any]:
    """The record, every string in it masked (a check, group, tag or scenario name may
    hold a secret the run knows): the report is made from it, and shows what it holds."""
    return mask_strings({
        "format": FORMAT,
        "meta": meta,
        "verdict": verdict,
        "thresholds": [threshold_entry(r) for r in results],
        "checks": checks(registry),
        "totals": totals(registry, elapsed),
        "endpoints": endpoints(registry),
        "histograms": {m: h for m in HISTOGRAM_METRICS
                       if (h := histogram(registry.get(m))) is not None},
        "series": {"interval": recorder.fixed_width, **recorder.series.to_json()},
    })


def machine() -> dict[str, Any]:
    return {"hostname": socket.gethostname(), "platform": platform.platform(),
            "python": platform.python_version(), "cpus": os.cpu_count()}


def safe_target(target: str) -> str:
    """The target without credentials a URL may carry (user:password@, query string)."""
    with contextlib.suppress(ValueError):
        parts = urlsplit(target)
        if parts.scheme and parts.hostname:
            host = parts.hostname + (f":{parts.port}" if parts.port else "")
            return urlunsplit((parts.scheme, host, parts.path, "", ""))
    return target


def threshold_entry(r: ThresholdResult) -> dict[str, Any]:
    return {"key": r.key, "metric": r.metric, "expression": r.expression,
            "aggregation": r.aggregation, "ok": r.ok, "observed": round_value(r.observed)}


def checks(registry: Registry) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = [check_tree(registry)]
    while stack:
        node = stack.pop(0)
        out += [{"path": c.path, "name": c.name, "group": node.path, "passes": c.passes,
                 "fails": c.fails} for c in node.checks.values()]
        stack += list(node.groups.values())
    return out


def sink_summary(metric: Metric, sink: Any, elapsed: float) -> dict[str, Any]:
    """Whole-run statistics of a sink; `samples` 0 means no samples (never shown as 0)."""
    kind, unit = metric.type, unit_of(metric)
    if isinstance(sink, TrendSink):
        if not sink.count:
            return {"type": kind, "unit": unit, "samples": 0, "count": 0}
        stats = {"count": sink.count, "avg": sink.avg, "min": sink.min, "med": sink.med,
                 "p90": sink.percentile(90), "p95": sink.percentile(95),
                 "p99": sink.percentile(99), "max": sink.max}
    elif isinstance(sink, RateSink):
        stats = {"count": sink.total, "rate": sink.rate if sink.total else None,
                 "passes": sink.trues, "fails": sink.falses}
    elif isinstance(sink, GaugeSink):
        stats = {"count": sink.count, "value": sink.value, "min": sink.min, "max": sink.max}
    else:  # k6's count of a counter is its sum
        stats = {"count": sink.value, "value": sink.value,
                 "rate": sink.value / elapsed if elapsed > 0 else None}
    samples = sink.total if isinstance(sink, RateSink) else sink.count
    return {"type": kind, "unit": unit, "samples": samples,
            **{k: round_value(v) for k, v in stats.items()}}


def totals(registry: Registry, elapsed: float) -> dict[str, dict[str, Any]]:
    """Every metric, and its sub-metrics by endpoint, scenario and status."""
    out: dict[str, dict[str, Any]] = {}
    for metric in sorted(registry, key=lambda m: m.name):  # also those without samples
        out[metric.name] = sink_summary(metric, metric.aggregate(), elapsed)
        for tag in group_tags(metric.name):
            values = sorted({v for ts in metric.sinks if (v := ts.get(tag)) is not None})
            for value in values:
                out[series_key(metric.name, tag, value)] = sink_summary(
                    metric, metric.aggregate({tag: value}), elapsed)
    return out


def endpoints(registry: Registry) -> list[dict[str, Any]]:
    """One row per (method, name) of http_req_duration, with http_req_failed's rate."""
    duration, failed = registry.get("http_req_duration"), registry.get("http_req_failed")
    if duration is None:
        return []
    pairs = sorted({(ts.get("method") or "", ts.get("name") or "") for ts in duration.sinks})
    rows = []
    for method, name in pairs:
        flt = {"method": method, "name": name}
        sink = duration.aggregate(flt)
        if not isinstance(sink, TrendSink) or not sink.count:
            continue
        fail = failed.aggregate(flt) if failed is not None else None
        rows.append({
            "method": method, "name": name, "count": sink.count,
            "failed": round_value(fail.rate) if isinstance(fail, RateSink) and fail.total else None,
            "p50": round_value(sink.med), "p95": round_value(sink.percentile(95)),
            "p99": round_value(sink.percentile(99)),
        })
    return rows


def histogram(metric: Metric | None, bins: int = HISTOGRAM_BINS) -> dict[str, Any] | None:
    """Log-spaced bins between the smallest and largest positive sample, from the sketch
    (bucket values are within 0.1% of the samples)."""
    if metric is None:
        return None
    sink = metric.aggregate()
    if not isinstance(sink, TrendSink) or not sink.buckets:
        return None
    values = [(bucket_value(i), c) for i, c in sink.buckets.items()]
    lo, hi = min(v for v, _ in values), max(v for v, _ in values)
    if hi <= lo:
        hi = lo * 1.01
    ratio = math.log(hi / lo)
    counts = [0] * bins
    for v, c in values:
        counts[min(bins - 1, int(math.log(v / lo) / ratio * bins))] += c
    edges = [lo * math.exp(ratio * k / bins) for k in range(bins + 1)]
    return {"unit": unit_of(metric), "edges": [round_value(e) for e in edges], "counts": counts,
            "zeros": sink.zeros}


# --- files --------------------------------------------------------------------------

def write_atomically(path: Path, data: bytes) -> Path:
    """A reader never sees half a file (and a failed write leaves none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_record(path: Path, record: dict[str, Any]) -> Path:
    data = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
    return write_atomically(path, gzip.compress(data, compresslevel=6, mtime=0))


def read_bounded(path: Path) -> bytes:
    """The file's bytes, inflated when gzip: never more than MAX_RECORD_BYTES read or
    inflated (a small file may inflate to gigabytes), else a RecordError."""
    with path.open("rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
        f.seek(0)
        if gzipped:
            with gzip.GzipFile(fileobj=f) as inflated:
                data = inflated.read(MAX_RECORD_BYTES + 1)
        else:
            data = f.read(MAX_RECORD_BYTES + 1)
    if len(data) > MAX_RECORD_BYTES:
        what = "inflates to" if gzipped else "is"
        raise RecordError(f"{path}: {what} more than {MAX_RECORD_BYTES >> 20} MiB: not a "
                          "results file of indigo-loadtest (a record is far smaller)")
    return data


def load_record(path: str | Path) -> dict[str, Any]:
    """A run record, given its file or the summary export written beside it."""
    p = Path(path)
    if not p.name.endswith(RECORD_SUFFIX) and p.suffix == ".json":
        sibling = record_path(p)
        if not sibling.exists():
            raise RecordError(f"{p}: no run record beside it ({sibling.name}); only runs of "
                              "indigo-loadtest write one")
        p = sibling
    try:
        # NaN and Infinity (Python's JSON, not JSON's) are no value: a rule on one cannot
        # be evaluated, and fails, rather than compare false with every limit and pass.
        record = json.loads(read_bounded(p), parse_constant=lambda _: None)
    except FileNotFoundError:
        raise RecordError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise RecordError(f"{p}: is a directory (give a results file)") from None
    except RecordError:
        raise
    except (OSError, EOFError, ValueError) as exc:
        raise RecordError(f"{p}: not a run record ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise RecordError(f"{p}: not a run record of indigo-loadtest (format {FORMAT})")
    damage = record_damage(record)
    if damage:
        raise RecordError(f"{p}: a damaged run record ({damage})")
    return record


# --- what `report` and `compare` read of a record, checked before they read it -----------

_SECTIONS = {"meta": dict, "verdict": dict, "thresholds": list, "checks": list,
             "totals": dict, "endpoints": list, "histograms": dict, "series": dict}
_COUNTS = ("count", "total", "trues", "samples")  # never None, even without samples


def _number(value: Any, required: bool = False) -> bool:
    if value is None:
        return not required
    return isinstance(value, int | float) and not isinstance(value, bool)


def record_damage(record: dict[str, Any]) -> str | None:
    """What is missing or of the wrong type in a record, or None when it is whole."""
    for key, kind in _SECTIONS.items():
        if not isinstance(record.get(key), kind):
            return f"no {key}"
    meta, verdict, series = record["meta"], record["verdict"], record["series"]
    if not all(isinstance(meta.get(k), str) for k in ("scenario", "testid")):
        return "meta without scenario or testid"
    if not isinstance(verdict.get("text"), str):
        return "verdict without text"
    for name, total in record["totals"].items():
        if not isinstance(total, dict) or total.get("type") not in STAT_KINDS:
            return f"totals of {name}: no type"
        bad = [k for k, v in total.items() if k not in ("type", "unit")
               and not _number(v, k in _COUNTS)]
        if bad:
            return f"totals of {name}: {', '.join(bad)} not a number"
    for th in record["thresholds"]:
        if not (isinstance(th, dict) and isinstance(th.get("key"), str)
                and isinstance(th.get("expression"), str) and _number(th.get("observed"))):
            return "a threshold without key, expression or observed value"
    t = series.get("t")
    if not isinstance(t, list) or not all(_number(x, True) for x in t) \
            or not isinstance(series.get("metrics"), dict):
        return "series without t or metrics"
    for name, entry in series["metrics"].items():
        cols = entry.get("cols") if isinstance(entry, dict) else None
        if not isinstance(cols, dict) or not all(
                isinstance(c, list) and len(c) == len(t)
                and all(_number(v, k in _COUNTS or (entry.get("type") == "counter"
                                                    and k == "value")) for v in c)
                for k, c in cols.items()):
            return f"series of {name}: columns not numbers, one per interval"
    return None
