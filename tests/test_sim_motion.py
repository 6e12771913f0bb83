"""Walkers moved a batch of steps at a time (sim/mobility.py), the batch's ground truth
(sim/neighbours.py) and duty cycles: the same positions and draws whatever the batch, the per-step
walk they replace, close pairs searched per step of a batch, duty cycles without a remainder per entry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proximity.schemes.duty import DutyCycle, Phases
from proximity.sim import CrowdParams, Scenario, World, mobility
from proximity.sim.mobility import Movers
from proximity.sim.native import walk
from proximity.sim.neighbours import close_pairs

START = 1_596_610_800.0

CROWDS = {
    "market": CrowdParams(
        agents=120, width=30, height=20, stationary=0.15, waypoint=0.45, group=0.4, speed=(0.4, 1.2),
        pause=(30, 600),
    ),
    "restless": CrowdParams(
        agents=60, width=15, height=10, stationary=0.3, waypoint=0.4, group=0.3, pause=(0, 60)
    ),
    # pauses of 0-2 s: several legs within one batch
    "tiny": CrowdParams(
        agents=40, width=5, height=5, waypoint=0.7, group=0.3, speed=(0.0, 3.0), pause=(0, 2)
    ),
}  # fmt: skip


def _movers(crowd: CrowdParams, duration: float) -> Movers:
    movers = Movers(crowd, np.random.default_rng(11), START, duration)
    movers.speed[::7] = 0.0  # walkers who never arrive
    return movers


def _walk(crowd: CrowdParams, batch: int, steps: int = 900, dt: float = 1.0) -> tuple[np.ndarray, Movers]:
    movers = _movers(crowd, steps * dt)
    times = START + np.arange(steps, dtype=np.float64) * dt
    return np.concatenate([movers.advance(times[k : k + batch], dt) for k in range(0, steps, batch)]), movers


def _step_by_step(movers: Movers, t: float, dt: float) -> None:
    """The walk the batches replace: every step, each moving walker goes speed x dt toward its target
    from where it stands (a sequential recurrence), landing on it when that is as far or farther."""
    idx = np.flatnonzero(movers.walks & (t >= movers.pause_until))
    vec = movers.target[idx] - movers.pos[idx]
    dist = np.sqrt(vec[:, 0] ** 2 + vec[:, 1] ** 2)
    reach = movers.speed[idx] * dt
    arrived = dist <= reach
    go = ~arrived
    movers.pos[idx[go]] += vec[go] * (reach[go] / dist[go])[:, None]
    done = idx[arrived]
    movers.pos[done] = movers.target[done]
    movers.target[done] = movers.rng.random((done.size, 2)) * movers.size
    movers.pause_until[done] = t + movers.rng.uniform(*movers.params.pause, done.size)
    f = movers.follows
    movers.pos[f] = np.clip(movers.pos[movers.leader[f]] + movers.offset[f], 0.0, movers.size)


@pytest.mark.parametrize("name", sorted(CROWDS))
def test_a_batch_of_steps_moves_everyone_exactly_as_one_step_at_a_time(name: str) -> None:
    crowd = CROWDS[name]
    one, first = _walk(crowd, 1)
    for batch in (7, 32, 900):
        many, movers = _walk(crowd, batch)
        assert np.array_equal(many, one)  # bit for bit
        assert np.array_equal(movers.target, first.target)  # the same draws, in the same order
        assert np.array_equal(movers.pause_until, first.pause_until)
        assert np.array_equal(movers.pos, one[-1])
    assert not np.array_equal(one[0], one[-1])


@pytest.mark.parametrize("name", sorted(CROWDS))
def test_the_closed_form_walk_is_the_per_step_walk_up_to_rounding(name: str) -> None:
    crowd = CROWDS[name]
    batched, movers = _walk(crowd, 32, dt=0.5)
    reference = _movers(crowd, 450.0)
    for k in range(batched.shape[0]):
        _step_by_step(reference, START + k * 0.5, 0.5)
        # positions agree to rounding (a recurrence rounds at every step, the closed form once)
        assert np.abs(reference.pos - batched[k]).max() < 1e-9
    # walkers arrive at the same steps: the draws (targets, pauses) are the same numbers
    assert np.array_equal(reference.target, movers.target)
    assert np.array_equal(reference.pause_until, movers.pause_until)
    assert (batched >= 0).all() and (batched <= movers.size).all()


def test_positions_set_before_the_first_step_are_where_walks_start() -> None:
    crowd = CROWDS["restless"]
    movers = Movers(crowd, np.random.default_rng(2), START, 100.0)
    movers.pos[:] = 1.0
    at = movers.advance(np.array([START - 1e6]), 1.0)  # before anyone's pause ends: nobody moves
    assert np.array_equal(at[0][movers.walks], np.ones((int(movers.walks.sum()), 2)))
    assert movers.advance(np.zeros(0), 1.0).shape == (0, crowd.agents, 2)
    with pytest.raises(ValueError, match="one length"):
        movers.advance(np.array([START]), 0.5)


layered = st.integers(0, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.tuples(st.floats(0, 20), st.floats(0, 20)), min_size=n, max_size=n),
        st.lists(st.integers(0, 4), min_size=n, max_size=n),
    )
)


@settings(max_examples=60, deadline=None)
@given(layered, st.floats(0.3, 6))
def test_close_pairs_by_layer_are_the_pairs_within_each_layer(
    case: tuple[list[tuple[float, float]], list[int]], radius: float
) -> None:
    points = np.array(case[0], np.float64).reshape(-1, 2)
    layer = np.array(case[1], np.int64)
    i, j, d = close_pairs(points, radius, layer)
    dist = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    near = np.triu((dist <= radius) & (layer[:, None] == layer[None, :]), 1)
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == sorted(zip(*np.nonzero(near), strict=True))
    assert np.array_equal(d, dist[i, j])  # distances of the points themselves


def _truth_and_packets(
    scenario: Scenario, adoption: float, seed: int
) -> tuple[list[list[float]], np.ndarray]:
    """Each chunk's close pairs (keys, seconds, smallest distance) and packets (times, scanners,
    advertisers), and all packets' distances."""
    out, distance = [], []
    for c in World(scenario, adoption, seed).chunks():
        out += [c.close_keys.tolist(), c.close_seconds.tolist(), c.close_distance_min.tolist()]
        out += [c.times.tolist(), c.scanner.tolist(), c.advertiser.tolist()]
        distance.append(c.distance)
    return out, np.concatenate(distance)


