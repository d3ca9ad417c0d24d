"""`compare BASELINE CANDIDATE`: what changed between two run records.

Every metric and sub-metric both runs measured is compared on a few statistics (trends:
med, p(95), p(99); counters: count and rate; rates: rate; gauges: max), with the relative
change and whether it is better or worse for that metric. A row reads better or worse
only when the change is not negligible (`negligible`: under MIN_CHANGE_PCT, or
MIN_CHANGE_MS for a time) and its noise test rejects "the same distribution" in Holm's
step-down at FAMILY_ALPHA over every row tested (`judge_rows`), so two identical runs get
any row flagged under FAMILY_ALPHA of the time; else it is "within noise". The test
(`noise_p_value`): Welch's t on the per-interval values where the series allow it (at
least `MIN_INTERVALS` intervals with samples in each run; intervals are treated as
independent, so it is a guide, not a proof); a trend's tail (p95, p99) on the whole
run's percentiles too (`whole_run_p_value`), and runs whose samples do not overlap at
all (`separation_p_value`), each test at its share of the level.

`--fail-on "http_req_duration:p(95)>+10%"`: KEY:AGGREGATION OP VALUE, the aggregations
and operators of k6 thresholds; VALUE is a relative change (`+10%`, `-5%`), an absolute
change when signed (`+50`: 50 ms more for a time metric), or the candidate's own value
when unsigned (`p(95)<500`). A rule is a failure condition: when it holds, or when it
cannot be evaluated (a metric without samples), `compare` exits with FAIL_EXIT (99, as a
failed k6 threshold). A candidate whose own run did not pass fails it with that run's
exit code (`candidate_failure`).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..metrics.thresholds import ThresholdError, parse_expression
from ..metrics.timeseries import interval_widths
from ..scenario.errors import ExitCode

FAIL_EXIT = 99
FAILED_EXIT = ExitCode.FAILED  # a candidate whose record gives no exit code of its own
MIN_INTERVALS = 5
ONLY_SHOWN = 8  # metrics named in the "only in one run" warning
NOISE_SIGMAS = 2.0
STATS = {"trend": ("med", "p95", "p99"), "counter": ("count", "rate"), "rate": ("rate",),
         "gauge": ("max",)}
# The k6 aggregation a statistic answers to, and the per-interval column behind it.
AGGREGATION = {"med": "med", "p90": "p(90)", "p95": "p(95)", "p99": "p(99)", "avg": "avg",
               "min": "min", "max": "max", "count": "count", "rate": "rate", "value": "value"}
INTERVAL_COLUMN = {"med": "p50", "p95": "p95", "p99": "p99", "avg": "avg"}
# The quantile a trend's whole-run percentile is (the whole-run noise test).
QUANTILES = {"med": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
TAIL_STATS = ("p95", "p99")
# The whole-run test's error is the sampling error alone (the samples taken as
# independent); two runs also differ by the machine's own state (timers, scheduling),
# which it leaves out (identical runs reached 2.4 of it at p95): it is widened by
# WHOLE_RUN_SIGMAS / NOISE_SIGMAS, what 3 standard errors were to a 2-sigma test.
WHOLE_RUN_SIGMAS = 3.0
# Every row is a test: two runs of one distribution would get some row of dozens
# flagged by chance. Holm's step-down over the rows tested keeps the chance that any
# row of such a pair reads better/worse under FAMILY_ALPHA.
FAMILY_ALPHA = 0.01
# A change too small to matter is never better/worse, however sure: under 5 % (as
# dotnet/performance's alerts), or under 1 ms for a time, the timer resolution of an
# event loop (0.5 ms on uvloop, 1 ms on asyncio's: docs/metrics.md, generator_loop_lag);
# sub-millisecond request phases switch between two modes with the machine's load.
MIN_CHANGE_PCT = 5.0
MIN_CHANGE_MS = 1.0
# Metrics with several samples per request (one per gap between tokens), which share
# the request's server, batch and stream: their count overstates what they know. The
# whole-run test counts their requests instead (the per-request metric of the tags).
PER_REQUEST = {"llm_itl_ms": "llm_ttft_ms"}
# Throughput counters (http_reqs, iterations) are neither: the plan sets them. Nor is
# the load generator's own health (its loop lag, CPU wait): the machine's, not the
# target's, it differs between identical runs with whatever else the machine runs.
GENERATOR = "generator_"
HIGHER_IS_BETTER = ("checks", "llm_tokens_per_sec", "success")
LOWER_IS_BETTER = ("fail", "error", "dropped")


class RuleError(ValueError):
    """A --fail-on rule that cannot be parsed (one-line message)."""


@dataclass
class Row:
    key: str
    stat: str
    unit: str
    base: float | None
    cand: float | None
    direction: int  # +1: higher is better, -1: lower is better, 0: neither
    noise: bool | None = None  # True: within run-to-run noise; None: cannot tell
    kind: str = ""  # the metric type
    p_value: float | None = None  # of its noise test (`noise_p_value`); None: no test

    @property
    def change(self) -> float | None:
        """Relative change in % (None without a baseline value to divide by)."""
        if self.base is None or self.cand is None or self.base == 0:
            return None
        return 100.0 * (self.cand - self.base) / abs(self.base)

    @property
    def verdict(self) -> str:
        """"better", "worse", "noise", "same" or "" (no direction or no values)."""
        if self.base is None or self.cand is None:
            return ""
        if self.cand == self.base:
            return "same"
        if self.noise:
            return "noise"
        if not self.direction:
            return ""
        return "better" if (self.cand - self.base) * self.direction > 0 else "worse"


def direction(key: str, unit: str, stat: str) -> int:
    name = key.split("{", 1)[0]
    if name.startswith(GENERATOR):
        return 0
    if any(word in name for word in LOWER_IS_BETTER):
        return -1
    if any(word in name for word in HIGHER_IS_BETTER):
        return 1
    if unit == "ms":
        return -1
    return 0


def stat_value(total: dict[str, Any], stat: str) -> float | None:
    if not total.get("samples") and total.get("type") != "counter":
        return None  # no samples (a Counter that counted nothing is a real 0, as in k6)
    return total.get(stat)


def compare_rows(base: dict[str, Any], cand: dict[str, Any]) -> list[Row]:
    """Every row, each judged as one of the family of rows tested (`judge_rows`)."""
    rows = []
    shared = [k for k in base["totals"] if k in cand["totals"]]
    for key in shared:
        b, c = base["totals"][key], cand["totals"][key]
        if b["type"] != c["type"]:
            continue
        for stat in STATS[b["type"]]:
            rows.append(Row(key, stat, b.get("unit", ""), stat_value(b, stat),
                            stat_value(c, stat), direction(key, b.get("unit", ""), stat),
                            kind=b["type"], p_value=noise_p_value(base, cand, key, stat)))
    judge_rows(rows)
    return rows


def judge_rows(rows: Sequence[Row]) -> None:
    """Sets each row's `noise`. A row reads better/worse only when its change is not
    negligible (`negligible`) and Holm's step-down over every row with a test rejects
    "the same distribution" at FAMILY_ALPHA: the smallest p-value of m against
    FAMILY_ALPHA/m, the next against FAMILY_ALPHA/(m-1)..., up to the first that is not
    below its bound. A row without a test is judged on its change alone."""
    tested = sorted((row for row in rows if row.p_value is not None),
                    key=lambda row: row.p_value or 0.0)
    for row in rows:
        row.noise = None if row.p_value is None else True
    for k, row in enumerate(tested):
        if (row.p_value or 0.0) > FAMILY_ALPHA / (len(tested) - k):
            break
        row.noise = False
    for row in rows:
        if negligible(row):
            row.noise = True


def legend(rows: Sequence[Row]) -> str:
    """The rule behind better/worse, as `judge_rows` applies it."""
    tested = sum(row.p_value is not None for row in rows)
    return (f"better/worse: a change of {MIN_CHANGE_PCT:g}% or more ({MIN_CHANGE_MS:g} ms "
            f"for a time) and beyond run-to-run noise (Holm at {FAMILY_ALPHA:.0%} over the "
            f"{tested} rows tested); else ~ within noise")


def negligible(row: Row) -> bool:
    """A change too small to be better or worse: under MIN_CHANGE_PCT of the baseline
    (not for a Rate: 99 % of checks against 98 % is twice the failures), or under
    MIN_CHANGE_MS for a time."""
    if row.base is None or row.cand is None or row.base == row.cand:
        return False
    change = abs(row.cand - row.base)
    if row.unit == "ms" and change < MIN_CHANGE_MS:
        return True
    return row.kind != "rate" and change < MIN_CHANGE_PCT / 100 * abs(row.base)


# --- noise from the per-interval series ------------------------------------------------

def interval_values(record: dict[str, Any], key: str, stat: str) -> list[float]:
    """The statistic in each interval that had samples (the last, partial one excluded)."""
    entry = record["series"]["metrics"].get(key)
    if entry is None:
        return []
    cols, kind = entry["cols"], entry["type"]
    t = record["series"]["t"]
    if kind == "trend" and stat in INTERVAL_COLUMN:
        values = cols.get(INTERVAL_COLUMN[stat], [])
    elif kind == "counter" and stat == "rate":
        values = [v / w for v, w in zip(cols["value"], interval_widths(t), strict=True)]
        first = next((i for i, n in enumerate(cols["count"]) if n), len(values))
        values = values[first:]  # before the first sample: start-up, not the load
    elif kind == "rate" and stat == "rate":
        values = [tr / n if n else None for tr, n in zip(cols["trues"], cols["total"],
                                                          strict=True)]
    else:
        return []
    return [v for v in values[:-1] if v is not None]


def within_noise(base: dict[str, Any], cand: dict[str, Any], key: str,
                 stat: str) -> bool | None:
    """Whether the change of `stat` alone is within run-to-run noise (None: cannot
    tell): its p-value (`noise_p_value`) is not below FAMILY_ALPHA. `compare_rows`
    judges each row as one of many (`judge_rows`)."""
    return _alone(noise_p_value(base, cand, key, stat))


def _alone(p: float | None) -> bool | None:
    """A p-value's verdict for a row judged alone: within noise unless below FAMILY_ALPHA."""
    return None if p is None else p > FAMILY_ALPHA


