"""DP-3T "low-cost" design (white paper §2.1): day key SK_t -> 96 EphIDs a day by AES-256-CTR.

SK_t = SHA-256(SK_{t-1}); the day's PRF key is HMAC-SHA256(SK_t, "broadcast key"), 32 bytes, so the PRG is
AES-256 in counter mode from a zero counter; its first 96 x 16 bytes are the day's EphIDs, one per
15-minute epoch. Like Bluezone's chain, a published SK_t reveals that day and every later one; unlike
Bluezone, the app broadcasts the day's EphIDs in a random order.

The DP-3T apps drew that order from a secure RNG. Here it is derived from the day key, so that ``ids``
and a live node agree on what is on the air: the order key is HMAC-SHA256(SK_t, "broadcast order"),
AES-256-CTR under it from a zero counter gives 96 big-endian uint64 sort keys, and epoch ``i``
broadcasts the EphID whose sort key ranks ``i`` (ties, which have probability ~2^-52, keep PRG order).
Without SK_t the order is as unpredictable as the EphIDs themselves; matching never needs it, since a
published day key is matched against all of its day's EphIDs.

The crypto is written once, over batches of day keys, from the backend's primitives
(:mod:`proximity.crypto`): the PRG from a zero counter is AES-256-ECB over the counter blocks 0..95
(:func:`ephid_inputs`), which matching probes without materialising; single keys call the same functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.crypto import CryptoBackend, crypto_backend
from proximity.errors import InvalidKeyError, NoKeyForTimeError
from proximity.schemes.base import EphemeralId, IdBatch, require_bytes
from proximity.schemes.keys import (
    IdTable,
    IdTables,
    KeyDescription,
    RandomBytes,
    byte_rows,
    empty_table,
    joined,
    upcoming_of,
)
from proximity.times import SECONDS_PER_DAY, format_utc, utc_midnight

__all__ = [
    "DP3T",
    "DP3T_KEYS",
    "EPHIDS_PER_DAY",
    "EPHID_LENGTH",
    "EPOCH_SECONDS",
    "KEY_LENGTH",
    "MAX_CHAIN_DAYS",
    "Dp3tDayKey",
    "Dp3tKeys",
    "Dp3tScheme",
    "broadcast_ephids",
    "broadcast_order",
    "broadcast_orders",
    "day_keys_after",
    "ephid_inputs",
    "ephids_for_day",
    "ephids_of",
    "next_day_key",
]

KEY_LENGTH = 32
EPHID_LENGTH = 16
EPOCH_SECONDS = 900
EPHIDS_PER_DAY = SECONDS_PER_DAY // EPOCH_SECONDS
MAX_CHAIN_DAYS = 14
"""How many days forward from its own day a published SK_t is matched (the DP-3T retention window)."""

_BROADCAST_KEY = b"broadcast key"
_ORDER_KEY = b"broadcast order"
_COUNTER_BLOCKS = np.zeros((1, EPHIDS_PER_DAY, 16), dtype=np.uint8)
_COUNTER_BLOCKS[0, :, 8:] = np.arange(EPHIDS_PER_DAY, dtype=">u8").view(np.uint8).reshape(EPHIDS_PER_DAY, 8)
_COUNTER_BLOCKS.setflags(write=False)  # the big-endian 128-bit counter blocks 0..95


def _key_row(day_key: bytes) -> NDArray[np.uint8]:
    return np.frombuffer(require_bytes("DP-3T day key", day_key, KEY_LENGTH), np.uint8).reshape(1, KEY_LENGTH)


def ephid_inputs(
    day_keys: NDArray[np.uint8], crypto: CryptoBackend | None = None
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.intp]]:
    """The AES-256-ECB job that gives every (m, 32) day key's 96 EphIDs: (PRF keys = HMAC-SHA256(SK_t,
    "broadcast key"), the counter blocks 0..95 as one shared row, the row of each key)."""
    prf_keys = (crypto or crypto_backend()).hmac_sha256(day_keys, _BROADCAST_KEY)
    return prf_keys, _COUNTER_BLOCKS, np.zeros(prf_keys.shape[0], dtype=np.intp)


def ephids_of(day_keys: NDArray[np.uint8], crypto: CryptoBackend | None = None) -> NDArray[np.uint8]:
    """The 96 EphIDs (PRG order) of each (m, 32) day key, as (m, 96, 16)."""
    crypto = crypto or crypto_backend()
    return crypto.aes_ecb(*ephid_inputs(np.asarray(day_keys, np.uint8).reshape(-1, KEY_LENGTH), crypto))


def next_day_key(day_key: bytes) -> bytes:
    """SK_{t+1} = SHA-256(SK_t)."""
    return crypto_backend().sha256(_key_row(day_key)).tobytes()


def ephids_for_day(day_key: bytes) -> NDArray[np.uint8]:
    """The day's 96 EphIDs in PRG order, as a (96, 16) uint8 array (the order the white paper defines)."""
    ephids: NDArray[np.uint8] = ephids_of(_key_row(day_key))[0]
    return ephids


