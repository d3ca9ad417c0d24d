"""k6's built-in metrics, with their names and meanings, and the per-request recorder."""

from __future__ import annotations

from typing import Any, Protocol

from .sinks import CounterSink, RateSink, TrendSink
from .tags import TagSet

HTTP_TREND_NAMES = (
    "http_req_duration", "http_req_blocked", "http_req_connecting",
    "http_req_tls_handshaking", "http_req_sending", "http_req_waiting",
    "http_req_receiving",
)


class MetricSource(Protocol):
    """What the built-in metrics use of their registry (`registry.Registry`, which creates
    them): stated here so that this module does not import the one that imports it."""

    listeners: list[Any]

    def metric(self, name: str, type_: str, is_time: bool = False) -> Any: ...

    def record(self, metric: Any, value: float, tags: TagSet) -> None: ...


class BuiltinMetrics:
    """The built-in metrics of one registry, as attributes."""

    def __init__(self, reg: MetricSource) -> None:
        t, c, g, r = "trend", "counter", "gauge", "rate"
        self.registry = reg
        self.http_reqs = reg.metric("http_reqs", c)
        self.http_req_duration = reg.metric("http_req_duration", t, True)
        self.http_req_blocked = reg.metric("http_req_blocked", t, True)
        self.http_req_connecting = reg.metric("http_req_connecting", t, True)
        self.http_req_tls_handshaking = reg.metric("http_req_tls_handshaking", t, True)
        self.http_req_sending = reg.metric("http_req_sending", t, True)
        self.http_req_waiting = reg.metric("http_req_waiting", t, True)
        self.http_req_receiving = reg.metric("http_req_receiving", t, True)
        self.http_req_failed = reg.metric("http_req_failed", r)
        self.data_sent = reg.metric("data_sent", c)
        self.data_received = reg.metric("data_received", c)
        self.iterations = reg.metric("iterations", c)
        self.iteration_duration = reg.metric("iteration_duration", t, True)
        self.vus = reg.metric("vus", g)
        self.vus_max = reg.metric("vus_max", g)
        self.checks = reg.metric("checks", r)
        self.dropped_iterations = reg.metric("dropped_iterations", c)
        # Iterations ended by an exception, tagged error_type (beyond k6, which only logs them).
        self.iteration_errors = reg.metric("iteration_errors", c)
        self._http_sinks: dict[TagSet, tuple] = {}

    def record_http(
        self,
        tags: TagSet,
        blocked: float,
        connecting: float,
        tls_handshaking: float,
        sending: float,
        waiting: float,
        receiving: float,
        failed: bool,
        bytes_sent: int,
        bytes_received: int,
    ) -> None:
        """Record one HTTP request's samples (all times in ms).

        Hot path: one dict lookup finds every sink of this tag set, unless raw
        listeners (--out json/csv) need each sample individually.
        """
        reg = self.registry
        duration = sending + waiting + receiving
        if reg.listeners:
            rec = reg.record
            rec(self.http_reqs, 1.0, tags)
            rec(self.http_req_duration, duration, tags)
            rec(self.http_req_blocked, blocked, tags)
            rec(self.http_req_connecting, connecting, tags)
            rec(self.http_req_tls_handshaking, tls_handshaking, tags)
            rec(self.http_req_sending, sending, tags)
            rec(self.http_req_waiting, waiting, tags)
            rec(self.http_req_receiving, receiving, tags)
            rec(self.http_req_failed, 1.0 if failed else 0.0, tags)
            rec(self.data_sent, float(bytes_sent), tags)
            rec(self.data_received, float(bytes_received), tags)
            return
        sinks = self._http_sinks.get(tags)
        if sinks is None:
            sinks = tuple(
                m.sink(tags)
                for m in (
                    self.http_reqs, self.http_req_duration, self.http_req_blocked,
                    self.http_req_connecting, self.http_req_tls_handshaking,
                    self.http_req_sending, self.http_req_waiting, self.http_req_receiving,
                    self.http_req_failed, self.data_sent, self.data_received,
                )
            )
            self._http_sinks[tags] = sinks
        reqs: CounterSink
        dur: TrendSink
        fail: RateSink
        (reqs, dur, blk, con, tls, snd, wai, rcv, fail, sent, recv) = sinks
        reqs.add(1.0)
        dur.add(duration)
        blk.add(blocked)
        con.add(connecting)
        tls.add(tls_handshaking)
        snd.add(sending)
        wai.add(waiting)
        rcv.add(receiving)
        fail.add(failed)
        sent.add(bytes_sent)
        recv.add(bytes_received)
