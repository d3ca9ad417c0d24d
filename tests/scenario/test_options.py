"""k6 options → TestPlan: shortcuts, scenarios, defaults, durations, errors, overrides."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indigo_loadtest.scenario.errors import ScenarioError
from indigo_loadtest.scenario.options import (
    Overrides,
    describe_scenario,
    parse_duration,
    parse_options,
    snake,
)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("5m", 300), ("1h30m", 5400), ("500ms", 0.5), ("1.5s", 1.5),
    ("2m30s", 150), ("1d", 86400), ("250us", 0.00025), ("0", 0), ("90", 90), (12, 12),
    (0.25, 0.25),
])
def test_duration_parsing(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5x", "s", "1h 30m", "-5s", "1.2.3s", True, None, [1]])
def test_bad_durations_name_the_option(bad: object) -> None:
    with pytest.raises(ScenarioError, match=r"^gracefulStop: "):
        parse_duration(bad, "gracefulStop")


@given(h=st.integers(0, 99), m=st.integers(0, 59), s=st.integers(0, 59), ms=st.integers(0, 999))
def test_duration_components_add_up(h: int, m: int, s: int, ms: int) -> None:
    text = f"{h}h{m}m{s}s{ms}ms"
    assert parse_duration(text) == pytest.approx(h * 3600 + m * 60 + s + ms / 1000)


def test_camel_case_to_snake_case() -> None:
    assert snake("preAllocatedVUs") == "pre_allocated_vus"
    assert snake("maxVUs") == "max_vus"
    assert snake("insecureSkipTLSVerify") == "insecure_skip_tls_verify"
    assert snake("startTime") == "start_time"
    assert snake("vus") == "vus"


def only(opts: dict, overrides: Overrides | None = None):
    parsed = parse_options(opts, overrides)
    assert len(parsed.plan.scenarios) == 1
    return parsed.plan.scenarios[0]


def test_nothing_set_is_one_vu_one_iteration() -> None:
    sc = only({})
    assert (sc.name, sc.executor, sc.vus, sc.iterations) == ("default", "per-vu-iterations", 1, 1)
    assert sc.graceful_stop == 30 and sc.max_duration == 600


def test_shortcuts_map_to_k6_executors() -> None:
    sc = only({"vus": 3, "iterations": 9})
    assert (sc.executor, sc.vus, sc.iterations) == ("shared-iterations", 3, 9)
    sc = only({"vus": 2, "iterations": 4, "duration": "20s"})
    assert (sc.executor, sc.max_duration) == ("shared-iterations", 20)
    sc = only({"vus": 5, "duration": "1m"})
    assert (sc.executor, sc.vus, sc.duration) == ("constant-vus", 5, 60)
    sc = only({"vus": 2, "stages": [{"duration": "10s", "target": 8}, {"duration": "5s"}]})
    assert (sc.executor, sc.start_vus, sc.vus) == ("ramping-vus", 2, 8)
    assert [(s.duration, s.target) for s in sc.stages] == [(10, 8), (5, 0)]


def test_vus_alone_is_ignored_with_a_warning() -> None:
    parsed = parse_options({"vus": 10})
    assert parsed.plan.scenarios[0].vus == 1
    assert any("vus=10" in w for w in parsed.warnings)


def test_named_scenarios_with_defaults_and_camel_case() -> None:
    parsed = parse_options({
        "scenarios": {
            "nonstream": {"executor": "constant-arrival-rate", "rate": 2, "timeUnit": "1s",
                          "duration": "5m", "preAllocatedVUs": 4, "maxVUs": 20,
                          "exec": "nonstream", "tags": {"kind": "ns"}},
            "stream": {"executor": "ramping-arrival-rate", "start_rate": 1,
                       "stages": [{"duration": "1m", "target": 5}],
                       "pre_allocated_vus": 2, "startTime": "10s", "gracefulStop": "5s",
                       "env": {"MODE": "stream"}},
        },
        "thresholds": {"http_req_failed": ["rate<0.05"]},
        "tags": {"team": "llm", "n": 1},
        "setupTimeout": "2m",
    })
    ns, s = parsed.plan.scenarios
    assert (ns.executor, ns.rate, ns.time_unit, ns.duration) == ("constant-arrival-rate", 2, 1, 300)
    assert (ns.pre_allocated_vus, ns.max_vus, ns.exec_name) == (4, 20, "nonstream")
    assert ns.tags == {"kind": "ns"}
    assert (s.executor, s.start_rate, s.max_vus, s.start_time) == ("ramping-arrival-rate", 1, 2, 10)
    assert (s.graceful_stop, s.env) == (5, {"MODE": "stream"})
    assert parsed.plan.tags == {"team": "llm", "n": "1"}
    assert parsed.plan.setup_timeout == 120
    assert parsed.thresholds == {"http_req_failed": ["rate<0.05"]}


@pytest.mark.parametrize(("opts", "message"), [
    ({"iterations": 1, "stages": [{"duration": "1s", "target": 1}]},
     "using multiple execution config shortcuts (`iterations` and `stages`)"),
    ({"duration": "1s", "scenarios": {"a": {"executor": "constant-vus", "duration": "1s"}}},
     "using an execution configuration shortcut (`duration`) and `scenarios`"),
    ({"vus": 5, "iterations": 2},
     "the number of iterations (2) can't be less than the number of VUs (5)"),
    ({"vus": 0, "duration": "5s"}, "vus: must be at least 1"),
    ({"duration": "0s"}, "duration: must be more than 0"),
    ({"duration": "fast"}, "duration: invalid duration 'fast'"),
    ({"scenarios": {"a": {"executor": "warp-speed"}}}, "scenarios.a: unknown executor"),
    ({"scenarios": {"a": {"vus": 1}}}, "scenarios.a: missing 'executor'"),
    ({"scenarios": {"a": {"executor": "constant-vus"}}},
     "scenarios.a: executor constant-vus needs 'duration'"),
    ({"scenarios": {"a": {"executor": "constant-vus", "duration": "1s", "rate": 3}}},
     "scenarios.a: option 'rate' is not valid for executor constant-vus"),
    ({"scenarios": {"a": {"executor": "constant-arrival-rate", "rate": 1, "duration": "1s",
                          "preAllocatedVUs": 5, "maxVUs": 2}}},
     "scenarios.a: maxVUs can't be less than preAllocatedVUs"),
    ({"scenarios": {"bad name": {"executor": "per-vu-iterations"}}}, "invalid scenario name"),
    ({"scenarios": {"a": {"executor": "per-vu-iterations", "iterations": 1.5}}},
     "scenarios.a.iterations: expected a whole number"),
    ({"scenarios": {}}, "scenarios: expected a non-empty mapping"),
    ({"thresholds": ["p(95)<1"]}, "thresholds: expected a mapping"),
])
def test_invalid_options_give_one_line_naming_the_option(opts: dict, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_options(opts)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_top_level_option_is_a_warning() -> None:
    parsed = parse_options({"treshold": {}, "discardResponseBodies": True})
    assert parsed.warnings == ["unknown option 'treshold' is ignored"]
    assert parsed.plan.extra == {"discard_response_bodies": True}


def test_command_line_overrides_replace_the_execution_block() -> None:
    script = {"scenarios": {"a": {"executor": "constant-vus", "duration": "1m"}},
              "tags": {"team": "x"}}
    sc = only(script, Overrides(vus=4, duration=3.0))
    assert (sc.executor, sc.vus, sc.duration) == ("constant-vus", 4, 3.0)
    sc = only({"vus": 2, "duration": "1m"}, Overrides(iterations=6))
    assert (sc.executor, sc.vus, sc.iterations) == ("shared-iterations", 2, 6)
    sc = only({"vus": 1, "duration": "1m"}, Overrides(vus=3))
    assert (sc.executor, sc.vus, sc.duration) == ("constant-vus", 3, 60)
    parsed = parse_options(script, Overrides(vus=9, tags={"team": "y", "run": "1"}))
    assert parsed.plan.scenarios[0].vus == 1 and parsed.warnings
    assert parsed.plan.tags == {"team": "y", "run": "1"}


def test_describe_scenario_reads_like_k6() -> None:
    assert describe_scenario(only({"vus": 2, "iterations": 10})) == (
        "default: 10 iterations shared among 2 VUs (maxDuration: 10m0s, gracefulStop: 30s)")
    assert describe_scenario(only({"vus": 5, "duration": "90s"})) == (
        "default: 5 looping VUs for 1m30s (gracefulStop: 30s)")