def noise_p_value(base: dict[str, Any], cand: dict[str, Any], key: str,
                  stat: str) -> float | None:
    """The chance of a change at least this large between two runs of one distribution
    (None: cannot tell). A trend's tail (p95, p99) is judged on the whole run
    (`whole_run_p_value`) when its samples resolve it: an interval's p99 is of a few
    dozen samples, nearly its max, so the per-interval test called a p99 doubled in 2 of
    30 intervals noise. But the whole run's error of a p99 is read up to its max, so one
    slow outlier widens it: a p99 20 ms higher in every interval passed for noise. Both
    judge the tail, each at its share of the level (Bonferroni). The rest is judged per
    interval, or on the whole run where the series keep no per-interval percentiles
    (the request phases' trends). Runs whose samples do not overlap at all are apart
    whatever the statistic (`separation_p_value`)."""
    a, b = base["totals"].get(key, {}), cand["totals"].get(key, {})
    n_a, n_b = effective_count(base, key), effective_count(cand, key)
    whole = whole_run_p_value(a, b, stat, n_a, n_b)
    per_interval = intervals_p_value(base, cand, key, stat)
    if stat in TAIL_STATS and whole is not None:
        tests = [whole, per_interval]
    else:
        tests = [per_interval if per_interval is not None else whole]
    tests.append(separation_p_value(a, b, n_a, n_b))
    known = [p for p in tests if p is not None]
    return min(1.0, len(known) * min(known)) if known else None


