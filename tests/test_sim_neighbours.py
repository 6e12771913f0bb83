"""The C neighbour searches (sim/_pairs.c) against their numpy references (sim/neighbours.py): the same
pairs, distances and order bit for bit (the order sets a batch's per-pair sums), and a world's truth the
same with or without them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import proximity.sim.neighbours as neighbours
from proximity.sim import CrowdParams, Scenario, World
from proximity.sim import world as world_module
from proximity.sim.batching import BATCH_POINTS
from proximity.sim.native import pairs as native_pairs
from proximity.sim.neighbours import StaticGrid, close_pairs, close_pairs_numpy, cross_pairs

pytestmark = pytest.mark.skipif(native_pairs is None, reason="the C searches were not built (no compiler)")

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def _same(got: Arrays, want: Arrays) -> None:
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()  # bit for bit, in order


def _points(seed: int, n: int, width: float, snap: bool) -> np.ndarray:
    """n points over a width x width/2 box; ``snap``: on a half-metre lattice (on cell edges, equal
    points, distances exactly the radius)."""
    points = np.random.default_rng(seed).random((n, 2)) * [width, width / 2]
    return np.round(points * 2) / 2 if snap else points


cases = st.tuples(
    st.integers(0, 2**32 - 1),
    st.integers(0, 1500),
    st.sampled_from([4.0, 40.0, 400.0, 3000.0]),
    st.booleans(),
    st.sampled_from([0.5, 1.0, 2.0, 3.5]),
)


@settings(max_examples=80, deadline=None)
@given(cases, st.integers(0, 4))
def test_close_pairs_in_c_are_the_numpy_pairs_bit_for_bit(
    case: tuple[int, int, float, bool, float], layers: int
) -> None:
    seed, n, width, snap, radius = case
    points = _points(seed, n, width, snap)
    layer = np.random.default_rng(seed + 1).integers(0, layers, n) if layers else None
    found = close_pairs(points, radius, layer)
    _same(found, close_pairs_numpy(points, radius, layer))
    assert found[0].flags.writeable


@settings(max_examples=80, deadline=None)
@given(cases, st.integers(0, 1500))
def test_a_grids_near_in_c_is_the_numpy_near_bit_for_bit(
    case: tuple[int, int, float, bool, float], m: int
) -> None:
    seed, n, width, snap, radius = case
    points, probes = _points(seed, n + 1, width, snap), _points(seed + 1, m, width, snap)
    grid = StaticGrid(points, radius, np.zeros(2), np.array([width, width / 2]))
    _same(grid.query(probes), grid._binned.near_numpy(probes) if m else neighbours._empty())
    i, j, d = cross_pairs(probes, points, radius)
    dist = np.sqrt(((probes[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == sorted(
        zip(*np.nonzero(dist <= radius), strict=True)
    )
    assert np.array_equal(d, dist[i, j])


def test_a_probe_outside_the_grid_is_an_index_error() -> None:
    grid = StaticGrid(_points(3, 50, 10.0, False), 2.0, np.zeros(2), np.array([10.0, 5.0]))
    with pytest.raises(IndexError):
        grid.query(np.array([[1e6, 1.0]]))


def test_a_city_step_finds_the_same_truth_with_the_numpy_searches(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step at a time (a city's path: the movers searched among themselves and against the standing)
    and a batch of steps (layers): the same close pairs, seconds and distance sums with either search."""
    crowd = CrowdParams(agents=400, width=60, height=40, stationary=0.3, waypoint=0.4, group=0.3,
                        pause=(5, 200), arrival_spread=200, dwell=500)  # fmt: skip
    scenario = Scenario(name="steps", crowd=crowd, duration=600, chunk=300)

    def truth() -> list[list[float]]:
        out = []
        for c in World(scenario, 0.5, 7).chunks():
            out += [c.close_keys.tolist(), c.close_seconds.tolist()]
            out += [c.close_distance_sum.tolist(), c.close_distance_min.tolist(), c.times.tolist()]
        return out

    for points in (BATCH_POINTS, 1):  # batches of steps, then one step per search
        monkeypatch.setattr(world_module, "BATCH_POINTS", points)
        native = truth()
        with monkeypatch.context() as m:
            m.setattr(neighbours, "_native", None)
            assert truth() == native
        assert len(native[0]) > 100


@settings(max_examples=80, deadline=None)
@given(cases, st.integers(0, 600), st.integers(1, 3))
def test_a_grids_movers_in_c_are_the_numpy_movers_bit_for_bit(
    case: tuple[int, int, float, bool, float], m: int, shards: int
) -> None:
    """A city step's movers (agents in any order) against the standing (some absent) and among
    themselves, a shard keeping the pairs whose lower agent it owns: the C call gives the numpy pairs,
    and they are every pair within the radius, each once."""
    seed, n, width, snap, radius = case
    rng = np.random.default_rng(seed + 2)
    agents = rng.permutation(n + m)
    stand, movers = np.sort(agents[:n]), agents[n:]  # the standing ascending, the movers in any order
    points, probes = _points(seed, n, width, snap), _points(seed + 1, m, width, snap)
    present = rng.random(n + m) < 0.8
    owned = np.arange(n + m) % shards == 0
    grid = StaticGrid(points, radius, np.zeros(2), np.array([width, width / 2]), ids=stand)
    found = grid.movers(probes, movers, present, owned)
    _same(found, grid.movers_numpy(probes, movers, present, owned))
    where = np.zeros((n + m, 2))
    where[stand], where[movers] = points, probes
    dist = np.sqrt(((where[:, None, :] - where[None, :, :]) ** 2).sum(-1))
    moving = np.isin(np.arange(n + m), movers)
    near = np.triu(dist <= radius, 1) & (moving[:, None] | moving[None, :])
    near &= (present | moving)[:, None] & (present | moving)[None, :] & owned[:, None]
    want = sorted(zip(*np.nonzero(near), strict=True))
    assert sorted(zip(found[0].tolist(), found[1].tolist(), strict=True)) == want
    assert np.array_equal(found[2], dist[found[0], found[1]])
