"""Each pair's own hearing radius: the class searches keep exactly the pairs within their radius."""

from __future__ import annotations

import numpy as np
import pytest

from proximity.sim.channel import ChannelParams, hearing_radius
from proximity.sim.reach import PairReach


def _brute(
    reach: PairReach, scan: np.ndarray, adv: np.ndarray, pos: np.ndarray, n: int
) -> set[tuple[int, int]]:
    d = np.hypot(*(pos[scan][:, None, :] - pos[adv][None, :, :]).transpose(2, 0, 1))
    own = reach.radius(reach.rx[scan % n][:, None] + reach.tx[adv % n][None, :])
    i, j = np.nonzero(d <= own)
    return set(zip(i.tolist(), j.tolist(), strict=True))


@pytest.mark.parametrize(
    ("size", "loud"), [(3000.0, 30.0), (3000.0, 0.0), (150.0, 0.0), (40.0, 0.0), (5.0, 0.0)]
)
def test_pairs_are_exactly_those_within_their_own_radius(size: float, loud: float) -> None:
    rng = np.random.default_rng(7)
    n = 600
    tx = rng.normal(-12.0, 5.0, n)
    rx = rng.normal(-12.0, 5.0, n)
    tx[:6] += loud  # a few loud transmitters (the calibration table's extreme rows)
    reach = PairReach(ChannelParams(), tx, rx)
    pos = rng.random((n, 2)) * size
    scan = rng.choice(n, 80, replace=False).astype(np.int64)
    adv = np.arange(n, dtype=np.int64)
    i, j, d = reach.pairs(scan, adv, pos, n, float(np.hypot(size, size)) * (1 + 1e-9) + 1e-6)
    got = set(zip(i.tolist(), j.tolist(), strict=True))
    assert got == _brute(reach, scan, adv, pos, n)
    assert len(got) == i.size and np.allclose(d, np.hypot(*(pos[scan[i]] - pos[adv[j]]).T))
    if size > 1000:
        assert 0 < len(got) < scan.size * n  # some pairs are out of range, some in


def test_a_pairs_radius_is_never_below_its_own_and_louder_pairs_reach_farther() -> None:
    channel = ChannelParams()
    reach = PairReach(channel, np.array([-20.0, 0.0, 15.0]), np.array([-20.0, 0.0, 15.0]))
    offsets = np.array([-40.0, -17.3, 0.0, 12.6, 30.0])
    radii = reach.radius(offsets)
    exact = np.array([hearing_radius(channel, np.array([o])) for o in offsets])
    assert (radii >= exact * (1 - 1e-9)).all()
    assert (np.diff(radii) > 0).all()