def broadcast_order(day_key: bytes) -> NDArray[np.intp]:
    """``order[i]`` is the PRG index of the EphID broadcast in epoch ``i`` (see the module docstring)."""
    order: NDArray[np.intp] = broadcast_orders(_key_row(day_key))[0]
    return order


def broadcast_orders(day_keys: NDArray[np.uint8], crypto: CryptoBackend | None = None) -> NDArray[np.intp]:
    """:func:`broadcast_order` of each (m, 32) day key, as (m, 96)."""
    crypto = crypto or crypto_backend()
    order_keys = crypto.hmac_sha256(day_keys, _ORDER_KEY)
    stream = crypto.aes_ctr(order_keys, np.zeros((order_keys.shape[0], 16), np.uint8), EPHIDS_PER_DAY * 8)
    return np.argsort(stream.view(">u8"), axis=1, kind="stable")


def broadcast_ephids(day_keys: NDArray[np.uint8], crypto: CryptoBackend | None = None) -> NDArray[np.uint8]:
    """The EphIDs of each (m, 32) day key in broadcast order (epoch i's at [:, i]), as (m, 96, 16)."""
    crypto = crypto or crypto_backend()
    ephids = ephids_of(day_keys, crypto)
    out: NDArray[np.uint8] = np.take_along_axis(
        ephids, broadcast_orders(day_keys, crypto)[:, :, None], axis=1
    )
    return out


def day_keys_after(
    day_keys: NDArray[np.uint8], steps: int, crypto: CryptoBackend | None = None
) -> NDArray[np.uint8]:
    """Each (m, 32) SK_t chained ``steps`` days forward (SK_{t+steps}), as (m, 32)."""
    chain = (crypto or crypto_backend()).sha256_chain(day_keys, steps + 1)
    return np.ascontiguousarray(chain[:, -1])


