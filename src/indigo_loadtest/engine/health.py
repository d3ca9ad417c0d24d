"""The generator's own health: says when the load generator, not the target, is the
bottleneck.

Every process that runs VUs records, while its scenarios run:

- `generator_loop_lag` (Trend, ms): how late a timer due every 100 ms fired because the
  process's own work held the event loop. A callback that holds the loop (a busy
  iteration, a blocking call, thousands of ready callbacks) delays every other
  callback, and with it every timestamp taken there: a response arriving while the
  loop is busy is stamped when the loop gets to it. Each timer is due at a random
  instant of its 100 ms slot (so the sampler cannot lock onto the phase of a periodic
  blocker), and a slot missed because the loop was blocked still gets its sample.
- `generator_cpu_wait` (Trend, ms; Linux): the rest of the same timer's lateness: time
  the process was ready to run but waited for a CPU while the OS ran other processes
  (the thread's run-queue wait, from /proc/thread-self/schedstat; known per tick, not
  per instant, so the split is an estimate: see `_machine_split`). Late timestamps
  too, but the cure is a machine with free cores, not more workers.
- `generator_cpu_percent` (Trend, % of one core): the process's CPU time over wall
  time, once a second. One Python process runs on one core at most: near 100% means
  work waits in a queue for the CPU.
- `generator_start_delay` (Trend, ms, recorded by the arrival-rate executors): how long
  after its scheduled instant an open-loop iteration really started.

The first three are tagged `worker` (the process's index among `--workers`; 0 in a
single process) besides the run's tags, so a slow worker can be named.
`health_warnings(registry)` turns the merged metrics into the warnings printed after
the summary.

The sampler costs one timer callback every 100 ms (about 15 µs each: under 0.02% of a
core).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable, Iterable
from time import perf_counter, process_time

from ..metrics.registry import Metric, Registry
from ..metrics.sinks import TrendSink
from ..metrics.summary import humanize_duration
from ..metrics.tags import TagSet

HEALTH_PREFIX = "generator_"  # the tool's own metrics: not a measurement of the target
LOOP_LAG = "generator_loop_lag"
START_DELAY = "generator_start_delay"
CPU = "generator_cpu_percent"
CPU_WAIT = "generator_cpu_wait"
SCHEDSTAT = "/proc/thread-self/schedstat"  # run time, run-queue wait (ns), time slices

LAG_INTERVAL = 0.1  # s between loop-lag samples
CPU_INTERVAL = 1.0  # s between CPU samples (taken on the lag timer's ticks)
# How late an idle loop fires a timer anyway: lateness within that is the timer's
# resolution, not lag. uvloop rounds a timer's delay to whole milliseconds of a truncated
# clock (up to about half a millisecond either side); the standard loop's selectors
# (epoll, kqueue) wait in whole milliseconds rounded up (up to 1 ms late: measured
# 0.8-1.2 ms on a light run); Windows' proactor loop waits on the system timer (15.6 ms
# by default).
TIMER_RESOLUTION = 0.0005  # uvloop
SELECTOR_TIMER_RESOLUTION = 0.001
WINDOWS_TIMER_RESOLUTION = 0.0156

# Warning levels. A timestamp taken by a callback is late by the loop's lag at that
# moment; above 1 ms at p(99), one sample in a hundred of TTFT, ITL and http_req_*
# timings is off by more than 1 ms.
LAG_LEVEL_MS = 1.0
LAG_PERCENTILE = 99.0
# An arrival-rate iteration that starts late sends its requests late: the target gets
# a later, burstier load than planned.
START_DELAY_LEVEL_MS = 1.0
START_DELAY_PERCENTILE = 99.0
# A process on (nearly) a full core has no idle time left: events queue for the CPU
# before they are handled and timestamped.
CPU_LEVEL = 90.0
CPU_PERCENTILE = 90.0
# Waiting for a CPU delays a timestamp as much as a busy loop does.
CPU_WAIT_LEVEL_MS = 1.0
CPU_WAIT_PERCENTILE = 99.0
ADVICE_OWN = ("latency figures may measure the load generator rather than the target: "
              "spread the load over more --workers (one per core), or run fewer VUs per "
              "process")
ADVICE_MACHINE = ("other processes kept the generator from a CPU: run it where it has "
                  "cores to itself, with no more --workers than free cores")


def timer_resolution(loop: asyncio.AbstractEventLoop) -> float:
    """The lateness `loop`'s timers show when nothing holds it (see above)."""
    if type(loop).__module__.partition(".")[0] == "uvloop":
        return TIMER_RESOLUTION
    proactor = getattr(asyncio, "ProactorEventLoop", None)  # Windows only
    if proactor is not None and isinstance(loop, proactor):
        return WINDOWS_TIMER_RESOLUTION
    return SELECTOR_TIMER_RESOLUTION


