"""The device's own keys, as a pure value: generate, roll, and answer "what do I broadcast at t?".

The ring holds GAEN TEKs (one per UTC day, kept ``retention_days``) and the Bluezone base key (one for
the life of the install: its hash chain gives every later day's key), and the DP-3T day key SK of its
first day (chained forward the same way; a ring saved before DP-3T gains one at its next roll).
Rolling returns a new ring; saving it is the store's job (:mod:`proximity.keyring.store`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from proximity.broadcast import Broadcast
from proximity.errors import InvalidKeyError, InvalidMetadataError, NoKeyForTimeError
from proximity.radio import TX_POWER_RANGE  # the TX powers GAEN accepts; receivers drop others
from proximity.schemes.bluezone import DEFAULT_IDS_PER_DAY, BluezoneBaseKey
from proximity.schemes.dp3t import Dp3tDayKey
from proximity.schemes.gaen import Metadata, TemporaryExposureKey
from proximity.schemes.registry import RETENTION_DAYS, SCHEME_NAMES, UnknownSchemeError, scheme_record
from proximity.times import SECONDS_PER_DAY, utc_midnight

__all__ = ["DEFAULT_TX_POWER", "TX_POWER_RANGE", "KeyRing", "KeyRingSettings"]

# The fleet calibrated TX power (dBm, GAEN's scale): the median of Google's 2020-08-12 calibration
# list, proximity.estimation's FLEET_TX_POWER_DBM (a test holds them equal). `keys init --device MODEL`
# takes the model's own from the calibration table.
DEFAULT_TX_POWER = -24
DEFAULT_RETENTION_DAYS = RETENTION_DAYS
MAX_RETENTION_DAYS = 3660  # ten years: more is not a retention period, and would overflow key times

RandomBytes = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class KeyRingSettings:
    """What the device puts in its adverts besides the IDs, and how long it keeps keys."""

    tx_power: int = DEFAULT_TX_POWER
    calibration_confidence: int = 0
    bluezone_ids_per_day: int = DEFAULT_IDS_PER_DAY
    retention_days: int = DEFAULT_RETENTION_DAYS

    def __post_init__(self) -> None:
        for name in ("tx_power", "calibration_confidence", "bluezone_ids_per_day", "retention_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r:.40}")
        if not TX_POWER_RANGE[0] <= self.tx_power <= TX_POWER_RANGE[1]:
            raise InvalidMetadataError(
                "tx_power", self.tx_power, f"in [{TX_POWER_RANGE[0]}, {TX_POWER_RANGE[1]}] dBm (GAEN's range)"
            )
        Metadata(self.tx_power, self.calibration_confidence)  # validates the calibration confidence
        if self.bluezone_ids_per_day < 1 or SECONDS_PER_DAY % self.bluezone_ids_per_day:
            raise InvalidKeyError(
                f"bluezone_ids_per_day must divide 86400 (e.g. 96 or 144), got {self.bluezone_ids_per_day}"
            )
        if not 1 <= self.retention_days <= MAX_RETENTION_DAYS:
            raise InvalidKeyError(
                f"retention_days must be in [1, {MAX_RETENTION_DAYS}], got {self.retention_days}"
            )

    @property
    def gaen_metadata(self) -> Metadata:
        return Metadata(self.tx_power, self.calibration_confidence)


@dataclass(frozen=True, slots=True)
class KeyRing:
    """A device's keys; ``gaen_keys`` are sorted by start and never overlap."""

    settings: KeyRingSettings
    gaen_keys: tuple[TemporaryExposureKey, ...]
    bluezone_key: BluezoneBaseKey
    dp3t_key: Dp3tDayKey | None = None

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.gaen_keys, key=lambda k: k.rolling_start_interval_number))
        for earlier, later in itertools.pairwise(ordered):
            if later.start < earlier.end:
                raise InvalidKeyError("GAEN keys in a key ring must not overlap")
        object.__setattr__(self, "gaen_keys", ordered)

    @classmethod
    def create(
        cls,
        at: float,
        settings: KeyRingSettings | None = None,
        *,
        random_bytes: RandomBytes = os.urandom,
    ) -> KeyRing:
        """A fresh install at ``at``: a Bluezone base key for its day and a GAEN key from its interval."""
        ring = cls(settings or KeyRingSettings(), (), BluezoneBaseKey.generate(at, random_bytes=random_bytes))
        return ring.rolled(at, random_bytes=random_bytes)

    def rolled(self, at: float, *, random_bytes: RandomBytes = os.urandom) -> KeyRing:
        """The ring at ``at``: a GAEN key covers ``at`` (new keys roll at UTC midnight); old keys dropped."""
        horizon = utc_midnight(at) - (self.settings.retention_days - 1) * SECONDS_PER_DAY
        keys = [key for key in self.gaen_keys if key.end > horizon]
        if self.gaen_key_at(at) is None:
            if keys and keys[-1].end > at:
                raise InvalidKeyError(
                    f"the key ring holds GAEN keys later than unix time {at:g}; it cannot roll back in time"
                )
            keys.append(TemporaryExposureKey.generate(at, random_bytes=random_bytes))
        dp3t = self.dp3t_key or Dp3tDayKey.generate(at, random_bytes=random_bytes)
        return replace(self, gaen_keys=tuple(keys), dp3t_key=dp3t)

    def gaen_key_at(self, at: float) -> TemporaryExposureKey | None:
        return next((key for key in self.gaen_keys if key.covers(at)), None)

    def broadcast_at(self, scheme: str, at: float) -> Broadcast:
        """The ID and advert to broadcast at ``at``; its ``end`` is when it changes next."""
        found = self.broadcasts(scheme, at=at, count=1)
        if not found or found[0].start > at:
            raise NoKeyForTimeError(scheme, at, "roll the key ring (`proximity keys roll`)")
        return found[0]

    def broadcasts(self, scheme: str, *, at: float, count: int) -> list[Broadcast]:
        """Up to ``count`` broadcasts from the slot containing ``at`` on, as far as the ring has keys.

        GAEN keys are random per day, so the ring can only answer until its newest key ends; Bluezone's
        and DP-3T's chains answer for any day from their first on.
        """
        if count < 0:
            raise ValueError(f"count must be non-negative, got {count}")
        broadcasts: list[Broadcast] = _keys_of(scheme).broadcasts(self, at, count)
        return broadcasts

    def first_time(self, scheme: str) -> int | None:
        """When the ring's first ``scheme`` ID starts (None if it holds no key of that scheme yet)."""
        first: int | None = _keys_of(scheme).first_time(self)
        return first


def _keys_of(scheme: str) -> Any:
    """The scheme's view of the ring (a ``scheme_keys.RingKeys``, named by its record; not imported
    here, since that module reads the ring)."""
    try:
        keys = scheme_record(scheme).load_ring_keys()
    except UnknownSchemeError:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {', '.join(SCHEME_NAMES)}") from None
    return keys