def separation_p_value(a: dict[str, Any], b: dict[str, Any], n_a: float | None = None,
                       n_b: float | None = None) -> float | None:
    """The chance that two runs of one distribution, of n and m samples, have ranges that
    do not overlap: 2/C(n+m, n), exact whatever the distribution (every order of the
    samples equally likely). None when they overlap, or not trends. (Counted among a
    row's tests only when it applies: that adds at most this chance to the row's.)"""
    if a.get("type") != "trend" or b.get("type") != "trend":
        return None
    n, m = n_a or a.get("count"), n_b or b.get("count")
    bounds = [stat_value(t, s) for t in (a, b) for s in ("min", "max")]
    if not isinstance(n, int | float) or not isinstance(m, int | float) or n < 1 or m < 1 \
            or any(v is None for v in bounds):
        return None
    lo_a, hi_a, lo_b, hi_b = bounds
    if not (hi_a < lo_b or hi_b < lo_a):
        return None
    return min(1.0, 2 * math.exp(math.lgamma(n + 1) + math.lgamma(m + 1)
                                 - math.lgamma(n + m + 1)))


def intervals_p_value(base: dict[str, Any], cand: dict[str, Any], key: str,
                      stat: str) -> float | None:
    """Welch's t-test on the per-interval values (Student's t at the Welch-Satterthwaite
    degrees of freedom: with 5 to 10 intervals the normal's tail is far too thin)."""
    a, b = interval_values(base, key, stat), interval_values(cand, key, stat)
    if len(a) < MIN_INTERVALS or len(b) < MIN_INTERVALS:
        return None
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    sa = sum((x - ma) ** 2 for x in a) / (len(a) - 1) / len(a)
    sb = sum((x - mb) ** 2 for x in b) / (len(b) - 1) / len(b)
    if sa + sb == 0:
        p = 1.0 if ma == mb else 0.0
    else:
        df = (sa + sb) ** 2 / (sa ** 2 / (len(a) - 1) + sb ** 2 / (len(b) - 1))
        p = t_two_sided(abs(mb - ma) / math.sqrt(sa + sb), df)
    if stat == "rate" and base["totals"].get(key, {}).get("type") == "rate":
        # Intervals lose how many requests each share is of: 0 failures in 3000 requests
        # and 300 in 3000 (all in 3 of 30 intervals) passed for noise. The requests' own
        # counts are tested too: either test may reject (Bonferroni over the two).
        p_counts = proportions_p_value(base["totals"][key], cand["totals"].get(key, {}))
        return min(1.0, 2 * min(p, p_counts))
    return p


