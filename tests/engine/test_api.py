"""The scenario API inside real executions: check, group, fail, exceptions, setup and
teardown, the `http` proxy."""

from __future__ import annotations

import asyncio

import pytest
from engine_helpers import StubClient, count, module, run, scenario

from indigo_loadtest import check, fail, group, http, sleep
from indigo_loadtest.metrics.registry import Registry, current_tags, set_active_registry
from indigo_loadtest.metrics.tags import tagset

ONE = scenario("per-vu-iterations", vus=1, iterations=1)


def test_check_records_each_name_with_the_current_tags():
    async def default(vu):
        assert check(200, {"is 200": lambda s: s == 200, "is 500": lambda s: s == 500}) is False
        assert check(1, {"plain true": True, "raises": lambda v: 1 / 0}, tags={"k": "v"}) is False
        assert check("x", {"truthy": lambda v: v}) is True

    _, reg, _ = run(ONE, module(default=default), plan_kwargs={"tags": {"testid": "t"}})
    checks = reg.get("checks")
    rate = {ts.get("check"): (s.trues, s.total) for ts, s in checks.sinks.items()}
    assert rate == {"is 200": (1, 1), "is 500": (0, 1), "plain true": (1, 1), "raises": (0, 1),
                    "truthy": (1, 1)}
    assert checks.aggregate({"check": "raises", "k": "v", "scenario": "default",
                             "testid": "t"}).total == 1


def test_check_never_raises():
    reg = Registry()
    set_active_registry(reg)

    async def coro_predicate(v):
        return True

    assert check(None, {"async": coro_predicate}) is False
    assert check(None, None) is False  # type: ignore[arg-type]
    assert reg.get("checks").aggregate({"check": "async"}).total == 1


def test_group_nests_the_group_tag_and_records_group_duration():
    async def default(vu):
        with group("outer"):
            check(1, {"in outer": True})
            with group("inner"):
                await sleep(0.01)
                check(1, {"in inner": True})
        check(1, {"outside": True})

    _, reg, _ = run(ONE, module(default=default))
    groups = {ts.get("check"): ts.get("group") for ts in reg.get("checks").sinks}
    assert groups == {"in outer": "::outer", "in inner": "::outer::inner", "outside": None}
    durations = reg.get("group_duration")
    inner = durations.aggregate({"group": "::outer::inner", "scenario": "default"})
    outer = durations.aggregate({"group": "::outer"})
    assert inner.count == 1 and outer.count == 1
    assert 10 <= inner.min <= outer.min


def test_group_rejects_the_separator():
    with pytest.raises(ValueError):
        group("a::b")


def test_group_restores_tags_after_an_exception():
    reg = Registry()
    set_active_registry(reg)
    base = tagset({"scenario": "s"})
    token = current_tags.set(base)
    try:
        with pytest.raises(KeyError), group("g"):
            raise KeyError("x")
        assert current_tags.get() is base
    finally:
        current_tags.reset(token)


def test_exception_in_iteration_is_counted_shown_once_and_the_run_goes_on():
    async def default(vu):
        if vu.iteration % 2:
            raise ValueError(f"bad iteration {vu.iteration}")

    result, reg, err = run(scenario("per-vu-iterations", vus=2, iterations=6),
                           module(default=default))
    # as in k6, an iteration that threw still completed: it counts in `iterations`
    assert result.iterations == 12
    assert count(reg, "iterations") == 12
    assert err.count("Traceback") == 1
    assert "ValueError: bad iteration" in err
    assert sum(result.iteration_errors.values()) == 6
    (kind,) = result.iteration_errors
    assert kind.startswith("ValueError at ") and "test_api.py" in kind


def test_fail_ends_only_the_iteration():
    reached = []

    async def default(vu):
        fail("no token")
        reached.append(1)

    result, _, err = run(scenario("per-vu-iterations", vus=1, iterations=3),
                         module(default=default))
    assert reached == []
    assert result.iterations == 3
    assert err.count("no token") == 1 and "Traceback" not in err


