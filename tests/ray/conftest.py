"""The Ray tests' cluster: a real two-node Ray cluster on 127.0.0.1, shared by the session
(a Ray node takes seconds to start): `ray start --head` plus a second `ray start --address`,
each with one CPU and a resource of its own, in a temp dir of their own. Each node runs as
`ray start --block` in its own process group, ended by that group's id at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_helpers import RayTestCluster, start_cluster


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayTestCluster]:
    yield from start_cluster()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory with an empty ./scenarios folder."""
    (tmp_path / "scenarios").mkdir()
    return tmp_path
