"""What a device puts on the air: an ephemeral ID, its advertisement, and the slot it lasts.

One path serves the key ring, ``proximity ids --key`` and (later) the advertiser and the simulator:
expand a key with its scheme, pair each ID with its advertisement, and pick the slots from ``at`` on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from proximity.payloads.adverts import Advert, BluezoneAdvert, Dp3tAdvert, GaenAdvert
from proximity.schemes.base import EphemeralId, IdBatch
from proximity.schemes.bluezone import BluezoneDailyKey, BluezoneScheme
from proximity.schemes.dp3t import DP3T, Dp3tDayKey
from proximity.schemes.gaen import GAEN, Metadata, TemporaryExposureKey
from proximity.times import SECONDS_PER_DAY

__all__ = ["Broadcast", "bluezone_broadcasts", "dp3t_broadcasts", "gaen_broadcasts"]


@dataclass(frozen=True, slots=True)
class Broadcast:
    """One ID on the air during ``[start, end)``; ``end`` is when the advertisement changes next."""

    id: EphemeralId
    advert: Advert

    @property
    def scheme(self) -> str:
        return self.id.scheme

    @property
    def start(self) -> int:
        return self.id.start

    @property
    def end(self) -> int:
        return self.id.end

    @property
    def payload(self) -> bytes:
        """The scheme's service-data (GAEN) or manufacturer-data (Bluezone) bytes."""
        return self.advert.payload

    @property
    def ad_bytes(self) -> bytes:
        """Raw legacy advertising data (at most 31 bytes)."""
        return self.advert.to_ad_bytes()


def _from(batch: IdBatch, at: float, count: int) -> np.ndarray:
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
    return np.flatnonzero(batch.ends > at)[:count]


def gaen_broadcasts(
    key: TemporaryExposureKey, metadata: Metadata, *, at: float, count: int = 1
) -> list[Broadcast]:
    """The key's broadcasts from the slot containing ``at`` on, at most ``count``; none past its period."""
    batch = GAEN.ids_of_key(key)
    aems = GAEN.aems_of_key(key, batch, metadata)
    return [
        Broadcast(batch[i], GaenAdvert(batch.ids[i].tobytes(), aems[i].tobytes()))
        for i in _from(batch, at, count)
    ]


def bluezone_broadcasts(record: BluezoneDailyKey, *, at: float, count: int = 1) -> list[Broadcast]:
    """The record's broadcasts from the slot containing ``at`` on, at most ``count``."""
    batch = BluezoneScheme(record.ids_per_day).ids_of_key(record)
    return [Broadcast(batch[i], BluezoneAdvert(batch.ids[i].tobytes())) for i in _from(batch, at, count)]


def dp3t_broadcasts(key: Dp3tDayKey, *, at: float, count: int = 1) -> list[Broadcast]:
    """EphIDs (each day's in broadcast order) from the epoch containing ``at`` on, at most ``count``,
    the key chained forward to ``at``'s day and on across midnights."""
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
    out: list[Broadcast] = []
    day_key = key.on_day(at)
    while len(out) < count:
        batch = DP3T.ids_of_key(day_key)
        chosen = _from(batch, at, count - len(out))
        out += [Broadcast(batch[i], Dp3tAdvert(batch.ids[i].tobytes())) for i in chosen]
        day_key = day_key.on_day(day_key.day + SECONDS_PER_DAY)
    return out
