"""Bluezone (Vietnam): base key -> daily keys by a SHA-256 chain -> 96 (or 144) IDs a day.

Plain SHA-256 only, as the app does. Beware the forward chain: a published daily key reveals that day
and every later day; the base key reveals every ID the phone ever broadcasts.

The crypto is written once, over batches of records (:func:`ids_of_records`), as SHA-256 chains of the
backend (:mod:`proximity.crypto`); single keys and matching call the same function.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.crypto import CryptoBackend, crypto_backend
from proximity.errors import InvalidKeyError, NoKeyForTimeError
from proximity.schemes.base import EphemeralId, IdBatch, require_bytes
from proximity.times import LATEST_TIME, SECONDS_PER_DAY, utc_midnight

__all__ = [
    "BLUEZONE",
    "BYTE_SELECT",
    "DEFAULT_IDS_PER_DAY",
    "ID_LENGTH",
    "KEY_LENGTH",
    "MAX_RECORD_DAYS",
    "SALT",
    "BluezoneBaseKey",
    "BluezoneDailyKey",
    "BluezoneScheme",
    "chained_keys",
    "ids_for_day",
    "ids_of_records",
    "next_daily_key",
]

ID_LENGTH = 12
# Days one published record may span: the app publishes 14; a record "valid until" the far future
# would make the matcher derive every ID of every day up to then (a 1596240000000 s time_end: years).
MAX_RECORD_DAYS = 30
KEY_LENGTH = 32
DEFAULT_IDS_PER_DAY = 96
SALT = b"bluzonesubkey"  # sic: the app spells it without the "e"
BYTE_SELECT = np.array([0, 4, 8, 12, 16, 18, 20, 22, 24, 26, 28, 30])
"""Which bytes of each 32-byte SHA-256 digest form the 12-byte Bluezone ID (the app's selection)."""


def ids_of_records(
    daily_keys: NDArray[np.uint8], count: int, ids_per_day: int, crypto: CryptoBackend | None = None
) -> NDArray[np.uint8]:
    """The first ``count`` IDs of records with these (n, 32) daily keys, as (n, count, 12).

    Day d's key is the daily key chained d times; its IDs are the chain seeded by SHA-256(key || salt),
    each link cut to the 12 bytes of :data:`BYTE_SELECT`.
    """
    crypto = crypto or crypto_backend()
    n, days = int(daily_keys.shape[0]), -(-count // ids_per_day)
    day_keys = crypto.sha256_chain(daily_keys, days).reshape(n * days, KEY_LENGTH)
    salted = np.concatenate([day_keys, np.frombuffer(SALT, np.uint8)[None].repeat(n * days, axis=0)], axis=1)
    ids = crypto.sha256_chain(crypto.sha256(salted), ids_per_day, BYTE_SELECT)
    return np.ascontiguousarray(ids.reshape(n, days * ids_per_day, ID_LENGTH)[:, :count])


def _key_row(daily_key: bytes) -> NDArray[np.uint8]:
    return np.frombuffer(require_bytes("daily key", daily_key, KEY_LENGTH), np.uint8).reshape(1, KEY_LENGTH)


def chained_key(daily_key: bytes, days: int) -> bytes:
    """The daily key ``days`` steps down the chain (one SHA-256 a step)."""
    return chained_keys(_key_row(daily_key), days).tobytes()


def chained_keys(
    daily_keys: NDArray[np.uint8], days: int, crypto: CryptoBackend | None = None
) -> NDArray[np.uint8]:
    """Each of the (n, 32) daily keys ``days`` steps down its chain, as (n, 32)."""
    chain = (crypto or crypto_backend()).sha256_chain(daily_keys, days + 1)
    return np.ascontiguousarray(chain[:, -1])


def next_daily_key(daily_key: bytes) -> bytes:
    """The next day's key: one SHA-256 step of the chain."""
    return crypto_backend().sha256(_key_row(daily_key)).tobytes()


def ids_for_day(daily_key: bytes, ids_per_day: int = DEFAULT_IDS_PER_DAY) -> NDArray[np.uint8]:
    """The day's IDs as an (ids_per_day, 12) array: select12 of a SHA-256 chain seeded by key || salt."""
    _check_ids_per_day(ids_per_day)
    ids: NDArray[np.uint8] = ids_of_records(_key_row(daily_key), ids_per_day, ids_per_day)[0]
    return ids


def _check_ids_per_day(ids_per_day: int) -> None:
    if ids_per_day < 1 or SECONDS_PER_DAY % ids_per_day:
        raise InvalidKeyError(f"ids_per_day must divide 86400 evenly (e.g. 96 or 144), got {ids_per_day}")


def _check_midnight(what: str, at: int) -> None:
    if at % SECONDS_PER_DAY:
        raise InvalidKeyError(f"{what} must be a UTC midnight (a multiple of 86400), got {at}")


@dataclass(frozen=True, slots=True)
class BluezoneBaseKey:
    """The 32-byte key a phone makes once at install, with the UTC midnight of the install day."""

    key: bytes
    base_day: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", require_bytes("base key", self.key, KEY_LENGTH))
        _check_midnight("base_day", self.base_day)

    @classmethod
    def generate(cls, at: float, *, random_bytes: Callable[[int], bytes] = os.urandom) -> BluezoneBaseKey:
        return cls(random_bytes(KEY_LENGTH), utc_midnight(at))

    def daily_key(self, day: float) -> bytes:
        """The key of the UTC day containing ``day``: SHA-256 applied once per day since install."""
        midnight = utc_midnight(day)
        if midnight < self.base_day:
            raise NoKeyForTimeError("bluezone", day, f"the key was made on day {self.base_day}")
        return chained_key(self.key, (midnight - self.base_day) // SECONDS_PER_DAY)

    def record(
        self, first_day: float, days: int = 1, ids_per_day: int = DEFAULT_IDS_PER_DAY
    ) -> BluezoneDailyKey:
        """The daily-key record a diagnosed user publishes for ``days`` days from ``first_day``."""
        if days < 1:
            raise InvalidKeyError(f"days must be at least 1, got {days}")
        start = utc_midnight(first_day)
        return BluezoneDailyKey(self.daily_key(start), start, start + days * SECONDS_PER_DAY, ids_per_day)

    def __repr__(self) -> str:
        return f"BluezoneBaseKey(key=<{KEY_LENGTH} bytes>, base_day={self.base_day})"


@dataclass(frozen=True, slots=True)
class BluezoneDailyKey:
    """A published daily-key record: the key of the day at ``time_start``, valid until ``time_end``.

    IDs roll to the next day's key (one SHA-256 step) every ``ids_per_day`` slots, so one record covers
    any number of consecutive days. ``time_end`` is exclusive: the record covers every slot that starts
    before it. JSON form: ``{"daily_key": hex, "time_start": s, "max": n, "time_end": s}``.
    """

    daily_key: bytes
    time_start: int
    time_end: int
    ids_per_day: int = DEFAULT_IDS_PER_DAY

    @property
    def key_data(self) -> bytes:
        """The published key's bytes (as :class:`~proximity.schemes.published.DiagnosisKey` names them)."""
        return self.daily_key

    @property
    def start(self) -> int:
        """The UTC midnight the key starts on (as :class:`~proximity.schemes.published.PublishedKey`
        names it)."""
        return self.time_start

    def __post_init__(self) -> None:
        object.__setattr__(self, "daily_key", require_bytes("daily key", self.daily_key, KEY_LENGTH))
        _check_midnight("time_start", self.time_start)
        _check_ids_per_day(self.ids_per_day)
        if self.time_end <= self.time_start:
            raise InvalidKeyError(f"time_end {self.time_end} must be after time_start {self.time_start}")
        if not 0 <= self.time_start <= LATEST_TIME:
            raise InvalidKeyError(
                f"time_start must be unix seconds from 1970 to year 9998, got {self.time_start}"
            )
        span = self.time_end - self.time_start
        if span > MAX_RECORD_DAYS * SECONDS_PER_DAY:
            days = f"{span // SECONDS_PER_DAY:,}" if span < 10**15 else "far more"  # integers: no overflow
            raise InvalidKeyError(
                f"a record may span at most {MAX_RECORD_DAYS} days (MAX_RECORD_DAYS); this one spans {days} "
                "days (is time_end in milliseconds?)"
            )

    @property
    def slot_seconds(self) -> int:
        return SECONDS_PER_DAY // self.ids_per_day

    @property
    def days(self) -> int:
        return -(-(self.time_end - self.time_start) // SECONDS_PER_DAY)

    def to_record(self) -> dict[str, int | str]:
        return {
            "daily_key": self.daily_key.hex(),
            "time_start": self.time_start,
            "max": self.ids_per_day,
            "time_end": self.time_end,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> BluezoneDailyKey:
        try:
            key_hex, start, end = record["daily_key"], record["time_start"], record["time_end"]
            ids_per_day = record.get("max", DEFAULT_IDS_PER_DAY)
        except KeyError as missing:
            raise InvalidKeyError(f"daily-key record lacks the field {missing}") from None
        if not isinstance(key_hex, str):
            raise InvalidKeyError("daily_key must be a hex string")
        for name, value in (("time_start", start), ("time_end", end), ("max", ids_per_day)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidKeyError(f"{name} must be an integer, got {value!r}")
        try:
            key = bytes.fromhex(key_hex)
        except ValueError:
            raise InvalidKeyError(f"daily_key is not hex: {key_hex!r}") from None
        return cls(key, start, end, ids_per_day)

    def __repr__(self) -> str:
        return (
            f"BluezoneDailyKey(daily_key=<{KEY_LENGTH} bytes>, time_start={self.time_start}, "
            f"time_end={self.time_end}, ids_per_day={self.ids_per_day})"
        )


class BluezoneScheme:
    """Bluezone as a :class:`~proximity.schemes.base.RotatingIdScheme` over :class:`BluezoneDailyKey`."""

    name = "bluezone"
    id_length = ID_LENGTH

    def __init__(self, ids_per_day: int = DEFAULT_IDS_PER_DAY) -> None:
        _check_ids_per_day(ids_per_day)
        self.ids_per_day = ids_per_day

    @property
    def slot_seconds(self) -> int:
        return SECONDS_PER_DAY // self.ids_per_day

    def ids_of_key(self, key: BluezoneDailyKey) -> IdBatch:
        slot = key.slot_seconds
        count = key.days * key.ids_per_day
        starts = key.time_start + np.arange(count, dtype=np.int64) * slot
        keep = starts < key.time_end
        ids = ids_of_records(_key_row(key.daily_key), count, key.ids_per_day)[0]
        return IdBatch(self.name, ids[keep], starts[keep], starts[keep] + slot)

    def id_at(self, key: BluezoneDailyKey, at: float) -> EphemeralId:
        if not key.time_start <= at < key.time_end:
            raise NoKeyForTimeError(self.name, at, f"the record covers [{key.time_start}, {key.time_end})")
        midnight = utc_midnight(at)
        daily_key = chained_key(key.daily_key, (midnight - key.time_start) // SECONDS_PER_DAY)
        slot = key.slot_seconds
        index = int(at - midnight) // slot
        value = ids_for_day(daily_key, key.ids_per_day)[index].tobytes()
        start = midnight + index * slot
        return EphemeralId(self.name, value, start, start + slot)


BLUEZONE = BluezoneScheme()
