"""What each scheme's keys in a ring give: its broadcasts, when they start, its ID table, what it publishes.

The ring holds one key kind per scheme; each scheme's record names its view here
(``SchemeRecord.ring_keys``), so the ring, ``proximity ids``, the node and the simulator dispatch
through the record instead of a table keyed by scheme name.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from proximity.broadcast import Broadcast, bluezone_broadcasts, dp3t_broadcasts, gaen_broadcasts
from proximity.schemes.base import IdBatch
from proximity.schemes.bluezone import BluezoneScheme
from proximity.schemes.dp3t import DP3T
from proximity.schemes.gaen import GAEN
from proximity.schemes.published import DiagnosisKey, ReportType
from proximity.times import SECONDS_PER_DAY, utc_midnight

if TYPE_CHECKING:
    from proximity.keyring.model import KeyRing

__all__ = ["BLUEZONE_KEYS", "DP3T_KEYS", "GAEN_KEYS", "IdTable", "RingKeys"]

IdTable = tuple[IdBatch, NDArray[np.uint8] | None]
"""Every ID a ring broadcasts over some days (with GAEN's AEMs, row for row; None for other schemes)."""


class RingKeys(Protocol):
    """One scheme's view of a :class:`~proximity.keyring.model.KeyRing`."""

    def broadcasts(self, ring: KeyRing, at: float, count: int) -> list[Broadcast]:
        """Up to ``count`` broadcasts from the slot containing ``at`` on, as far as the ring has keys."""
        ...

    def first_time(self, ring: KeyRing) -> int | None:
        """When the ring's first ID of this scheme starts (None: no key of this scheme yet)."""
        ...

    def id_table(self, ring: KeyRing, first_day: int, days: int) -> IdTable:
        """Every ID over ``days`` UTC days from ``first_day`` (vectorised: the simulator's tables)."""
        ...

    def published(self, ring: KeyRing, first_day: int, days: int) -> list[Any]:
        """What the app uploads when its user is confirmed, covering those days (each has ``key_data``)."""
        ...


class _GaenKeys:
    """One TEK per day; IDs and AEMs from each."""

    def broadcasts(self, ring: KeyRing, at: float, count: int) -> list[Broadcast]:
        out: list[Broadcast] = []
        for key in ring.gaen_keys:
            if len(out) == count:
                break
            if key.end > at:
                out += gaen_broadcasts(key, ring.settings.gaen_metadata, at=at, count=count - len(out))
        return out

    def first_time(self, ring: KeyRing) -> int | None:
        return min((key.start for key in ring.gaen_keys), default=None)

    def id_table(self, ring: KeyRing, first_day: int, days: int) -> IdTable:
        batches = [GAEN.ids_of_key(key) for key in ring.gaen_keys]
        metadata = ring.settings.gaen_metadata
        aems = [GAEN.aems_of_key(k, b, metadata) for k, b in zip(ring.gaen_keys, batches, strict=True)]
        return _joined(GAEN.name, GAEN.id_length, batches), np.concatenate(aems) if aems else None

    def published(self, ring: KeyRing, first_day: int, days: int) -> list[Any]:
        return [DiagnosisKey(key, report_type=ReportType.CONFIRMED_TEST) for key in ring.gaen_keys]


class _BluezoneKeys:
    """One base key for the install; each day's key by hash chain; a record covers many days."""

    def broadcasts(self, ring: KeyRing, at: float, count: int) -> list[Broadcast]:
        if utc_midnight(at) < ring.bluezone_key.base_day:
            return []
        ids_per_day = ring.settings.bluezone_ids_per_day
        days = 1 + math.ceil(count / ids_per_day)
        return bluezone_broadcasts(ring.bluezone_key.record(at, days, ids_per_day), at=at, count=count)

    def first_time(self, ring: KeyRing) -> int | None:
        return ring.bluezone_key.base_day

    def id_table(self, ring: KeyRing, first_day: int, days: int) -> IdTable:
        (record,) = self.published(ring, first_day, days)
        return BluezoneScheme(record.ids_per_day).ids_of_key(record), None

    def published(self, ring: KeyRing, first_day: int, days: int) -> list[Any]:
        return [ring.bluezone_key.record(first_day, days, ring.settings.bluezone_ids_per_day)]


class _Dp3tKeys:
    """SK of the ring's first day, chained forward; a published SK_t reveals its day and every later one."""

    def broadcasts(self, ring: KeyRing, at: float, count: int) -> list[Broadcast]:
        if ring.dp3t_key is None or utc_midnight(at) < ring.dp3t_key.day:
            return []
        return dp3t_broadcasts(ring.dp3t_key, at=at, count=count)

    def first_time(self, ring: KeyRing) -> int | None:
        return None if ring.dp3t_key is None else ring.dp3t_key.day

    def id_table(self, ring: KeyRing, first_day: int, days: int) -> IdTable:
        batches = []
        if ring.dp3t_key is not None:
            day_key = ring.dp3t_key.on_day(max(first_day, ring.dp3t_key.day))
            for _ in range((first_day + days * SECONDS_PER_DAY - day_key.day) // SECONDS_PER_DAY):
                batches.append(DP3T.ids_of_key(day_key))
                day_key = day_key.on_day(day_key.day + SECONDS_PER_DAY)
        return _joined(DP3T.name, DP3T.id_length, batches), None

    def published(self, ring: KeyRing, first_day: int, days: int) -> list[Any]:
        if ring.dp3t_key is None:
            return []
        return [ring.dp3t_key.on_day(max(first_day, ring.dp3t_key.day))]


def _joined(scheme: str, length: int, batches: list[IdBatch]) -> IdBatch:
    if not batches:
        empty = np.zeros(0, np.int64)
        return IdBatch(scheme, np.zeros((0, length), np.uint8), empty, empty)
    return IdBatch(
        scheme,
        np.concatenate([b.ids for b in batches]),
        np.concatenate([b.starts for b in batches]),
        np.concatenate([b.ends for b in batches]),
    )


GAEN_KEYS: RingKeys = _GaenKeys()
BLUEZONE_KEYS: RingKeys = _BluezoneKeys()
DP3T_KEYS: RingKeys = _Dp3tKeys()
