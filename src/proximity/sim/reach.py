"""Each (scanner, advertiser) pair's own hearing radius, and the neighbour search that uses it.

The channel derives where P(heard) falls below ``p_heard_floor`` (:func:`hearing_radius`); averaged
over the run's pairs that radius is set by the loudest devices (a city's 0.01 % of pairs with
+37 dB or more of device offsets push it to ~580 m), so every quiet pair was searched that far too.
Here each pair gets the radius of its own fixed offsets (transmitter's device and carriage plus the
receiver's): the same criterion, P(heard) < floor for *this* pair, so a quiet pair is dropped
sooner and a loud pair heard farther than before. The radius is read from a table of
:func:`~proximity.sim.channel.hearing_radius` of one pair over offsets in 1 dB steps
(:func:`~proximity.sim.channel.pair_hearing_radii`), rounded up (never smaller than the pair's own).

The search: scanners and advertisers fall in a few classes by their offsets (quantiles), each pair
of classes is searched with the radius of its loudest pair, then each candidate is kept if it lies
within its own pair's radius. Which pairs are kept does not depend on the classes (only the work
does), and every packet's draws are hashed per (scanner, advertiser, step) as before.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from proximity.sim.channel import ChannelParams, pair_hearing_radii
from proximity.sim.neighbours import Pairs, cross_pairs

__all__ = ["PairReach"]

_Classes = tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]
OFFSET_STEP_DB = 1.0  # the table is one bisection per step: 1 dB keeps it well under a second
CLASS_QUANTILES = (0.5, 0.9, 0.99)


class PairReach:
    """Pair radii from per-agent fixed offsets (dB): ``tx`` as a transmitter, ``rx`` as a receiver.
    ``quietest``: the lowest summed offset the table must also cover (for :meth:`at` with quieter ones)."""

    def __init__(
        self,
        channel: ChannelParams,
        tx: NDArray[np.float64],
        rx: NDArray[np.float64],
        *,
        quietest: float | None = None,
    ) -> None:
        self.tx = np.asarray(tx, np.float64)
        self.rx = np.asarray(rx, np.float64)
        lowest = float(self.tx.min() + self.rx.min())
        low = math.floor(lowest if quietest is None else min(lowest, quietest)) - 1.0
        high = math.ceil(float(self.tx.max() + self.rx.max())) + 1.0 + OFFSET_STEP_DB
        self.grid = np.arange(low, high + OFFSET_STEP_DB, OFFSET_STEP_DB)
        self.table = pair_hearing_radii(channel, self.grid)
        self.max_radius = float(self.radius(np.array([self.tx.max() + self.rx.max()]))[0])
        self._classes: _Classes | None = None

    def at(self, tx: NDArray[np.float64], rx: NDArray[np.float64]) -> PairReach:
        """The same table with other offsets (the phones' carriage of the hour, no louder than these)."""
        out = object.__new__(PairReach)
        out.tx, out.rx = np.asarray(tx, np.float64), np.asarray(rx, np.float64)
        out.grid, out.table, out.max_radius, out._classes = self.grid, self.table, self.max_radius, None
        return out

    def radius(self, offsets: NDArray[np.float64]) -> NDArray[np.float64]:
        """Each pair's hearing radius from its summed offsets (rounded up to the table's next step)."""
        out: NDArray[np.float64] = np.interp(offsets + OFFSET_STEP_DB, self.grid, self.table)
        return out

    def pairs(
        self,
        scan: NDArray[np.int64],
        adv: NDArray[np.int64],
        positions: NDArray[np.float64],
        n: int,
        span: float,
    ) -> Pairs:
        """(i, j, distance) of scanners ``scan[i]`` and advertisers ``adv[j]`` (indices into
        ``positions``; agent = index % n) within their own pair's radius. ``span``: at least the
        venue's diagonal, past which a search radius finds nothing more within one step (steps laid
        side by side must be more than ``span`` apart)."""
        if scan.size == 0 or adv.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        agent_s, agent_a = scan % n, adv % n
        if self._classes is None:
            self._classes = (*_classes(self.tx), *_classes(self.rx))
        tx_class, tx_top, rx_class, rx_top = self._classes
        s_class, a_class = rx_class[agent_s], tx_class[agent_a]
        parts: list[Pairs] = []
        # past the venue's diagonal a radius finds nothing more within one step: search no farther
        top = [(cs, ca, min(span, float(self.radius(np.array([rx_top[cs] + tx_top[ca]]))[0])))
               for cs in np.unique(s_class).tolist() for ca in np.unique(a_class).tolist()]  # fmt: skip
        quietest = float(self.radius(np.array([self.rx[agent_s].min() + self.tx[agent_a].min()]))[0])
        if quietest >= span:  # even the quietest pair reaches across the venue: every pair is kept
            return cross_pairs(positions[scan], positions[adv], span)
        if min(r for _, _, r in top) >= span:  # every class reaches across: one search, then filter
            parts.append(cross_pairs(positions[scan], positions[adv], span))
        else:
            for cs, ca, reach in top:
                mine_s = np.flatnonzero(s_class == cs)
                mine_a = np.flatnonzero(a_class == ca)
                i, j, d = cross_pairs(positions[scan[mine_s]], positions[adv[mine_a]], reach)
                parts.append((mine_s[i], mine_a[j], d))
        i = np.concatenate([p[0] for p in parts])
        j = np.concatenate([p[1] for p in parts])
        d = np.concatenate([p[2] for p in parts])
        keep = d <= self.radius(self.rx[agent_s[i]] + self.tx[agent_a[j]])
        return i[keep], j[keep], d[keep]


def _classes(values: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Each value's class (by the CLASS_QUANTILES of all values) and each class's largest value."""
    edges = np.unique(np.quantile(values, CLASS_QUANTILES))
    cls = np.searchsorted(edges, values, side="left").astype(np.int64)
    top = np.full(edges.size + 1, -np.inf)
    np.maximum.at(top, cls, values)
    return cls, top