def test_a_world_gives_the_same_truth_and_packets_with_any_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import proximity.sim.world as world_module

    scenario = Scenario(name="restless", crowd=CROWDS["restless"], duration=600, chunk=300, duty="continuous")
    together, distance = _truth_and_packets(scenario, 0.6, 3)
    monkeypatch.setattr(world_module, "BATCH_STEPS", 5)
    again, distance_again = _truth_and_packets(scenario, 0.6, 3)
    assert again == together
    # the packet search lays a batch's steps side by side along x: distances from those shifted
    # coordinates round differently in the last bits
    assert np.allclose(distance_again, distance, rtol=0, atol=1e-9)
    assert len(together[0]) > 20 and len(together[3]) > 1000
    empty = dataclasses.replace(scenario, crowd=dataclasses.replace(CROWDS["restless"], agents=1))
    assert all(len(c.close_keys) == 0 for c in World(empty, 1.0, 0).chunks())


def test_close_pairs_merged_by_counting_or_by_sorting_give_the_same_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import proximity.sim.world as world_module

    scenario = Scenario(name="restless", crowd=CROWDS["restless"], duration=900, chunk=300)

    def truth() -> list[list[float]]:
        out = []
        for c in World(scenario, 0.5, 4).chunks():
            out += [c.close_keys.tolist(), c.close_seconds.tolist()]
            out += [c.close_distance_sum.tolist(), c.close_distance_min.tolist()]
        return out

    counted = truth()  # a venue's keys span less than DENSE_KEYS: counted into a dense array
    monkeypatch.setattr(world_module, "DENSE_KEYS", 0)  # sorted (np.unique), as in a city
    assert truth() == counted
    monkeypatch.setattr(world_module, "COMPACT_KEYS", 50)  # merged many times within each chunk
    assert truth() == counted
    assert len(counted[0]) > 50


@settings(max_examples=80, deadline=None)
@given(
    st.floats(-1e6, 4e9),
    st.floats(1e-3, 1e4),
    st.floats(0.01, 1.0),
    st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=40),
)
def test_duty_cycles_of_many_steps_are_the_remainder_rule_exactly(
    start: float, period: float, share: float, phases: list[float]
) -> None:
    phase = np.array([*phases, 0.0, 0.5, share], np.float64)  # phases whose windows switch on a step
    for on in (share * period, period):  # and always on: one row per time too
        cycle = DutyCycle("x", on, period, on, period)
        for dt in (1.0, period / 7, share * period):
            t = start + np.arange(50, dtype=np.float64)[:, None] * dt
            expected = (((t + phase * period) % period) < on) | (on >= period)
            assert np.array_equal(cycle.scanning(t, phase), expected)
            assert np.array_equal(cycle.advertising(t, phase), expected)
            # a step's phones on, found from the sorted phases: the same ones, in order
            clock = Phases(phase, on, period)
            assert all(
                np.array_equal(clock.at(float(t[k, 0])), np.flatnonzero(expected[k])) for k in range(50)
            )


