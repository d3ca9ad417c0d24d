"""`--out csv=FILE`: every sample as a CSV row, in k6's `--out csv` format.

The columns are k6's: the metric, a unix timestamp in seconds, the value with six
decimals, one column per k6 system tag, then every other tag as `k=v&k2=v2` in
`extra_tags`, and `metadata` (always empty here).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..metrics.tags import TagSet
from .raw_sample import RawSampleOutput, Sample, safe_tags

TAG_COLUMNS = (
    "check", "error", "error_code", "expected_response", "group", "method", "name", "proto",
    "scenario", "service", "status", "subproto", "tls_version", "url",
)
COLUMNS = ("metric_name", "timestamp", "metric_value", *TAG_COLUMNS, "extra_tags", "metadata")
_TAG_COLUMN_SET = frozenset(TAG_COLUMNS)


class CsvOutput(RawSampleOutput):
    name = "csv"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._tag_cells: dict[TagSet, str] = {}

    def header(self) -> str:
        return ",".join(COLUMNS) + "\n"

    def format_batch(self, samples: list[Sample]) -> str:
        cache = self._tag_cells
        out = []
        append = out.append
        for metric, tags, value, unix_time in samples:
            cells = cache.get(tags)
            if cells is None:
                cells = cache[tags] = _tag_cells(tags)
            # Metric names are [A-Za-z0-9_.-] only, so they never need quoting.
            append(f"{metric.name},{int(unix_time)},{value:f},{cells}")
        return "".join(out)


def _tag_cells(tags: TagSet) -> str:
    """The tag columns of a row (with its line end), quoted as CSV requires."""
    values = safe_tags(tags)
    extra = "&".join(f"{k}={v}" for k, v in values.items() if k not in _TAG_COLUMN_SET)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(
        [*(values.get(col, "") for col in TAG_COLUMNS), extra, ""]
    )
    return out.getvalue()