def loop_lag_metric(registry: Registry) -> Metric:
    return registry.metric(LOOP_LAG, "trend", is_time=True)


def start_delay_metric(registry: Registry) -> Metric:
    return registry.metric(START_DELAY, "trend", is_time=True)


def cpu_metric(registry: Registry) -> Metric:
    return registry.metric(CPU, "trend")


def cpu_wait_metric(registry: Registry) -> Metric:
    return registry.metric(CPU_WAIT, "trend", is_time=True)


def declare_metrics(registry: Registry) -> None:
    """Register every health metric (a threshold on one is validated before the run)."""
    for declare in (loop_lag_metric, cpu_wait_metric, cpu_metric, start_delay_metric):
        declare(registry)


class RunQueueClock:
    """How long the calling thread has waited for a CPU so far (Linux; else None)."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open(SCHEDSTAT, os.O_RDONLY)
        except OSError:
            self._fd = None

    def read(self) -> float | None:
        """Seconds of run-queue wait since the thread started, or None."""
        if self._fd is None:
            return None
        try:
            return int(os.pread(self._fd, 128, 0).split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return None

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class HealthSampler:
    """Samples event-loop lag every 100 ms and CPU use every second, on one timer.

        sampler = HealthSampler(registry, tags, worker=0)
        sampler.start()   # on the running loop
        ...
        sampler.stop()    # records the last, partial CPU window
    """

    def __init__(self, registry: Registry, tags: TagSet, *, worker: int = 0) -> None:
        self._record = registry.record
        self._lag = loop_lag_metric(registry)
        self._cpu = cpu_metric(registry)
        self._cpu_wait = cpu_wait_metric(registry)
        self._run_queue: RunQueueClock | None = None
        self._waited: float | None = None  # run-queue wait at the previous tick (s)
        self._tick_cpu = 0.0  # process CPU time at the previous tick (s)
        self._tick_wall = 0.0  # perf_counter at the previous tick
        self.tags = tags.with_pairs(("worker", str(worker)))
        self._handle: asyncio.TimerHandle | None = None
        self._t0 = 0.0
        self._slot = 0  # the 100 ms slot the pending timer is due in (1-based)
        self._due = 0.0  # its instant (perf_counter)
        self._resolution = TIMER_RESOLUTION  # the running loop's, from start()
        self._random = random.Random()
        self._cpu_wall = 0.0
        self._cpu_time = 0.0

    def start(self) -> None:
        self._resolution = timer_resolution(asyncio.get_running_loop())
        self._t0 = self._cpu_wall = perf_counter()
        self._cpu_time = self._tick_cpu = process_time()
        self._tick_wall = self._t0
        self._slot = 0
        self._due = self._next_due()
        self._run_queue = RunQueueClock()  # opened on the loop's thread: that one's waits
        self._waited = self._run_queue.read()
        self._arm(self._t0)

    def stop(self) -> None:
        if self._handle is None:
            return
        self._handle.cancel()
        self._handle = None
        if self._run_queue is not None:
            self._run_queue.close()
        now = perf_counter()
        if now - self._cpu_wall >= LAG_INTERVAL:
            self._sample_cpu(now)

    def _next_due(self) -> float:
        """A random instant in the next 100 ms slot: timers on a fixed grid would lock
        onto the phase of a periodic blocker (a 50 ms busy iteration) and see it always
        at the same point; random instants see each moment as often as any other."""
        self._slot += 1
        return self._t0 + (self._slot - 1 + self._random.random()) * LAG_INTERVAL

    def _arm(self, now: float) -> None:
        self._handle = asyncio.get_running_loop().call_later(max(self._due - now, 0.0),
                                                             self._tick)

    def _tick(self) -> None:
        now = perf_counter()
        split = self._machine_split(now)
        # The slot this timer was set for, then any the loop was too busy to reach (a
        # 350 ms block gives samples of about 350, 250, 150 and 50 ms).
        while True:
            late = max(now - self._due - self._resolution, 0.0)
            if split is None:
                self._record(self._lag, late * 1000.0, self.tags)
            else:
                machine = split(late)
                self._record(self._lag, (late - machine) * 1000.0, self.tags)
                self._record(self._cpu_wait, machine * 1000.0, self.tags)
            self._due = self._next_due()
            if self._due > now:
                break
        if now - self._cpu_wall >= CPU_INTERVAL - LAG_INTERVAL / 2:  # about every tenth tick
            self._sample_cpu(now)
        self._arm(now)

    def _machine_split(self, now: float) -> Callable[[float], float] | None:
        """How much of a lateness was spent waiting for a CPU, estimated from the run-queue
        wait and the CPU time since the last tick (None where unknown).

        While the loop is held, the process runs its own code, waits for a CPU, or sits
        in a blocking call. A mostly idle process is late only by its wake-up: what it
        waited is the machine's, first. A process busy all along does its work slower
        by the time the OS ran others: its lateness splits as its CPU time and its wait
        did. Between the two, the estimates mix by how busy the process was."""
        cpu = process_time()
        ran, self._tick_cpu = max(cpu - self._tick_cpu, 0.0), cpu
        wall, self._tick_wall = now - self._tick_wall, now
        total = self._run_queue.read() if self._run_queue is not None else None
        if total is None or self._waited is None:
            return None
        waited, self._waited = max(total - self._waited, 0.0), total
        if waited == 0.0:
            return lambda late: 0.0
        busy = min((ran + waited) / wall, 1.0) if wall > 0 else 1.0
        share = waited / (ran + waited)

        def machine(late: float) -> float:
            first = min(late, waited)  # an idle process: its wait came first
            spread = late * share  # a busy one: the wait is spread through its work
            return min((1.0 - busy) * first + busy * spread, late, waited)

        return machine

    def _sample_cpu(self, now: float) -> None:
        cpu = process_time()
        self._record(self._cpu, 100.0 * (cpu - self._cpu_time) / (now - self._cpu_wall),
                     self.tags)
        self._cpu_wall, self._cpu_time = now, cpu


# --- after the run: did the generator hold the figures back? ---------------------------

def robust_percentile(sink: TrendSink, p: float) -> float | None:
    """The p-th percentile, but never above the second-highest sample: in a short run a
    high percentile is the single worst sample, and one hiccup (the OS running another
    process for a few ms) is not a bottleneck. None with fewer than two samples."""
    n = sink.count
    if n < 2:
        return None
    return sink.percentile(min(p, 100.0 * (n - 2) / (n - 1)))


def _by_tag(metric: Metric | None, key: str) -> dict[str, TrendSink]:
    """The metric's samples merged per value of tag `key`."""
    out: dict[str, TrendSink] = {}
    for ts, sink in (metric.sinks.items() if metric is not None else ()):
        if isinstance(sink, TrendSink) and sink.count:
            out.setdefault(ts.get(key) or "", TrendSink()).merge(sink)
    return out