@pytest.mark.parametrize(
    ("window", "dense", "shard"), [(1, 1 << 22, None), (7, 1 << 22, None), (60, 1 << 22, None), (60, 0, None),
                                   (60, 0, 0), (7, 1 << 22, 1)]
)  # fmt: skip
def test_a_step_at_a_time_finds_the_truth_of_one_search_over_everyone(
    monkeypatch: pytest.MonkeyPatch, window: int, dense: int, shard: int | None
) -> None:
    """A city's path: one step per search, the still found once, those standing a window found once per
    window (their keys placed once per merge, where keys are sorted: ``dense`` 0); the batch path
    searches everyone present at each step. A shard (of 2) keeps the pairs whose lower agent it owns,
    whichever of the two moves."""
    import proximity.sim.world as world_module

    crowd = dataclasses.replace(CROWDS["restless"], pause=(5, 400), arrival_spread=300, dwell=600)
    scenario = Scenario(name="restless", crowd=crowd, duration=900, chunk=300)
    owned = None if shard is None else np.arange(crowd.agents) % 2 == shard

    def truth() -> list[list[float]]:
        out = []
        for c in World(scenario, 0.5, 4, owned=owned).chunks():
            out += [c.close_keys.tolist(), c.close_seconds.tolist()]
            out += [c.close_distance_sum.tolist(), c.close_distance_min.tolist()]
        return out

    together = truth()  # 32 steps per search, everyone at once
    monkeypatch.setattr(world_module, "BATCH_POINTS", 1)  # one step per search
    monkeypatch.setattr(world_module, "WINDOW", window)
    monkeypatch.setattr(world_module, "DENSE_KEYS", dense)
    assert truth() == together  # the same distances, summed in step order
    assert len(together[0]) > 50


@pytest.mark.parametrize("path", ["c", "numpy"])
@pytest.mark.parametrize("crowd", ["market", "tiny"])
def test_a_step_in_place_moves_everyone_where_a_batch_of_one_does(
    monkeypatch: pytest.MonkeyPatch, crowd: str, path: str
) -> None:
    """Movers.step (a city's path: only the walkers on the move and their followers written, in C
    where sim/_walk.c is built, else numpy) gives exactly the positions, targets and pauses of advance,
    a step at a time or in batches."""
    _use(monkeypatch, path)
    params, dt = CROWDS[crowd], 0.5
    stepped, batched = _movers(params, 600.0), _movers(params, 600.0)
    times = START + np.arange(1200, dtype=np.float64) * dt
    for k in range(0, 1200, 8):
        at = batched.advance(times[k : k + 8], dt)
        for row, t in zip(at, times[k : k + 8], strict=True):
            assert np.array_equal(stepped.step(float(t), dt), row)
    assert np.array_equal(stepped.target, batched.target)
    assert np.array_equal(stepped.pause_until, batched.pause_until)
    assert not stepped.step(float(times[-1] + dt), dt).flags.writeable


