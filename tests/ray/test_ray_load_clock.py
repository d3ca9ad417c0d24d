"""`--ray`: rates on the load clock, as with one process (tests/cli/test_load_clock.py,
which runs the same plan with one process and two workers). The actors take seconds to
be placed and to load the scenario; none of it is in a rate, and the run's series is
paced from its first point to its last. The plan's own rate is the reference (a rate on
the load clock does not depend on how busy the machine is)."""

from __future__ import annotations

from pathlib import Path

from cluster_helpers import RayTestCluster, cluster_env
from rate_helpers import assert_same_rates, assert_series_paced, run_arrivals

RUN_LIMIT = 60  # seconds for one run through the cluster (actors start in seconds)


def test_rates_through_ray_are_the_plans(workdir: Path, ray_cluster: RayTestCluster) -> None:
    # BASE unset: the run's embedded simulator, in the cluster's network namespace.
    ray = run_arrivals(workdir, "", "ray", "--ray", ray_cluster.address,
                       env=cluster_env(), timeout=RUN_LIMIT, run=ray_cluster.run_cli)
    assert_same_rates({"ray": ray})
    assert_series_paced(ray["record"])
