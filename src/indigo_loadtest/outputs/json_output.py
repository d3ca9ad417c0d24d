"""`--out json=FILE`: every sample as NDJSON, in k6's `--out json` format.

    {"type":"Metric","data":{"name":"http_reqs","type":"counter","contains":"default",
     "thresholds":[],"submetrics":null},"metric":"http_reqs"}
    {"metric":"http_reqs","type":"Point","data":{"time":"2026-01-02T03:04:05.123456Z",
     "value":1,"tags":{"method":"GET","status":"200",...}}}

A metric's declaration line comes once, just before its first point.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from ..metrics.registry import Metric
from ..metrics.summary import EXPECTED_RESPONSE
from ..metrics.tags import TagSet
from ..metrics.thresholds import ThresholdSet
from .raw_sample import RawSampleOutput, metric_contains, number_text, safe_tags


class JsonOutput(RawSampleOutput):
    """NDJSON raw samples. `thresholds` fills the declarations' thresholds/submetrics."""

    name = "json"

    def __init__(self, path: str | Path, thresholds: ThresholdSet | None = None) -> None:
        super().__init__(path)
        self.thresholds = thresholds or ThresholdSet()
        self._point_prefix: dict[Metric, str] = {}
        self._tags_json: dict[TagSet, str] = {}
        self._second = -1
        self._second_text = ""

    def format_sample(self, metric: Metric, tags: TagSet, value: float,
                      unix_time: float) -> str:
        prefix = self._point_prefix.get(metric)
        declaration = ""
        if prefix is None:
            declaration = self.declaration(metric)
            prefix = '{"metric":' + _dumps(metric.name) + ',"type":"Point","data":{"time":"'
            self._point_prefix[metric] = prefix
        tags_json = self._tags_json.get(tags)
        if tags_json is None:
            tags_json = self._tags_json[tags] = _dumps(safe_tags(tags))
        return (
            f'{declaration}{prefix}{self._rfc3339(unix_time)}","value":{number_text(value)},'
            f'"tags":{tags_json}}}}}\n'
        )

    def declaration(self, metric: Metric) -> str:
        """The `{"type":"Metric",...}` line of a metric."""
        entries = self.thresholds.for_metric(metric.name)
        subs = {e.submetric: dict(e.tags) for e in entries if e.submetric}
        if metric.name == "http_req_duration":
            subs.setdefault(EXPECTED_RESPONSE, {"expected_response": "true"})
        data = {
            "name": metric.name,
            "type": metric.type,
            "contains": metric_contains(metric),
            "thresholds": [t.source for e in entries if not e.submetric for t in e.thresholds],
            "submetrics": [
                {"name": f"{metric.name}{{{suffix}}}", "suffix": suffix, "tags": tags}
                for suffix, tags in subs.items()
            ] or None,
        }
        return _dumps({"type": "Metric", "data": data, "metric": metric.name}) + "\n"

    def _rfc3339(self, unix_time: float) -> str:
        # The date-time part changes once a second: format it once per second.
        second = int(unix_time)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        micros = min(int((unix_time - second) * 1e6), 999_999)
        return f"{self._second_text}.{micros:06d}Z"


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
