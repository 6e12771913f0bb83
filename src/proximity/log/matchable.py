"""The encounter log as a :class:`~proximity.matching.source.SightingSource`: every ID from the side
store in a few blobs, the full sightings only of the IDs a matcher found (read by hour)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from proximity.arrays import distinct
from proximity.log.id_blocks import IdBlocks, hour_spans
from proximity.sightings import Observations

__all__ = ["LogSightings"]


class _Log(Protocol):
    """What this reads of :class:`~proximity.log.store.EncounterLog` (no import back: no cycle)."""

    def observations(self, scheme: str) -> Observations: ...

    def observations_in(
        self, scheme: str, spans: Sequence[tuple[float, float]], ids: set[bytes]
    ) -> Observations: ...


class LogSightings:
    """One scheme's sightings in an open :class:`~proximity.log.store.EncounterLog` (valid while it is)."""

    def __init__(self, log: _Log, scheme: str, blocks: IdBlocks) -> None:
        self._log = log
        self._scheme = scheme
        self._blocks = blocks

    @property
    def scheme(self) -> str:
        return self._scheme

    @property
    def ids(self) -> NDArray[np.uint8]:
        return self._blocks.ids

    def __len__(self) -> int:
        return int(self._blocks.ids.shape[0])

    def time_spans(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return hour_spans(distinct(self._blocks.buckets))

    def sightings_with(self, positions: NDArray[np.int64]) -> Observations:
        positions = np.asarray(positions, dtype=np.int64)
        wanted = np.ascontiguousarray(self._blocks.ids[positions])
        length = wanted.shape[1]
        flat = wanted.tobytes()
        ids = {flat[i * length : (i + 1) * length] for i in range(wanted.shape[0])}
        lo, hi = hour_spans(distinct(self._blocks.buckets[positions]))
        return self._log.observations_in(self._scheme, list(zip(lo.tolist(), hi.tolist(), strict=True)), ids)

    def everything(self) -> Observations:
        return self._log.observations(self._scheme)