def test_sync_scenario_functions_work():
    seen = []
    result, _, _ = run(scenario("shared-iterations", vus=2, iterations=5),
                       module(default=lambda vu: seen.append(vu.iteration)))
    assert result.iterations == 5 == len(seen)


def test_setup_data_reaches_vus_and_teardown():
    got = []

    async def setup():
        await asyncio.sleep(0)
        return {"token": "abc"}

    def default(vu):
        got.append(vu.data["token"])

    def teardown(data):
        got.append(("teardown", data))

    result, _, _ = run(scenario("per-vu-iterations", vus=2, iterations=1),
                       module(setup=setup, default=default, teardown=teardown))
    assert got[:2] == ["abc", "abc"]
    assert got[2] == ("teardown", {"token": "abc"})
    assert result.setup_data == {"token": "abc"}


def test_setup_failure_skips_scenarios_and_teardown():
    ran = []

    def setup():
        raise RuntimeError("cannot log in")

    result, _, err = run(ONE, module(setup=setup, default=lambda vu: ran.append(1),
                                     teardown=lambda d: ran.append(2)))
    assert ran == []
    assert result.interrupted and result.setup_error == "RuntimeError: cannot log in"
    assert "cannot log in" in err


def test_setup_timeout():
    async def setup():
        await asyncio.sleep(5)

    result, _, _ = run(ONE, module(setup=setup, default=lambda vu: None),
                       plan_kwargs={"setup_timeout": 0.1})
    assert result.setup_error is not None and "setupTimeout" in result.setup_error


def test_http_proxy_resolves_to_the_running_vus_client():
    clients = {}

    def setup():
        clients["setup"] = http._client()

    async def default(vu):
        await asyncio.sleep(0)
        assert http._client() is vu.http
        clients[vu.id] = vu.http

    run(scenario("per-vu-iterations", vus=2, iterations=2),
        module(setup=setup, default=default))
    assert isinstance(clients["setup"], StubClient)
    assert len({id(c) for c in clients.values()}) == 3
    assert all(c.closed for c in clients.values())  # closed at the end of the run


def test_http_outside_a_vu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="only available inside"):
        asyncio.run(http.get("http://127.0.0.1:9/"))
    with pytest.raises(RuntimeError, match="only available inside"):
        http.cookies  # noqa: B018


def test_vu_fields_and_env():
    seen = []

    def default(vu):
        seen.append((vu.id, vu.id_in_scenario, vu.scenario, dict(vu.env)))

    run(scenario("per-vu-iterations", name="s1", vus=2, iterations=1, env={"B": "scen"}),
        module(default=default), env={"A": "run", "B": "run"})
    assert sorted(seen) == [(1, 1, "s1", {"A": "run", "B": "scen"}),
                            (2, 2, "s1", {"A": "run", "B": "scen"})]


def test_setup_runs_in_the_setup_group():
    def setup():
        check(True, {"setup ok": True})

    _, reg, _ = run(ONE, module(setup=setup, default=lambda vu: None))
    (ts,) = reg.get("checks").sinks
    assert ts.get("group") == "::setup"


def test_cancelled_error_raised_by_scenario_code_is_an_iteration_error():
    async def default(vu):
        raise asyncio.CancelledError

    result, _, err = run(scenario("per-vu-iterations", vus=1, iterations=3),
                         module(default=default))
    assert result.iterations == 3
    assert "CancelledError" in err


def test_given_setup_data_is_used_when_setup_does_not_run():
    seen = []
    run(ONE, module(setup=lambda: "from setup", default=lambda vu: seen.append(vu.data)),
        plan_kwargs={"no_setup": True}, setup_data={"shared": 1})
    assert seen == [{"shared": 1}]


def test_hard_stop_interrupts_a_slow_setup():
    async def setup():
        await asyncio.sleep(10)

    async def aborter(ex):
        await asyncio.sleep(0.1)
        ex.stop("aborted", hard=True)

    result, _, _ = run(ONE, module(setup=setup, default=lambda vu: None), during=aborter)
    assert result.interrupted and result.stop_reason == "aborted"
    assert result.setup_error is not None and "interrupted" in result.setup_error
    assert result.elapsed < 2