@dataclass(frozen=True, slots=True)
class Dp3tDayKey:
    """SK_t with the UTC midnight ``day`` it belongs to: the phone's key, or a published (SK_t, day) pair.

    The phone keeps the key of its first day and chains forward; a diagnosed user publishes the key of
    the first day they were contagious, from which every later day's key follows.
    """

    key: bytes
    day: int

    @property
    def key_data(self) -> bytes:
        """The published key's bytes (as :class:`~proximity.schemes.published.DiagnosisKey` names them)."""
        return self.key

    @property
    def start(self) -> int:
        """The UTC midnight the key starts on (as :class:`~proximity.schemes.published.PublishedKey`
        names it)."""
        return self.day

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", require_bytes("DP-3T day key", self.key, KEY_LENGTH))
        if isinstance(self.day, bool) or not isinstance(self.day, int):
            raise InvalidKeyError(f"day must be an int (unix seconds of a UTC midnight), got {self.day!r}")
        if self.day < 0 or self.day % SECONDS_PER_DAY:
            raise InvalidKeyError(f"day must be a UTC midnight (a multiple of 86400), got {self.day}")

    @classmethod
    def generate(cls, at: float, *, random_bytes: Callable[[int], bytes] = os.urandom) -> Dp3tDayKey:
        """A fresh SK_0 from a CSPRNG for the UTC day containing ``at``."""
        return cls(random_bytes(KEY_LENGTH), utc_midnight(at))

    def on_day(self, at: float) -> Dp3tDayKey:
        """The key of the UTC day containing ``at``: this one chained forward (never backward)."""
        midnight = utc_midnight(at)
        if midnight < self.day:
            raise NoKeyForTimeError("dp3t", at, f"the key starts on day {self.day}")
        steps = (midnight - self.day) // SECONDS_PER_DAY
        return Dp3tDayKey(day_keys_after(_key_row(self.key), steps).tobytes(), midnight)

    def __repr__(self) -> str:
        return f"Dp3tDayKey(key=<{KEY_LENGTH} bytes>, day={self.day})"