def _use(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """Steps in C (skipped where sim/_walk.c was not built) or in numpy."""
    if path == "numpy":
        monkeypatch.setattr(mobility, "_native", None)
    elif walk is None:  # pragma: no cover - no compiler at install time
        pytest.skip("sim/_walk.c was not built")


@pytest.mark.parametrize("crowd", sorted(CROWDS))
def test_a_step_in_c_is_the_numpy_step_bit_for_bit(monkeypatch: pytest.MonkeyPatch, crowd: str) -> None:
    """sim/_walk.c moves the walkers on the move and their followers (clipped at the walls of a small
    venue) to exactly numpy's positions, with the same legs, arrivals and draws: pauses of 0 s to minutes,
    walking groups, walkers who never arrive (speed 0) and a second step length refused alike."""
    _use(monkeypatch, "c")
    params = dataclasses.replace(CROWDS[crowd], household_size=4)  # a group follows its leader's home
    c, plain = _movers(params, 900.0), _movers(params, 900.0)
    clipped = arrived = 0
    for k in range(1800):
        t = START + k * 0.5
        with monkeypatch.context() as m:
            m.setattr(mobility, "_native", None)
            want = plain.step(t, 0.5).copy()
        before = c.pause_until.copy()
        assert np.array_equal(c.step(t, 0.5), want)
        clipped += int(((want == 0) | (want == c.size)).any(axis=1)[c.follows].sum())
        arrived += int((c.pause_until != before).sum())
    for name in ("target", "pause_until", "pos"):
        assert np.array_equal(getattr(c, name), getattr(plain, name))
    assert c._legs is not None and plain._legs is not None
    for name in ("start", "target", "length", "need", "moved"):
        assert np.array_equal(getattr(c._legs, name), getattr(plain._legs, name))
    assert c.rng.random() == plain.rng.random() and c._used == plain._used  # the same draws taken
    assert arrived > 20 and (crowd != "tiny" or clipped > 0)
    with pytest.raises(ValueError, match=r"steps of 1\.0 s after steps of 0\.5 s"):
        c.step(START + 900.0, 1.0)


def test_arrivals_in_c_draw_and_start_the_legs_numpy_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of walkers arriving at once, at a time and with pauses that are not whole numbers (every
    rounding of the pause's sum shows), some of speed 0: the same targets, pauses and legs bit for bit."""
    _use(monkeypatch, "c")
    params = CrowdParams(agents=6000, width=70.3, height=41.9, waypoint=0.8, group=0.2, pause=(0.37, 91.3))
    c, plain = _movers(params, 100.0), _movers(params, 100.0)
    c.step(START, 0.5)
    plain.step(START, 0.5)
    assert c._legs is not None and plain._legs is not None
    legs = np.arange(c._legs.walkers.size)
    c._arrive(START + 0.5 * 7.3, legs)
    with monkeypatch.context() as m:
        m.setattr(mobility, "_native", None)
        plain._arrive(START + 0.5 * 7.3, legs)
    for name in ("target", "pause_until"):
        assert np.array_equal(getattr(c, name), getattr(plain, name))
    for name in ("start", "target", "length", "need", "moved"):
        assert np.array_equal(getattr(c._legs, name), getattr(plain._legs, name))
    assert (c._legs.need == 2**62).any() and (c._legs.need == 1).any()


def test_the_c_step_refuses_arrays_of_the_wrong_size() -> None:
    if walk is None:  # pragma: no cover - no compiler at install time
        pytest.skip("sim/_walk.c was not built")
    movers = _movers(CROWDS["market"], 100.0)
    movers.step(START, 1.0)
    legs = movers._legs
    assert legs is not None
    args = [START + 1.0, legs.walkers, movers.pause_until, movers.pos, legs.start, legs.target, legs.length,
            legs.need, legs.reach, legs.moved, movers._followers, movers._followed, movers.leader,
            movers.offset, 30.0, 20.0]  # fmt: skip
    short = list(args)
    short[6] = legs.length[:-1]
    with pytest.raises(ValueError, match="length: expected"):
        walk.step(*short)
    outside = list(args)
    outside[1] = legs.walkers + movers.params.agents
    with pytest.raises(ValueError, match="walkers"):
        walk.step(*outside)
    assert np.array_equal(legs.moved, np.zeros_like(legs.moved))  # refused before anything moved
    ends = [START + 1.0, np.array([0, 1]), np.full(6, 0.5), 30.0, 570.0, 30.0, 20.0, legs.walkers,
            movers.target, movers.pause_until, legs.start, legs.target, legs.length, legs.need, legs.reach,
            legs.moved]  # fmt: skip
    few = list(ends)
    few[2] = np.full(5, 0.5)  # 3 uniforms an arrival
    with pytest.raises(ValueError, match="u: expected 6 items"):
        walk.arrive(*few)
    beyond = list(ends)
    beyond[1] = np.array([0, legs.walkers.size])
    with pytest.raises(ValueError, match="legs"):
        walk.arrive(*beyond)
    assert np.array_equal(legs.start, movers.pos[legs.walkers])  # nothing started


@pytest.mark.parametrize(("scheme", "os"), [("gaen", "android"), ("bluezone", "ios")])
def test_a_step_at_a_time_hears_the_packets_of_a_batch(
    monkeypatch: pytest.MonkeyPatch, scheme: str, os: str
) -> None:
    """One step per batch (a city's path: phones on found from their sorted phases, presence kept while
    nobody comes or goes, walkers moved in place) hears the packets the batch path hears, with duty
    cycles, arrivals and departures, and apps advertising only in the foreground (iOS Bluezone)."""
    import proximity.sim.world as world_module

    crowd = dataclasses.replace(CROWDS["market"], arrival_spread=300, dwell=400)
    scenario = Scenario(name="duty", crowd=crowd, scheme=scheme, duration=900, chunk=300,
                        os_mix=((os, 1.0),), foreground_share=0.5)  # fmt: skip

    together, distance = _truth_and_packets(scenario, 0.7, 5)
    monkeypatch.setattr(world_module, "BATCH_POINTS", 1)
    again, distance_again = _truth_and_packets(scenario, 0.7, 5)
    assert again == together
    assert np.allclose(distance_again, distance, rtol=0, atol=1e-9)  # batches lay steps side by side
    assert len(together[3]) > 1000
