"""The device's own keys, as a pure value: generate, roll, and answer "what do I broadcast at t?".

The ring holds each scheme's own key state, which that scheme's record knows (GAEN: TEKs, one per UTC
day, kept ``retention_days``; Bluezone: the base key of the install, whose hash chain gives every later
day's key; a scheme added later: whatever its record says, gained by an older ring at its next roll).
Rolling returns a new ring; saving it is the store's job (:mod:`proximity.keyring.store`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from proximity.broadcast import Broadcast, broadcasts_of
from proximity.errors import InvalidKeyError, InvalidMetadataError, NoKeyForTimeError
from proximity.radio import TX_POWER_RANGE  # the TX powers GAEN accepts; receivers drop others
from proximity.schemes.bluezone import BLUEZONE, DEFAULT_IDS_PER_DAY, BluezoneBaseKey
from proximity.schemes.gaen import GAEN, Metadata, TemporaryExposureKey
from proximity.schemes.keys import IdTable, SchemeKeys, empty_table
from proximity.schemes.registry import (
    RETENTION_DAYS,
    SCHEME_NAMES,
    UnknownSchemeError,
    scheme_record,
    scheme_records,
)
from proximity.times import SECONDS_PER_DAY

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
    """A device's keys: per scheme name, that scheme's own key state (its record's ``keys`` knows it).

    A scheme missing from ``keys`` has no key yet (a ring saved before the scheme existed); it gains one
    at the next :meth:`rolled`. Each state is checked by its scheme (``SchemeKeys.checked``: GAEN keys
    must not overlap), so a ring built by hand holds only what a rolled or loaded one could.
    """

    settings: KeyRingSettings
    keys: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ordered = {}
        for record in scheme_records():  # registration order, whatever order the mapping came in
            if record.name in self.keys:  # each state checked by its scheme, as loading a file does
                ordered[record.name] = record.load_keys().checked(self.keys[record.name])
        if unknown := sorted(set(self.keys) - set(ordered)):
            raise InvalidKeyError(f"unknown scheme(s) {unknown} in a key ring; expected {list(SCHEME_NAMES)}")
        object.__setattr__(self, "keys", ordered)

    @classmethod
    def create(
        cls,
        at: float,
        settings: KeyRingSettings | None = None,
        *,
        random_bytes: RandomBytes = os.urandom,
    ) -> KeyRing:
        """A fresh install at ``at``: every scheme's keys, those made at install first."""
        settings = settings or KeyRingSettings()
        first = {
            record.name: keys.rolled(None, at, settings, random_bytes)
            for record in scheme_records()
            if (keys := record.load_keys()).made_at_install
        }
        return cls(settings, first).rolled(at, random_bytes=random_bytes)

    def rolled(self, at: float, *, random_bytes: RandomBytes = os.urandom) -> KeyRing:
        """The ring at ``at``: each scheme's keys made and expired as due (GAEN's roll at UTC midnight;
        a scheme the ring has no key of yet gains one)."""
        keys = {
            record.name: record.load_keys().rolled(
                self.keys.get(record.name), at, self.settings, random_bytes
            )
            for record in scheme_records()
        }
        return replace(self, keys=keys)

    def key_state(self, scheme: str) -> Any | None:
        """The scheme's key state (None: the ring has no key of it yet)."""
        _keys_of(scheme)
        return self.keys.get(scheme)

    @property
    def gaen_keys(self) -> tuple[TemporaryExposureKey, ...]:
        """The GAEN TEKs, sorted by start, never overlapping."""
        keys: tuple[TemporaryExposureKey, ...] = self.keys.get(GAEN.name, ())
        return keys

    @property
    def bluezone_key(self) -> BluezoneBaseKey:
        """The Bluezone base key, made at install."""
        key: BluezoneBaseKey = self.keys[BLUEZONE.name]
        return key

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

        GAEN keys are random per day, so the ring can only answer until its newest key ends; a chained
        scheme's key answers for any day from its first on.
        """
        if count < 0:
            raise ValueError(f"count must be non-negative, got {count}")
        state = self.key_state(scheme)
        if state is None:
            return []
        return broadcasts_of(scheme, state, self.settings, at=at, count=count)

    def first_time(self, scheme: str) -> int | None:
        """When the ring's first ``scheme`` ID starts (None if it holds no key of that scheme yet)."""
        state = self.key_state(scheme)
        return None if state is None else _keys_of(scheme).first_time(state)

    def id_table(self, scheme: str, first_day: int, days: int) -> IdTable:
        """Every ``scheme`` ID over ``days`` UTC days from ``first_day``, with its metadata if any."""
        state = self.key_state(scheme)
        if state is None:
            return empty_table(scheme, scheme_record(scheme).id_length)
        return _keys_of(scheme).id_table(state, self.settings, first_day, days)

    def published(self, scheme: str, first_day: int, days: int) -> list[Any]:
        """What a confirmed user uploads of ``scheme`` covering those days (empty: no key then)."""
        state = self.key_state(scheme)
        return [] if state is None else _keys_of(scheme).published(state, self.settings, first_day, days)


def _keys_of(scheme: str) -> SchemeKeys:
    """The scheme's key state handling, named by its record."""
    try:
        return scheme_record(scheme).load_keys()
    except UnknownSchemeError:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {', '.join(SCHEME_NAMES)}") from None
