"""The monitoring compose file's load-test service: the image the repository's Dockerfile
builds, sending its metrics to the compose stack's own Prometheus receiver, with the
folders the image works in. (No compose tool runs here; the file is checked as data.)"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from indigo_loadtest.outputs.prometheus_rw import DEFAULT_URL

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"


def compose() -> dict:
    return yaml.safe_load((MONITORING / "docker-compose.yml").read_text())


def dockerfile_setting(keyword: str) -> str:
    (value,) = re.findall(rf"^{keyword} (.+)$", (REPO / "Dockerfile").read_text(), re.M)
    return value


def test_loadtest_service_runs_the_image_this_repository_builds() -> None:
    service = compose()["services"]["loadtest"]
    script = (REPO / "container" / "build-image.sh").read_text()
    (default_tag,) = re.findall(r'^tag="([^"]+)"$', script, re.M)
    assert service["image"] == default_tag
    assert (MONITORING / service["build"]["context"] / "Dockerfile").resolve() == \
        REPO / "Dockerfile"
    workdir = dockerfile_setting("WORKDIR")
    targets = {v.split(":")[1] for v in service["volumes"]}
    assert targets == {f"{workdir}/scenarios", f"{workdir}/results"}
    for volume in service["volumes"]:  # host folders of the repository, relative to it
        host = os.path.normpath(MONITORING / volume.split(":")[0])
        assert Path(host).parent == REPO
    # Never started by `monitoring up` (plain `compose up -d`): only when asked for.
    assert service["profiles"] == ["loadtest"]
    assert all("profiles" not in s for name, s in compose()["services"].items()
               if name != "loadtest")


def test_loadtest_service_writes_to_the_stacks_prometheus_receiver() -> None:
    services = compose()["services"]
    service = services["loadtest"]
    url = urlsplit(service["environment"]["K6_PROMETHEUS_RW_SERVER_URL"])
    prometheus = services[url.hostname]  # a service of this stack, by its name
    assert "--web.enable-remote-write-receiver" in prometheus["command"]
    container_ports = {int(p.rsplit(":", 1)[1]) for p in prometheus["ports"]}
    assert url.port in container_ports
    assert url.path == urlsplit(DEFAULT_URL).path
    assert "--monitor" in service["command"]  # the output is on, and checked before traffic
    assert service["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert "grafana" in service["depends_on"]


def test_loadtest_service_passes_secrets_through_without_values() -> None:
    environment = compose()["services"]["loadtest"]["environment"]
    for name in ("BASE", "API_KEY", "LOADTEST_TOKEN"):
        assert name in environment and environment[name] is None  # from the caller's shell
