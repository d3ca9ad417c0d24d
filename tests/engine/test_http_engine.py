"""The engine with the real HTTP client against a real server on loopback: per-VU
keep-alive connections and cookies (emptied each iteration unless noCookiesReset),
request tags, open-loop arrivals against a slow server, and the module-level `http`
proxy in setup and iterations."""

from __future__ import annotations

import pytest
from engine_helpers import ThreadedServer, count, module, run, scenario

from indigo_loadtest import check, http
from indigo_loadtest.http.client import Client
from indigo_loadtest.scenario.options import parse_options


def test_each_vu_keeps_its_connection_and_cookies():
    with ThreadedServer() as srv:
        async def default(vu):
            resp = await vu.http.get(srv.url, params={"vu": vu.id})
            check(resp, {"status 200": lambda r: r.status == 200})

        result, reg, err = run(scenario("per-vu-iterations", vus=3, iterations=4),
                               module(default=default), client_factory=Client,
                               plan_kwargs={"extra": {"no_cookies_reset": True}})
    assert err == ""
    assert result.iterations == 12
    assert count(reg, "http_reqs", scenario="default") == 12
    assert reg.get("checks").aggregate({"check": "status 200"}).trues == 12
    # keep-alive: one connection per VU; cookies: the VU's own, from its first response
    ports = {port for port, _ in srv.requests}
    assert len(ports) == 3
    by_port: dict[int, list[str | None]] = {}
    for port, cookie in srv.requests:
        by_port.setdefault(port, []).append(cookie)
    for cookies in by_port.values():
        assert cookies[0] is None
        assert len(set(cookies[1:])) == 1 and cookies[1] is not None


@pytest.mark.parametrize("no_cookies_reset", [False, True])
def test_cookie_jar_is_emptied_at_each_iteration_unless_no_cookies_reset(no_cookies_reset):
    options = {"noCookiesReset": True} if no_cookies_reset else {}
    extra = parse_options(options).plan.extra
    with ThreadedServer() as srv:
        async def default(vu):
            for _ in range(2):  # the cookie set by the first response is sent by the second
                await vu.http.get(srv.url, params={"vu": f"{vu.id}-{vu.iteration}"})

        result, _reg, err = run(scenario("per-vu-iterations", vus=1, iterations=2),
                                module(default=default), client_factory=Client,
                                plan_kwargs={"extra": extra})
    assert (err, result.iterations) == ("", 2)
    cookies = [cookie for _port, cookie in srv.requests]
    if no_cookies_reset:
        assert cookies == [None, "1-0", "1-0", "1-0"]
    else:
        assert cookies == [None, "1-0", None, "1-1"]


def test_arrival_rate_keeps_its_schedule_against_a_slow_server():
    with ThreadedServer(delay=0.25) as srv:
        async def default(vu):
            await http.get(srv.url)

        result, reg, _ = run(
            scenario("constant-arrival-rate", rate=40, duration=0.5, pre_allocated_vus=2,
                     max_vus=30, graceful_stop=2.0),
            module(default=default), client_factory=Client)
    # open loop: 20 starts in 0.5 s although each request takes 0.25 s
    assert result.iterations == 20
    assert result.dropped_iterations == 0
    assert count(reg, "http_reqs") == 20
    assert reg.get("vus_max").aggregate().max >= 10


def test_setup_can_use_the_http_proxy():
    with ThreadedServer() as srv:
        async def setup():
            resp = await http.get(srv.url)
            return {"status": resp.status}

        seen = []

        def default(vu):
            seen.append(vu.data["status"])

        _result, reg, _ = run(scenario("per-vu-iterations", vus=1, iterations=2),
                             module(setup=setup, default=default), client_factory=Client)
    assert seen == [200, 200]
    assert reg.get("http_reqs").aggregate({"group": "::setup"}).value == 1


def test_module_level_http_is_the_running_vus_client_whatever_the_import_order():
    # A run imports indigo_loadtest.http (the client) before the scenario, which binds
    # the package name on indigo_loadtest: `http` must still reach the VU's client.
    import indigo_loadtest
    import indigo_loadtest.http as http_package

    assert indigo_loadtest.http is http_package and http is http_package
    with ThreadedServer() as srv:
        seen: list[tuple[int, bool]] = []

        async def default(vu):
            resp = await http.request("GET", srv.url)
            seen.append((resp.status, http.cookies is vu.http.cookies))

        run(scenario("per-vu-iterations", vus=2, iterations=1),
            module(default=default), client_factory=Client)
    assert seen == [(200, True), (200, True)]
    with pytest.raises(RuntimeError, match="only available inside"):
        _ = http.cookies