def _over(metric: Metric | None, key: str, p: float,
          level: float) -> tuple[list[tuple[str, float]], int]:
    """(tag value, robust p-th percentile) of each group over `level`, worst first, and
    how many groups there were."""
    groups = _by_tag(metric, key)
    over = [(name, v) for name, sink in groups.items()
            if (v := robust_percentile(sink, p)) is not None and v > level]
    return sorted(over, key=lambda item: -item[1]), len(groups)


def _where(names: Iterable[str], groups: int, what: str) -> str:
    """'worker 1', 'workers 1, 0' (worst first), or 'the generator process' alone."""
    if what == "worker" and groups == 1:
        return "the generator process"
    names = list(names)
    return f"{what}{'s' if len(names) > 1 else ''} {', '.join(names)}"


def _pct(p: float) -> str:
    return f"p({p:g})"


def health_warnings(registry: Registry) -> list[str]:
    """One line per health metric over its level, then what to do (nothing for a
    healthy run): the generator's own work (loop lag, CPU) and the machine (waiting for
    a CPU) have different cures."""
    own = _own_lines(registry)
    machine = _machine_lines(registry)
    late_starts = _start_delay_lines(registry)
    lines = own + machine + late_starts
    if own or (late_starts and not machine):
        lines.append(f"generator: {ADVICE_OWN}")
    if machine:
        lines.append(f"generator: {ADVICE_MACHINE}")
    return lines