class Dp3tScheme:
    """DP-3T as a :class:`~proximity.schemes.base.RotatingIdScheme` over one day's :class:`Dp3tDayKey`."""

    name = "dp3t"
    id_length = EPHID_LENGTH
    slot_seconds = EPOCH_SECONDS
    keys_per_day = EPHIDS_PER_DAY

    def ids_of_key(self, key: Dp3tDayKey) -> IdBatch:
        """The day's EphIDs in broadcast order, each with its 15-minute epoch."""
        ids = broadcast_ephids(_key_row(key.key))[0]
        starts = key.day + np.arange(EPHIDS_PER_DAY, dtype=np.int64) * EPOCH_SECONDS
        return IdBatch(self.name, ids, starts, starts + EPOCH_SECONDS)

    def id_at(self, key: Dp3tDayKey, at: float) -> EphemeralId:
        """The EphID broadcast at ``at``; the key is chained forward to that day if it is older."""
        day_key = key.on_day(at)
        epoch = int((at - day_key.day) // EPOCH_SECONDS)
        index = int(broadcast_order(day_key.key)[epoch])
        value = ephids_for_day(day_key.key)[index].tobytes()
        start = day_key.day + epoch * EPOCH_SECONDS
        return EphemeralId(self.name, value, start, start + EPOCH_SECONDS)


DP3T = Dp3tScheme()


class Dp3tKeys:
    """A key ring's DP-3T keys (a :class:`~proximity.schemes.keys.SchemeKeys`): SK of the ring's first
    day, chained forward; a published SK_t reveals its day and every later one. A ring saved before
    DP-3T gains its key at its next roll."""

    key_length = KEY_LENGTH
    made_at_install = False

    def rolled(
        self, state: Dp3tDayKey | None, at: float, settings: object, random_bytes: RandomBytes
    ) -> Dp3tDayKey:
        return state or Dp3tDayKey.generate(at, random_bytes=random_bytes)

    def checked(self, state: Any) -> Dp3tDayKey:
        if not isinstance(state, Dp3tDayKey):
            raise InvalidKeyError(f"a key ring's DP-3T key must be a Dp3tDayKey, got {state!r:.60}")
        return state

    def to_json(self, state: Dp3tDayKey) -> dict[str, Any]:
        return {"key": state.key.hex(), "day": state.day}

    def from_json(self, value: Any) -> Dp3tDayKey:
        return Dp3tDayKey(bytes.fromhex(value["key"]), value["day"])

    def from_key(self, key: bytes, start: float, rolling_period: int) -> Dp3tDayKey:
        return Dp3tDayKey(key, utc_midnight(start))

    def first_time(self, state: Dp3tDayKey) -> int:
        return state.day

    def last_time(self, state: Dp3tDayKey) -> None:
        return None

    def upcoming(self, state: Dp3tDayKey, settings: object, at: float, count: int) -> IdTable:
        """EphIDs (each day's in broadcast order) from the epoch containing ``at`` on, the key chained
        forward to ``at``'s day and on across midnights."""
        if count < 0:
            raise ValueError(f"count must be non-negative, got {count}")
        if utc_midnight(at) < state.day:
            return empty_table(DP3T.name, EPHID_LENGTH)
        batches: list[IdBatch] = []
        day_key, found = state.on_day(at), 0
        while found < count:
            batch, _ = upcoming_of(DP3T.ids_of_key(day_key), None, at, count - found)
            batches.append(batch)
            found += len(batch)
            day_key = day_key.on_day(day_key.day + SECONDS_PER_DAY)
        return joined(DP3T.name, EPHID_LENGTH, batches), None

    def id_table(self, state: Dp3tDayKey, settings: object, first_day: int, days: int) -> IdTable:
        batches = []
        day_key = state.on_day(max(first_day, state.day))
        for _ in range((first_day + days * SECONDS_PER_DAY - day_key.day) // SECONDS_PER_DAY):
            batches.append(DP3T.ids_of_key(day_key))
            day_key = day_key.on_day(day_key.day + SECONDS_PER_DAY)
        return joined(DP3T.name, EPHID_LENGTH, batches), None

    def published(self, state: Dp3tDayKey, settings: object, first_day: int, days: int) -> list[Any]:
        """SK of the first of those days (never before the ring's own first day); nothing if they end
        before it."""
        if first_day + days * SECONDS_PER_DAY <= state.day:
            return []
        return [state.on_day(max(first_day, state.day))]

    def key_data(self, state: Dp3tDayKey) -> list[bytes]:
        return [state.key]

    def id_tables(
        self, state: Dp3tDayKey, keys: NDArray[np.uint8], settings: object, start: int, end: int
    ) -> IdTables:
        """Day by day from the key's first, each day's EphIDs in broadcast order for every key at once."""
        n, crypto = int(keys.shape[0]), crypto_backend()
        ids, starts = [], []
        day = max(utc_midnight(start), state.day)
        day_keys = day_keys_after(
            np.ascontiguousarray(keys[:, 0]), (day - state.day) // SECONDS_PER_DAY, crypto
        )
        while day < end:
            epochs = day + np.arange(EPHIDS_PER_DAY, dtype=np.int64) * EPOCH_SECONDS
            keep = np.flatnonzero((epochs >= start) & (epochs < end))
            if keep.size:
                ids.append(broadcast_ephids(day_keys, crypto)[:, keep[0] : keep[-1] + 1])
                starts.append(epochs[keep[0] : keep[-1] + 1])
            day += SECONDS_PER_DAY
            day_keys = day_keys_after(day_keys, 1, crypto)
        if not ids:
            return IdTables(np.zeros((n, 0, EPHID_LENGTH), np.uint8), np.zeros(0, np.int64), None)
        return IdTables(np.concatenate(ids, axis=1), np.concatenate(starts), None)

    def published_many(
        self, state: Dp3tDayKey, keys: NDArray[np.uint8], settings: object, first_day: int, days: int
    ) -> list[Any]:
        """Each key's SK of the first of those days (the same day for all)."""
        out: list[Any] = []
        for one in self.published(state, settings, first_day, days):
            chained = day_keys_after(
                np.ascontiguousarray(keys[:, 0]), (one.day - state.day) // SECONDS_PER_DAY
            )
            out += [Dp3tDayKey(key, one.day) for key in byte_rows(chained)]
        return out

    def describe(self, state: Dp3tDayKey) -> KeyDescription:
        return f"DP-3T day key SK {state.key.hex()} of {format_utc(state.day)}"

    def show_json(self, state: Dp3tDayKey | None) -> dict[str, Any]:
        return {"dp3t": None if state is None else self.to_json(state)}


DP3T_KEYS = Dp3tKeys()
