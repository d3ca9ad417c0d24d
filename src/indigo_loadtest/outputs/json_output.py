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
from .raw_sample import RawSampleOutput, Sample, metric_contains, number_text, safe_tags


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

    def format_batch(self, samples: list[Sample]) -> str:
        prefixes, tag_texts = self._point_prefix, self._tags_json
        out = []
        append = out.append
        for metric, tags, value, unix_time in samples:
            prefix = prefixes.get(metric)
            if prefix is None:
                append(self.declaration(metric))
                prefix = prefixes[metric] = (
                    '{"metric":' + _dumps(metric.name) + ',"type":"Point","data":{"time":"'
                )
            tags_json = tag_texts.get(tags)
            if tags_json is None:
                tags_json = tag_texts[tags] = _dumps(safe_tags(tags))
            append(
                f'{prefix}{self._rfc3339(unix_time)}","value":{number_text(value)},'
                f'"tags":{tags_json}}}}}\n'
            )
        return "".join(out)

    def is_sample_line(self, line: bytes) -> bool:
        return line.startswith(b'{"metric":')  # a declaration starts {"type":"Metric"

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
        micros = int(unix_time * 1e6)
        second = micros // 1_000_000
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        # str(1_000_000 + n)[1:] is n zero-padded to six digits, faster than a format spec
        return self._second_text + str(micros - second * 1_000_000 + 1_000_000)[1:] + "Z"


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