def _own_lines(registry: Registry) -> list[str]:
    lines = []
    over, groups = _over(registry.get(LOOP_LAG), "worker", LAG_PERCENTILE, LAG_LEVEL_MS)
    if over:
        lines.append(
            f"generator: event-loop lag {_pct(LAG_PERCENTILE)}={humanize_duration(over[0][1])}"
            f" in {_where((w for w, _ in over), groups, 'worker')} (level {LAG_LEVEL_MS:g}ms): "
            "the generator's own work held the loop, so a response that arrived meanwhile "
            "was timestamped that much late: http_req_* timings, TTFT and ITL can be "
            "inflated by as much")
    over, groups = _over(registry.get(CPU), "worker", CPU_PERCENTILE, CPU_LEVEL)
    if over:
        lines.append(
            f"generator: CPU {_pct(CPU_PERCENTILE)}={over[0][1]:.0f}% of a core in "
            f"{_where((w for w, _ in over), groups, 'worker')} (level {CPU_LEVEL:g}%): a "
            "process with no idle time queues events before it handles and timestamps them")
    return lines


def _machine_lines(registry: Registry) -> list[str]:
    over, groups = _over(registry.get(CPU_WAIT), "worker", CPU_WAIT_PERCENTILE,
                         CPU_WAIT_LEVEL_MS)
    if not over:
        return []
    return [
        f"generator: waiting for a CPU {_pct(CPU_WAIT_PERCENTILE)}="
        f"{humanize_duration(over[0][1])} in {_where((w for w, _ in over), groups, 'worker')}"
        f" (level {CPU_WAIT_LEVEL_MS:g}ms): the OS ran other processes while the generator "
        "was ready, so responses were timestamped that much late"]


def _start_delay_lines(registry: Registry) -> list[str]:
    over, groups = _over(registry.get(START_DELAY), "scenario", START_DELAY_PERCENTILE,
                         START_DELAY_LEVEL_MS)
    if not over:
        return []
    return [
        f"generator: arrival-rate iterations started {_pct(START_DELAY_PERCENTILE)}="
        f"{humanize_duration(over[0][1])} after their scheduled time in "
        f"{_where((repr(s) for s, _ in over), groups, 'scenario')} "
        f"(level {START_DELAY_LEVEL_MS:g}ms): the target got a later, burstier load than "
        "planned"]
