"""A real Prometheus (Debian's `prometheus` binary) with the remote-write receiver,
on a free loopback port, shared by the monitoring tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prom_helpers import PrometheusAPI, free_port

from indigo_loadtest.monitoring.stack import (
    find_prometheus_binary,
    start_native_prometheus,
    stop_native_prometheus,
)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusAPI]:
    if find_prometheus_binary() is None:
        pytest.fail("the prometheus binary is missing: apt-get install -y prometheus")
    data_dir: Path = tmp_path_factory.mktemp("prometheus")
    server = start_native_prometheus(host="127.0.0.1", port=free_port(), data_dir=data_dir)
    try:
        yield PrometheusAPI(server)
    finally:
        stop_native_prometheus(data_dir)


@pytest.fixture
def testid() -> str:
    """A fresh testid per test, so tests sharing one Prometheus never see each other."""
    return f"t-{uuid.uuid4().hex[:12]}"
