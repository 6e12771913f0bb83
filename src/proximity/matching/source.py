"""Sightings kept elsewhere (the encounter log), read the way a matcher needs them.

A matcher needs every observed ID first, to build its index, and the full sightings (time, RSSI,
metadata, row) only of the few IDs some published key derives. A :class:`SightingSource` serves
exactly that: ``ids`` at once, then :meth:`~SightingSource.sightings_with` for the IDs found. The
encounter log implements it over its columnar side store (:mod:`proximity.log.id_blocks`), so a
``match --log`` run never turns 100,000 rows into Python tuples. Matching a source gives the same
result as matching its :meth:`~SightingSource.everything` (the tests compare).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from proximity.sightings import Observations

__all__ = ["SightingSource", "overlaps"]


@runtime_checkable
class SightingSource(Protocol):
    """One scheme's sightings: every ID now, the full sightings of chosen IDs on demand."""

    @property
    def scheme(self) -> str: ...

    @property
    def ids(self) -> NDArray[np.uint8]:
        """Every sighting's ID, (n, L) uint8, in the source's own order (duplicates kept)."""
        ...

    def time_spans(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Sorted, disjoint ``[lo, hi)`` spans holding every sighting's time (maybe more)."""
        ...

    def sightings_with(self, positions: NDArray[np.int64]) -> Observations:
        """Every sighting whose ID is that of one of ``positions`` (indices into :attr:`ids`, which
        must name every position of those IDs), column-wise and ordered by time."""
        ...

    def everything(self) -> Observations:
        """All of the sightings (what a matcher without a two-pass path reads)."""
        ...


def overlaps(
    low: NDArray[np.int64], high: NDArray[np.int64], spans: tuple[NDArray[np.float64], NDArray[np.float64]]
) -> NDArray[np.bool_]:
    """Per window ``[low, high)``: does it meet any of the sorted, disjoint ``spans``?"""
    lo, hi = spans
    first = np.searchsorted(hi, low, side="right")  # the first span ending after the window starts
    inside = first < lo.size
    result: NDArray[np.bool_] = np.zeros(low.shape, np.bool_)
    result[inside] = lo[first[inside]] < high[inside]
    return result
