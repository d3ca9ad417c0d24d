"""`--ray`: rates on the load clock, as with one process (tests/cli/test_load_clock.py).
The actors take seconds to be placed and to load the scenario; none of it is in a rate,
and the run's series is paced from its first point to its last."""

from __future__ import annotations

from pathlib import Path

from cluster_helpers import RayTestCluster, cluster_env
from rate_helpers import assert_same_rates, assert_series_paced, run_arrivals

RUN_LIMIT = 60  # seconds for one run through the cluster (actors start in seconds)


def test_rates_through_ray_equal_those_of_one_process(
    workdir: Path, simulator_url: str, ray_cluster: RayTestCluster
) -> None:
    env = cluster_env(BASE=simulator_url)
    runs = {"one": run_arrivals(workdir, simulator_url, "one", "--workers", "1", env=env),
            "ray": run_arrivals(workdir, simulator_url, "ray", "--ray", ray_cluster.address,
                                env=env, timeout=RUN_LIMIT)}
    assert_same_rates(runs)
    assert_series_paced(runs["ray"]["record"])