def whole_run_p_value(a: dict[str, Any], b: dict[str, Any], stat: str,
                      n_a: float | None = None, n_b: float | None = None) -> float | None:
    """The whole-run test of a trend's percentile: the change against the percentile's own
    sampling error in each run (of n_a, n_b independent samples; default their count).
    A tail regression confined to a few intervals (p99 doubled in 2 of 30) barely moves
    the mean of the per-interval values, but it moves the whole run's p99. The sampling
    error leaves out the machine's own state (timers, scheduling): it is widened by
    WHOLE_RUN_SIGMAS / NOISE_SIGMAS. None: not a trend's percentile, or no samples in a
    run."""
    if stat not in QUANTILES or a.get("type") != "trend" or b.get("type") != "trend":
        return None
    va, vb = stat_value(a, stat), stat_value(b, stat)
    se_a = quantile_error(a, QUANTILES[stat], n_a)
    se_b = quantile_error(b, QUANTILES[stat], n_b)
    if va is None or vb is None or se_a is None or se_b is None:
        return None
    se = math.sqrt(se_a ** 2 + se_b ** 2) * WHOLE_RUN_SIGMAS / NOISE_SIGMAS
    if se == 0:
        return 1.0 if va == vb else 0.0
    return math.erfc(abs(vb - va) / se / math.sqrt(2))


def intervals_within_noise(base: dict[str, Any], cand: dict[str, Any], key: str,
                           stat: str) -> bool | None:
    """`intervals_p_value` for one row alone."""
    return _alone(intervals_p_value(base, cand, key, stat))


def effective_count(record: dict[str, Any], key: str) -> float | None:
    """How many independent samples a trend's whole-run percentile is of, for a metric of
    several samples per request (PER_REQUEST): its requests' count, the fewest it can
    be (the samples of one request fully correlated). None: its own count."""
    name, _, tags = key.partition("{")
    count = record["totals"].get(key, {}).get("count")
    if name not in PER_REQUEST or not isinstance(count, int | float):
        return None
    sibling = PER_REQUEST[name] + ("{" + tags if tags else "")
    requests = record["totals"].get(sibling, {}).get("count")
    return min(count, requests) if isinstance(requests, int | float) and requests else None


def t_two_sided(t: float, df: float) -> float:
    """P(|T| >= t) for Student's t with df degrees of freedom: I_x(df/2, 1/2), x =
    df/(df+t^2), the regularized incomplete beta function."""
    return incomplete_beta(df / 2, 0.5, df / (df + t * t))


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction
    (modified Lentz), on the side of x where it converges fast."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - incomplete_beta(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x)) / a
    c, d = 1.0, 1.0 / _nonzero(1.0 - (a + b) * x / (a + 1))
    f = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 / _nonzero(1.0 + num * d)
            c = _nonzero(1.0 + num / c)
            f *= c * d
        if abs(c * d - 1.0) < 1e-12:
            break
    return front * f


def _nonzero(v: float) -> float:
    return v if abs(v) > 1e-300 else 1e-300


