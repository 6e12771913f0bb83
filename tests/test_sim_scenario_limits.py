"""Bad scenario input gets a ScenarioError naming the key: negative sizes, contradictory duty cycles,
and the splitting and log options."""

from __future__ import annotations

import math

import pytest

from proximity.sim import CrowdParams, Scenario, World
from proximity.sim.scenario import ScenarioError, scenario_from_dict


def _data(**top: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "ok",
        "duration": 3600,
        "crowd": {"agents": 10, "width": 3.0, "height": 3.0},
    }
    data.update(top)
    return data


def _crowd(**changes: object) -> dict[str, object]:
    crowd: dict[str, object] = {"agents": 10, "width": 3.0, "height": 3.0}
    crowd.update(changes)
    return crowd


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (_data(crowd=_crowd(agents=-5)), "agents"),
        (_data(crowd=_crowd(width=-1.0)), "width"),
        (_data(crowd=_crowd(height=0.0)), "height"),
        (_data(crowd=_crowd(group_size=-3)), "group_size"),
        (_data(crowd=_crowd(seat_spacing=-1.0)), "seat_spacing"),
        (_data(crowd=_crowd(speed=[-1.0, 1.0])), "speed"),
        (_data(crowd=_crowd(dwell=-5.0)), "dwell"),
        (_data(duration=-60), "duration"),
        (_data(step=-1.0), "step"),
        (_data(chunk=-300), "chunk"),
        (_data(forget=-1), "forget"),
        (_data(hold=-1), "hold"),
        (_data(contact_distance=-2.0), "contact_distance"),
        (_data(contact_minutes=-1.0), "contact_minutes"),
        (_data(memory_cap=-1.0), "memory_cap"),
    ],
)
def test_negative_sizes_are_refused_naming_the_key(data: dict[str, object], key: str) -> None:
    scenario_from_dict(_data())  # the base is fine
    with pytest.raises(ScenarioError, match=key):
        scenario_from_dict(data)


def _duty(**changes: object) -> dict[str, object]:
    duty: dict[str, object] = {"scan_on": 4, "scan_period": 300, "advertise_on": 1, "advertise_period": 1}
    duty.update(changes)
    return {k: v for k, v in duty.items() if v is not None}


@pytest.mark.parametrize(
    ("duty", "key"),
    [
        (_duty(scan_on=400), "scan_on \\(400 s\\) is longer than scan_period \\(300 s\\)"),
        (_duty(advertise_on=2, advertise_period=1), "advertise_on \\(2 s\\) is longer than advertise_period"),
        (_duty(scan_period=0), "scan_period must be a positive"),
        (_duty(scan_on=-4), "scan_on must be a positive"),
        (_duty(advertise_on=math.nan), "advertise_on must be a positive"),
        (_duty(scan_on=True), "scan_on must be a positive"),
        (_duty(scan_on="4"), "scan_on must be a positive"),
        (_duty(scan_period=None), "missing scan_period"),
        (_duty(scan_every=300), "unknown scan_every"),
    ],
)
def test_contradictory_duty_cycles_are_refused_naming_the_key(duty: dict[str, object], key: str) -> None:
    with pytest.raises(ScenarioError, match=f"\\[duty\\].*{key}"):
        scenario_from_dict(_data(duty=duty))


def test_a_custom_duty_cycle_runs_and_a_step_longer_than_its_window_is_refused() -> None:
    scenario = scenario_from_dict(
        _data(duty=_duty(scan_on=10, scan_period=60, advertise_on=5, advertise_period=10))
    )
    assert scenario.duty_cycle == "custom" and scenario.cycle.scan_period == 60.0
    assert World(scenario, 0.5, 0).duty == scenario.cycle
    with pytest.raises(
        ScenarioError, match="step 6 s is longer than the custom duty cycle's advertise window"
    ):
        scenario_from_dict(_data(step=6.0, duty=_duty(scan_on=30, advertise_on=5, advertise_period=10)))
    with pytest.raises(ScenarioError, match="duty must be one of"):
        scenario_from_dict(_data(duty="sometimes"))


@pytest.mark.parametrize("shards", [0, -2, 1.5, True, "2", 11])
def test_bad_shards_are_refused_naming_the_key(shards: object) -> None:
    with pytest.raises(ScenarioError, match="shards"):
        scenario_from_dict(_data(shards=shards))


def test_an_unknown_log_is_refused() -> None:
    with pytest.raises(ScenarioError, match="log must be one of memory, sqlite"):
        scenario_from_dict(_data(log="disk"))


def test_scenarios_built_in_python_are_checked_too() -> None:
    crowd = CrowdParams(agents=10, width=3, height=3)
    with pytest.raises(ScenarioError, match="shards"):
        Scenario(name="x", crowd=crowd, shards=0)
    with pytest.raises(ScenarioError, match="duty must be one of"):
        Scenario(name="x", crowd=crowd, duty={"scan_on": 4})  # type: ignore[arg-type]
