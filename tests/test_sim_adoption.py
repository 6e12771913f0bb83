"""Issue 17: adoption with structure, OS background limits, the derived hearing radius, intervals, and
bad scenario input named by its key."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from proximity.sim import CrowdParams, Scenario, World, run_simulation
from proximity.sim.channel import ChannelParams, hearing_radius, mean_hearing_probability
from proximity.sim.intervals import bootstrap_mean, clopper_pearson, describe_fraction
from proximity.sim.mobility import GROUP
from proximity.sim.scenario import ScenarioError, load_scenario
from proximity.sim.streams import Streams
from proximity.sim.summary import summarise

DUTY = "[crowd]\nagents = 10\nwidth = 3\nheight = 3\n[duty]\n"


def _crowd(**changes: object) -> CrowdParams:
    base = CrowdParams(agents=3000, width=60.0, height=50.0, stationary=0.4, waypoint=0.3, group=0.3)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _mixed() -> Scenario:
    """A small room of still agents, walkers and groups, a 5-minute rule: contacts of both kinds."""
    crowd = CrowdParams(
        agents=40, width=10.0, height=8.0, stationary=0.5, waypoint=0.2, group=0.3, pause=(0, 300)
    )
    return Scenario(name="mix", crowd=crowd, duration=1800, chunk=600, contact_minutes=5.0,
                    estimators=("mean-attenuation",))  # fmt: skip


def test_adoption_is_the_share_of_all_agents_and_never_exceeds_ownership() -> None:
    scenario = Scenario(name="owners", crowd=_crowd(), ownership=0.7, adoption=(0.35,))
    world = World(scenario, 0.35, 0)
    owners = Streams(0)("ownership").random(world.n) < 0.7  # the run's own ownership draws
    assert abs(world.app.mean() - 0.35) < 0.03
    assert not (world.app & ~owners).any()
    higher = World(scenario, 0.6, 0)
    assert (world.app <= higher.app).all()  # nested sets, as before
    with pytest.raises(ValueError, match="ownership"):
        World(scenario, 0.8, 0)
    with pytest.raises(ScenarioError, match="exceeds ownership"):
        Scenario(name="x", crowd=_crowd(), ownership=0.5, adoption=(0.6,))


def test_group_adoption_is_all_or_none_within_a_group() -> None:
    scenario = Scenario(name="groups", crowd=_crowd(), adoption_by="group")
    world = World(scenario, 0.5, 1)
    leader = world.movers.leader
    grouped = np.flatnonzero(leader != np.arange(world.n))
    assert grouped.size > 100
    assert (world.app[grouped] == world.app[leader[grouped]]).all()
    independent = World(dataclasses.replace(scenario, adoption_by="agent"), 0.5, 1)
    assert (independent.app[grouped] != independent.app[leader[grouped]]).any()


def test_households_arrive_together_are_companions_and_adopt_together() -> None:
    crowd = dataclasses.replace(_crowd(), household_size=4, arrival_spread=600.0, dwell=900.0)
    scenario = Scenario(name="homes", crowd=crowd, adoption_by="household")
    world = World(scenario, 0.5, 2)
    home = world.movers.household_head  # the household's id: its first agent (a group: its leader's)
    ids, first = np.unique(home, return_index=True)
    assert 0 < ids.size < world.n / 3
    for values in (world.movers.enter, world.movers.leave, world.app):
        assert (values == values[first][np.searchsorted(ids, home)]).all()  # one value per household
    members = np.flatnonzero(home != np.arange(world.n))
    assert 0 < world.app.sum() < world.n
    assert world.companions(4, 7) and not world.companions(3, 4)
    independent = World(dataclasses.replace(scenario, adoption_by="agent"), 0.5, 2)
    assert (independent.app[members] != independent.app[home[members]]).any()
    alone = World(dataclasses.replace(scenario, crowd=_crowd(), adoption_by="agent"), 0.5, 2)
    assert not alone.companions(4, 7)  # two seated strangers, without households


@pytest.mark.parametrize(
    ("scheme", "foreground", "heard"),
    [("bluezone", 0.0, False), ("bluezone", 1.0, True), ("gaen", 0.0, True)],
)
def test_bluezone_on_ios_advertises_only_in_the_foreground(
    scheme: str, foreground: float, heard: bool
) -> None:
    crowd = CrowdParams(agents=40, width=10.0, height=8.0, stationary=1.0, waypoint=0.0)
    scenario = Scenario(name="ios", crowd=crowd, scheme=scheme, duration=600, chunk=600, duty="continuous",
                        os_mix=(("ios", 1.0),), foreground_share=foreground)  # fmt: skip
    sightings = sum(len(c) for c in World(scenario, 1.0, 0).chunks())
    assert (sightings > 0) == heard


def test_the_hearing_radius_is_derived_from_the_floor_probability() -> None:
    offsets = np.random.default_rng(0).normal(-10.0, 6.0, 5000)
    radii = [hearing_radius(ChannelParams(p_heard_floor=p), offsets) for p in (1e-3, 1e-4, 1e-5)]
    assert radii[0] < radii[1] < radii[2]
    channel = ChannelParams()
    assert mean_hearing_probability(channel, radii[1], offsets) == pytest.approx(1e-4, rel=1e-3)
    assert mean_hearing_probability(channel, radii[1] * 1.1, offsets) < 1e-4
    louder = ChannelParams(sensitivity_dbm=-105.0)  # a property of the receiver moves the radius
    assert hearing_radius(louder, offsets) > radii[1]


def test_exact_intervals_and_tiny_counts() -> None:
    low, high = clopper_pearson(0, 9)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 9))
    low, high = clopper_pearson(9, 9)
    assert high == 1.0 and low == pytest.approx(0.025 ** (1 / 9))
    assert describe_fraction(0, 9) == "0 of 9 (<= 0.336)"
    assert describe_fraction(0, 0).startswith("-")
    mean, low, high = bootstrap_mean([0.1, 0.2, 0.3, 0.4])
    assert mean == pytest.approx(0.25) and 0.1 <= low < mean < high <= 0.4
    assert math.isnan(bootstrap_mean([0.5])[1])


def test_rows_count_each_direction_and_split_companions_and_summarise_with_intervals() -> None:
    scenario = _mixed()
    rows = [run_simulation(scenario, 0.9, seed).rows[0] for seed in (0, 1, 2)]
    for row in rows:
        assert row.notifiable == 2 * row.app_contacts and row.notified <= row.notifiable
        assert row.false_notifications >= 0 and row.companion_contacts > 0
        assert row.detected_companions + row.detected_strangers == row.detected
    (summary,) = summarise(rows)
    assert summary.seeds == 3 and summary.interval == "seeds"
    point, low, high = summary.values["fraction_traced"]
    assert low <= point <= high
    (single,) = summarise(rows[:1])
    assert single.interval == "contacts"


def test_household_members_are_companions_in_the_rows_and_the_contact_table() -> None:
    """The combined result (rows and table, read from the shards' world facts) splits companions as
    :meth:`World.companions` does: one walking group or one household."""
    base = _mixed()
    scenario = dataclasses.replace(base, crowd=dataclasses.replace(base.crowd, household_size=4))
    result = run_simulation(scenario, 0.9, 0)
    world = World(scenario, 0.9, 0)
    table, row = result.contacts, result.rows[0]
    true = table["true_contact"]
    pairs = list(zip(table["agent_a"][true].tolist(), table["agent_b"][true].tolist(), strict=True))
    expected = [world.companions(a, b) for a, b in pairs]
    kind, leader = world.movers.kind, world.movers.leader
    grouped = [kind[a] == kind[b] == GROUP and leader[a] == leader[b] for a, b in pairs]
    assert sum(expected) > sum(grouped)  # household members who do not walk together are here
    assert table["companions"][true].tolist() == expected
    assert row.companion_contacts == sum(expected)
    assert row.stranger_contacts == len(pairs) - sum(expected)


def test_the_contact_table_has_a_row_per_close_pair_and_per_flagged_one() -> None:
    scenario = _mixed()
    result = run_simulation(scenario, 0.9, 0)
    table, row = result.contacts, result.rows[0]
    true = table["true_contact"]
    assert int(true.sum()) == row.true_contacts
    assert (table["minutes_close"][true] >= 5.0 - 1e-9).all()
    close = table["day"] >= 0
    assert (table["min_distance_m"][close] <= table["mean_distance_m"][close] + 1e-9).all()
    assert (table["mean_distance_m"][close] <= scenario.contact_distance + 1e-9).all()
    flagged = (table["mean-attenuation_close_a"] == 1) | (table["mean-attenuation_close_b"] == 1)
    assert int((flagged & ~true).sum()) == row.false_positives
    assert int(table["companions"][true].sum()) == row.companion_contacts
    notified = np.isfinite(table["mean-attenuation_notified_a_at"]) | np.isfinite(
        table["mean-attenuation_notified_b_at"]
    )
    assert notified.any()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[crowd]\nagents = -5\nwidth = 3\nheight = 3\n", "agents"),
        ("[crowd]\nagents = 10\nwidth = -3\nheight = 3\n", "width"),
        ("os_mix = {android = 0.6, ios = 0.3}\n[crowd]\nagents = 10\nwidth = 3\nheight = 3\n", "os_mix"),
        ("os_mix = {android = 0.5, symbian = 0.5}\n[crowd]\nagents = 10\nwidth = 3\nheight = 3\n", "os_mix"),
        ("ownership = 0.4\nadoption = [0.5]\n[crowd]\nagents = 10\nwidth = 3\nheight = 3\n", "ownership"),
        ('adoption_by = "household"\n[crowd]\nagents = 10\nwidth = 3\nheight = 3\n', "adoption_by"),
        ("[crowd]\nagents = 10\nwidth = 3\nheight = 3\nhousehold_size = 1\n", "household_size"),
        ("foreground_share = 2\n[crowd]\nagents = 10\nwidth = 3\nheight = 3\n", "foreground_share"),
        ('duty = "gaen"\nstep = 10\n[crowd]\nagents = 10\nwidth = 3\nheight = 3\n', "step"),
        ("[crowd]\nagents = 10\nwidth = 3\nheight = 3\n[channel]\np_heard_floor = 0\n", "p_heard_floor"),
        ("[crowd]\nagents = 10\nwidth = 3\nheight = 3\n[channel]\nmax_range = 30\n", "max_range"),
        (
            DUTY + "scan_on = 30\nscan_period = 10\nadvertise_on = 1\nadvertise_period = 1\n",
            "scan_on",
        ),
        (
            DUTY + "scan_on = 4\nscan_period = 60\nadvertise_on = 2\nadvertise_period = 1\n",
            "advertise_on",
        ),
        (
            DUTY + "scan_on = 4\nscan_period = -60\nadvertise_on = 1\nadvertise_period = 1\n",
            "scan_period",
        ),
        (
            DUTY + "scan_on = 4\nscan_period = 60\nadvertise_on = 1\n",
            "advertise_period",
        ),
        (
            DUTY + "scan_on = 4\nscan_period = 60\nadvertise_on = 1\nadvertise_period = 1\nburst = 2\n",
            "burst",
        ),
        (
            "step = 5\n" + DUTY + "scan_on = 4\nscan_period = 60\nadvertise_on = 1\nadvertise_period = 1\n",
            "step",
        ),
    ],
)
def test_bad_scenarios_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=key):
        load_scenario(path)


def test_results_do_not_depend_on_how_the_neighbour_search_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """Packet draws are hashed per (scanner, advertiser, step): scanners searched in blocks of a few
    candidates, or a much larger hearing radius, give byte-identical rows (the radius column aside)."""
    import proximity.sim.world as world_module

    scenario = _mixed()
    whole = run_simulation(scenario, 0.9, 3).rows
    monkeypatch.setattr(world_module, "CANDIDATES", 50)  # many small blocks
    blocks = run_simulation(scenario, 0.9, 3).rows
    assert blocks == whole
    monkeypatch.undo()
    wider = dataclasses.replace(scenario, channel=dataclasses.replace(scenario.channel, p_heard_floor=1e-7))
    far = run_simulation(wider, 0.9, 3).rows
    assert far[0].hearing_radius_m > whole[0].hearing_radius_m
    assert [dataclasses.replace(r, hearing_radius_m=0.0) for r in far] == [
        dataclasses.replace(r, hearing_radius_m=0.0) for r in whole
    ]


def test_a_duty_table_sets_a_custom_duty_cycle(tmp_path: Path) -> None:
    """Each phone scans 4 s of every minute: over 600 s it hears in at most 11 windows of 4 one-second
    steps (a window may straddle the start), never in most of the steps."""
    from proximity.sim.world import World

    path = tmp_path / "duty.toml"
    path.write_text(
        "duration = 600\n[crowd]\nagents = 30\nwidth = 5\nheight = 5\n"
        "[duty]\nscan_on = 4\nscan_period = 60\nadvertise_on = 1\nadvertise_period = 1\n"
    )
    scenario = load_scenario(path)
    assert (scenario.duty_cycle, scenario.cycle.scan_on, scenario.cycle.scan_period) == ("custom", 4.0, 60.0)
    chunks = list(World(scenario, 1.0, 0, truth=False).chunks())
    times = np.concatenate([c.times for c in chunks])
    scanner = np.concatenate([c.scanner for c in chunks])
    steps = [np.unique(np.floor(times[scanner == k])).size for k in range(30)]
    assert 0 < max(steps) <= 44