def quantile_error(total: dict[str, Any], q: float, n: float | None = None) -> float | None:
    """The standard error of a run's q-quantile: half the span of its values at the ranks
    q ± sqrt(q(1-q)/n) (the rank's own standard error, distribution-free), read off the
    run's whole-run percentiles (min, med, p90, p95, p99, max), linear between them; n
    the independent samples (default: its count). None when that band passes the run's
    min or max: too few samples (a p99 of 50 is their max, whose error they cannot
    tell)."""
    n = total.get("count") if n is None else n
    known = sorted((p, v) for stat, p in {**QUANTILES, "min": 0.0, "max": 1.0}.items()
                   if (v := stat_value(total, stat)) is not None)
    if not isinstance(n, int | float) or n < 2 or len(known) < 2:
        return None
    spread = math.sqrt(q * (1 - q) / n)
    low, high = q - spread, q + spread
    if low < known[0][0] or high > known[-1][0]:
        return None
    return (value_at(known, high) - value_at(known, low)) / 2


def value_at(known: list[tuple[float, float]], q: float) -> float:
    """The value at quantile q, linear between the known (quantile, value) pairs."""
    for (q0, v0), (q1, v1) in itertools.pairwise(known):
        if q0 <= q <= q1:
            return v0 if q1 == q0 else v0 + (v1 - v0) * (q - q0) / (q1 - q0)
    return known[-1][1]


