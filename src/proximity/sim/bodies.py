"""Other people's bodies on the line of sight between two phones, counted in one vectorised pass.

A body blocks a link when it stands in the corridor (``corridor`` m wide) between the two phones. The
present agents are binned once per batch into square cells ``corridor`` m wide (at fixed multiples of
it: the world lays a batch's steps side by side at multiples of it, so the cells never depend on how
steps are batched or on the hearing radius); each link is walked in
steps of one cell from one cell past its transmitter to one cell short of its receiver, and the agents
of each distinct cell it crosses are counted (the two ends' own bodies are not: their loss is their
carriage). Only links up to ``max_range`` are walked: past the channel's breakpoint the far-field slope
(TGn, fitted on obstructed indoor links) already carries what stands in the way.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["BodyGrid"]

_ROW = np.int64(1 << 31)  # cell key = x cell * _ROW + y cell (y cells stay below 2**31)


class BodyGrid:
    """Agents' positions binned into ``corridor`` m cells; :meth:`count` the bodies on given links."""

    def __init__(self, points: NDArray[np.float64], corridor: float) -> None:
        self.corridor = corridor
        self.origin = np.zeros(2)  # cells at fixed multiples of the corridor: counts never depend on a shift
        keys = self._keys(points)
        self.keys, self.counts = np.unique(keys, return_counts=True)

    def _keys(self, points: NDArray[np.float64]) -> NDArray[np.int64]:
        cells = np.floor((points - self.origin) / self.corridor).astype(np.int64)
        out: NDArray[np.int64] = cells[:, 0] * _ROW + cells[:, 1]
        return out

    def _occupants(self, keys: NDArray[np.int64]) -> NDArray[np.int64]:
        at = np.searchsorted(self.keys, keys)
        at = np.minimum(at, max(self.keys.size - 1, 0))
        hit = self.keys[at] == keys if self.keys.size else np.zeros(keys.shape, np.bool_)
        out: NDArray[np.int64] = np.where(hit, self.counts[at] if self.keys.size else 0, 0)
        return out

    def count(
        self,
        start: NDArray[np.float64],
        end: NDArray[np.float64],
        distance: NDArray[np.float64],
        max_range: float,
    ) -> NDArray[np.float64]:
        """Bodies between each ``start`` and ``end`` (k, 2), apart by ``distance`` (k,); 0 beyond
        ``max_range`` or when the two stand within two cells of each other."""
        c = self.corridor
        out = np.zeros(distance.shape[0], np.float64)
        walk = np.flatnonzero((distance > 2.0 * c) & (distance <= max_range))
        if walk.size == 0 or self.keys.size == 0:
            return out
        d = distance[walk]
        steps = np.floor((d - 2.0 * c) / c).astype(np.int64) + 1  # samples at c, 2c, ... <= d - c
        link = np.repeat(np.arange(walk.size), steps)
        first = np.cumsum(steps) - steps
        along = (np.arange(link.size) - first[link] + 1) * c
        a, b = start[walk], end[walk]
        points = a[link] + (b - a)[link] * (along / d[link])[:, None]
        keys = self._keys(points)
        # each distinct cell once per link, and never the cell either end stands in
        new = np.ones(keys.size, np.bool_)
        new[1:] = (keys[1:] != keys[:-1]) | (link[1:] != link[:-1])
        ends = (keys == self._keys(a)[link]) | (keys == self._keys(b)[link])
        keep = new & ~ends
        found = self._occupants(keys[keep])
        out[walk] = np.bincount(link[keep], found, walk.size)
        return out
