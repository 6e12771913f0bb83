"""What a device puts on the air: an ephemeral ID, its advertisement, and the slot it lasts.

One path serves the key ring, ``proximity ids --key``, the advertiser and the simulator: the scheme's
record expands its key state into the IDs from ``at`` on, and pairs each with the scheme's advert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from proximity.payloads.adverts import Advert, BluezoneAdvert
from proximity.schemes.base import EphemeralId
from proximity.schemes.bluezone import DEFAULT_IDS_PER_DAY, BluezoneDailyKey, BluezoneScheme
from proximity.schemes.gaen import GAEN, Metadata, TemporaryExposureKey
from proximity.schemes.registry import scheme_record

__all__ = ["Broadcast", "KeySettings", "bluezone_broadcasts", "broadcasts_of", "gaen_broadcasts"]


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
        """The scheme's service-data or manufacturer-data bytes (its advert's payload)."""
        return self.advert.payload

    @property
    def ad_bytes(self) -> bytes:
        """Raw legacy advertising data (at most 31 bytes)."""
        return self.advert.to_ad_bytes()


def broadcasts_of(scheme: str, state: Any, settings: Any, *, at: float, count: int = 1) -> list[Broadcast]:
    """A key state's broadcasts from the slot containing ``at`` on, at most ``count`` (as far as the
    state has keys): its IDs from the scheme's record, each with the scheme's advert.

    ``state`` is the scheme's key state (what a key ring holds for it; ``record.load_keys().from_key``
    makes one from a key given by hand); ``settings`` the ring's settings (GAEN's metadata, Bluezone's
    IDs per day).
    """
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
    record = scheme_record(scheme)
    batch, metadata = record.load_keys().upcoming(state, settings, at, count)
    return [
        Broadcast(
            batch[i],
            record.advert.of(batch.ids[i].tobytes(), None if metadata is None else metadata[i].tobytes()),
        )
        for i in range(len(batch))
    ]


@dataclass(frozen=True, slots=True)
class KeySettings:
    """The settings a key given on its own is expanded with (a key ring's, for one key)."""

    gaen_metadata: Metadata
    bluezone_ids_per_day: int = DEFAULT_IDS_PER_DAY


def gaen_broadcasts(
    key: TemporaryExposureKey, metadata: Metadata, *, at: float, count: int = 1
) -> list[Broadcast]:
    """The key's broadcasts from the slot containing ``at`` on, at most ``count``; none past its period."""
    return broadcasts_of(GAEN.name, (key,), KeySettings(metadata), at=at, count=count)


def bluezone_broadcasts(record: BluezoneDailyKey, *, at: float, count: int = 1) -> list[Broadcast]:
    """The record's broadcasts from the slot containing ``at`` on, at most ``count``."""
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
    batch = BluezoneScheme(record.ids_per_day).ids_of_key(record)
    chosen = np.flatnonzero(batch.ends > at)[:count]
    return [Broadcast(batch[i], BluezoneAdvert(batch.ids[i].tobytes())) for i in chosen]