def proportions_p_value(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Two-proportion z-test on a Rate's totals (passes of count)."""
    n1, n2 = a.get("count") or 0, b.get("count") or 0
    if not n1 or not n2:
        return 0.0
    p1, p2 = (a.get("passes") or 0) / n1, (b.get("passes") or 0) / n2
    pooled = ((a.get("passes") or 0) + (b.get("passes") or 0)) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0 if p1 == p2 else 0.0
    return math.erfc(abs(p2 - p1) / se / math.sqrt(2))


# --- the candidate's own verdict ----------------------------------------------------------

def candidate_failure(cand: dict[str, Any]) -> tuple[int, str] | None:
    """(exit code, one line) when the candidate run did not pass on its own (its
    thresholds, or a measurement short of its plan): a comparison with it cannot pass,
    and `compare` exits with the run's own code (1 when its record has none)."""
    verdict = cand["verdict"]
    code = verdict.get("exit_code")
    if code == 0 and not isinstance(code, bool):
        return None
    if not isinstance(code, int) or isinstance(code, bool) or not 0 < code < 256:
        code = FAILED_EXIT
    return code, (f"the candidate run did not pass ({verdict['text']}): compare exits "
                  f"with its exit code, {code}")


def comparison_verdict(cand: dict[str, Any],
                       results: Sequence[tuple[bool, str]]) -> tuple[int, str]:
    """compare's exit code and its verdict in one line (the HTML page's headline): the
    candidate's own failure first, then the --fail-on rules that hold."""
    failure = candidate_failure(cand)
    if failure is not None:
        return failure[0], f"failed: {failure[1]}"
    held = sum(1 for failed, _ in results if failed)
    if held:
        return FAIL_EXIT, f"failed: {held} of {len(results)} --fail-on rules hold"
    if results:
        return ExitCode.OK, f"passed: none of the {len(results)} --fail-on rules holds"
    return ExitCode.OK, "passed (no --fail-on rule given)"


# --- thresholds ------------------------------------------------------------------------

@dataclass
class ThresholdPair:
    key: str
    expression: str
    base: dict[str, Any]
    cand: dict[str, Any]


def shared_thresholds(base: dict[str, Any], cand: dict[str, Any]) -> list[ThresholdPair]:
    index = {(t["key"], t["expression"]): t for t in base["thresholds"]}
    return [ThresholdPair(t["key"], t["expression"], index[(t["key"], t["expression"])], t)
            for t in cand["thresholds"] if (t["key"], t["expression"]) in index]


def warnings(base: dict[str, Any], cand: dict[str, Any]) -> list[str]:
    """Runs of different scenarios or targets compare, with a warning."""
    out = []
    for what, get in (("scenarios", lambda m: m.get("scenario")),
                      ("targets", lambda m: m.get("tags", {}).get("environment")
                       or m.get("target")),
                      # the same scenario against another model, or under another load,
                      # measures something else (every bench point is scenario llm-bench)
                      ("models", lambda m: m.get("model")),
                      ("load plans", lambda m: (m.get("planned") or {}).get("scenarios"))):
        a, b = get(base["meta"]), get(cand["meta"])
        if a != b:
            out.append(f"the runs have different {what}: {a!r} and {b!r}")
    # A metric one run lacks has no row: say so, or a metric that vanished goes unseen.
    for side, one, other in (("baseline", base, cand), ("candidate", cand, base)):
        only = sorted(k for k in one["totals"] if "{" not in k and k not in other["totals"])
        if only:
            shown = ", ".join(only[:ONLY_SHOWN]) + (
                f" and {len(only) - ONLY_SHOWN} more" if len(only) > ONLY_SHOWN else "")
            out.append(f"metrics only in the {side}, not compared: {shown}")
    return out


# --- --fail-on -------------------------------------------------------------------------

_RULE_VALUE = re.compile(r"^(?P<sign>[+-]?)\s*(?P<num>\d+(?:\.\d*)?|\.\d+)\s*(?P<pct>%?)$")
_OP = re.compile(r"(===|==|!=|<=|>=|<|>)")


@dataclass
class Rule:
    source: str
    key: str
    stat: str  # the totals' name of the aggregation (p(95) -> p95)
    expression: Any  # the parsed threshold (aggregation, op, limit)
    mode: str  # "relative" (%), "delta" (signed) or "value" (unsigned)

    def evaluate(self, base: dict[str, Any], cand: dict[str, Any]) -> tuple[bool, str]:
        """(failed, one line): a rule fails when it holds or cannot be evaluated."""
        b = stat_value(base["totals"].get(self.key, {}), self.stat)
        c = stat_value(cand["totals"].get(self.key, {}), self.stat)
        if c is None or (self.mode != "value" and b is None):
            which = "candidate" if c is None else "baseline"
            return True, f"{self.source}: cannot evaluate, no samples of {self.key} in the {which}"
        if self.mode == "relative":
            if b == 0:  # from 0: no change, or an unbounded one (0 -> 3 dropped: +inf%)
                observed = 0.0 if c == 0 else math.copysign(math.inf, c)
            else:
                observed = 100.0 * (c - b) / abs(b)
            shown = f"{observed:+.2f}%"
        elif self.mode == "delta":
            observed, shown = c - b, f"{c - b:+.6g}"
        else:
            observed, shown = c, f"{c:.6g}"
        fired = self.expression.passes(observed)
        return fired, f"{self.source}: {'FAILED' if fired else 'ok'} ({self.stat} {shown})"


def parse_rule(source: str) -> Rule:
    """`KEY:AGG OP VALUE`, the key possibly a sub-metric (`http_req_duration{name:x}`)."""
    depth, split = 0, -1
    for i, ch in enumerate(source):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == ":" and depth == 0:
            split = i
    if split <= 0:
        raise RuleError(f"--fail-on {source!r}: expected METRIC:AGGREGATION OP VALUE, e.g. "
                        "\"http_req_duration:p(95)>+10%\"")
    key, expr = source[:split].strip(), source[split + 1:]
    m = _OP.search(expr)
    value = _RULE_VALUE.match(expr[m.end():].strip()) if m else None
    if m is None or value is None:
        raise RuleError(f"--fail-on {source!r}: expected AGGREGATION OP VALUE after the "
                        "metric, VALUE like +10%, -5%, +50 or 500")
    try:
        th = parse_expression(f"{expr[:m.start()].strip()}{m.group()}{value['num']}", key)
    except ThresholdError as exc:  # its reason, about the rule as the user wrote it
        raise RuleError(f"--fail-on {source!r}: {str(exc).split(': ', 1)[-1]}") from None
    limit = float(value["num"]) * (-1 if value["sign"] == "-" else 1)
    th = replace(th, limit=limit)
    mode = "relative" if value["pct"] else ("delta" if value["sign"] else "value")
    return Rule(source, key, _stat_name(th.aggregation, source), th, mode)


def _stat_name(aggregation: str, source: str) -> str:
    names = {v: k for k, v in AGGREGATION.items()} | {"p(50)": "med"}
    stat = names.get(aggregation.replace(" ", ""))
    if stat is None:
        raise RuleError(f"--fail-on {source!r}: {aggregation} is not in a run record (use "
                        "avg, min, med, max, p(90), p(95), p(99), count, rate or value)")
    return stat


def evaluate_rules(rules: Sequence[Rule], base: dict[str, Any],
                   cand: dict[str, Any]) -> list[tuple[bool, str]]:
    return [rule.evaluate(base, cand) for rule in rules]
