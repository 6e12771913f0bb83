"""GAEN's and Bluezone's key state in a key ring (each a :class:`~proximity.schemes.keys.SchemeKeys`),
one device's or, through the batch methods, many devices' made alike (:class:`~proximity.keyring.KeyRings`).

Each scheme's record names its key state (``SchemeRecord.keys``); the ring, ``proximity ids``, the CLI
and the simulator go through that, never through a table keyed by scheme name. GAEN's and Bluezone's
live here because GAEN's publishes :class:`~proximity.schemes.published.DiagnosisKey` values, which sit
above the scheme modules; a scheme whose keys need nothing above its own module keeps them there.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from proximity.crypto import crypto_backend
from proximity.errors import InvalidKeyError
from proximity.schemes.base import IdBatch
from proximity.schemes.bluezone import (
    ID_LENGTH as BLUEZONE_ID_LENGTH,
)
from proximity.schemes.bluezone import KEY_LENGTH as BLUEZONE_KEY_LENGTH
from proximity.schemes.bluezone import (
    BluezoneBaseKey,
    BluezoneDailyKey,
    BluezoneScheme,
    chained_keys,
    ids_of_records,
)
from proximity.schemes.gaen import (
    AEM_LENGTH,
    ENIN_SECONDS,
    GAEN,
    RPI_LENGTH,
    TEK_LENGTH,
    TemporaryExposureKey,
    aem_keystreams,
    derive_aemks,
    derive_rpiks,
    en_interval_number,
    padded_blocks,
)
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
from proximity.schemes.published import DiagnosisKey, KeyBatch, ReportType
from proximity.times import SECONDS_PER_DAY, format_utc, utc_midnight

if TYPE_CHECKING:
    from proximity.keyring.model import KeyRingSettings

__all__ = ["BLUEZONE_KEYS", "GAEN_KEYS", "IdTable"]

GaenState = tuple[TemporaryExposureKey, ...]


def _ordered(keys: GaenState | list[TemporaryExposureKey]) -> GaenState:
    ordered = tuple(sorted(keys, key=lambda k: k.rolling_start_interval_number))
    for earlier, later in itertools.pairwise(ordered):
        if later.start < earlier.end:
            raise InvalidKeyError("GAEN keys in a key ring must not overlap")
    return ordered


class GaenKeys:
    """One TEK per UTC day, kept ``retention_days``; IDs and AEMs from each."""

    key_length = TEK_LENGTH
    made_at_install = False

    def rolled(
        self, state: GaenState | None, at: float, settings: KeyRingSettings, random_bytes: RandomBytes
    ) -> GaenState:
        """A key covers ``at`` (new keys roll at UTC midnight); keys past retention are dropped."""
        held = state or ()
        horizon = utc_midnight(at) - (settings.retention_days - 1) * SECONDS_PER_DAY
        keys = [key for key in held if key.end > horizon]
        if not any(key.covers(at) for key in held):
            if keys and keys[-1].end > at:
                raise InvalidKeyError(
                    f"the key ring holds GAEN keys later than unix time {at:g}; it cannot roll back in time"
                )
            keys.append(TemporaryExposureKey.generate(at, random_bytes=random_bytes))
        return _ordered(keys)

    def checked(self, state: Any) -> GaenState:
        """TEKs in order, none overlapping another."""
        if not isinstance(state, tuple | list) or not all(isinstance(k, TemporaryExposureKey) for k in state):
            raise InvalidKeyError(
                f"a key ring's GAEN keys must be a sequence of TemporaryExposureKey, got {state!r:.60}"
            )
        return _ordered(state)

    def to_json(self, state: GaenState) -> list[dict[str, Any]]:
        return [
            {
                "key_data": key.key_data.hex(),
                "rolling_start_interval_number": key.rolling_start_interval_number,
                "rolling_period": key.rolling_period,
            }
            for key in state
        ]

    def from_json(self, value: Any) -> GaenState:
        return _ordered(
            [
                TemporaryExposureKey(
                    bytes.fromhex(entry["key_data"]),
                    entry["rolling_start_interval_number"],
                    entry["rolling_period"],
                )
                for entry in value
            ]
        )

    def from_key(self, key: bytes, start: float, rolling_period: int) -> GaenState:
        return (TemporaryExposureKey(key, en_interval_number(start), rolling_period),)

    def first_time(self, state: GaenState) -> int | None:
        return min((key.start for key in state), default=None)

    def last_time(self, state: GaenState) -> int | None:
        return max((key.end for key in state), default=None)

    def upcoming(self, state: GaenState, settings: KeyRingSettings, at: float, count: int) -> IdTable:
        batches: list[IdBatch] = []
        aems: list[NDArray[np.uint8]] = []
        found = 0
        for key in state:
            if found == count:
                break
            if key.end > at:
                whole = GAEN.ids_of_key(key)
                batch, aem = upcoming_of(
                    whole, GAEN.aems_of_key(key, whole, settings.gaen_metadata), at, count - found
                )
                batches.append(batch)
                aems += [] if aem is None else [aem]
                found += len(batch)
        if not batches:
            return empty_table(GAEN.name, GAEN.id_length)
        return joined(GAEN.name, GAEN.id_length, batches), np.concatenate(aems)

    def id_table(self, state: GaenState, settings: KeyRingSettings, first_day: int, days: int) -> IdTable:
        batches = [GAEN.ids_of_key(key) for key in state]
        metadata = settings.gaen_metadata
        aems = [GAEN.aems_of_key(k, b, metadata) for k, b in zip(state, batches, strict=True)]
        return joined(GAEN.name, GAEN.id_length, batches), np.concatenate(aems) if aems else None

    def published(self, state: GaenState, settings: KeyRingSettings, first_day: int, days: int) -> list[Any]:
        return [DiagnosisKey(key, report_type=ReportType.CONFIRMED_TEST) for key in state]

    def key_data(self, state: GaenState) -> list[bytes]:
        return [key.key_data for key in state]

    def id_tables(
        self, state: GaenState, keys: NDArray[np.uint8], settings: KeyRingSettings, start: int, end: int
    ) -> IdTables:
        """Per TEK (the same for every device), one HKDF pass for the RPIKs and AEMKs and one AES pass
        for the RPIs of the intervals in the window, one for their AEMs."""
        n, crypto = int(keys.shape[0]), crypto_backend()
        metadata = np.frombuffer(settings.gaen_metadata.to_bytes(), np.uint8)
        first, stop = -(-start // ENIN_SECONDS), -(-end // ENIN_SECONDS)  # intervals starting in the window
        ids, aems, starts = [], [], []
        for column, key in enumerate(state):
            low = max(first, key.rolling_start_interval_number)
            high = min(stop, key.rolling_start_interval_number + key.rolling_period)
            if high <= low:
                continue
            teks = np.ascontiguousarray(keys[:, column])
            blocks = padded_blocks(np.array([low], np.int64), high - low)
            rpis = crypto.aes_ecb(derive_rpiks(teks, crypto), blocks, np.zeros(n, np.intp))
            ids.append(rpis)
            aems.append(aem_keystreams(derive_aemks(teks, crypto), rpis, crypto) ^ metadata)
            starts.append(np.arange(low, high, dtype=np.int64) * ENIN_SECONDS)
        if not ids:
            empty = np.zeros((n, 0, RPI_LENGTH), np.uint8)
            return IdTables(empty, np.zeros(0, np.int64), np.zeros((n, 0, AEM_LENGTH), np.uint8))
        return IdTables(_joined(ids), np.concatenate(starts), _joined(aems))

    def published_many(
        self, state: GaenState, keys: NDArray[np.uint8], settings: KeyRingSettings, first_day: int, days: int
    ) -> KeyBatch:
        """One row per device per TEK, device by device: :meth:`published`'s keys with each device's bytes."""
        one = KeyBatch.from_keys(self.published(state, settings, first_day, days))
        n = int(keys.shape[0])
        return KeyBatch(
            np.ascontiguousarray(keys.reshape(n * len(one), TEK_LENGTH)),
            np.tile(one.rolling_start, n),
            np.tile(one.rolling_period, n),
            np.tile(one.transmission_risk_level, n),
            np.tile(one.report_type, n),
            np.tile(one.days_since_onset, n),
            one.verified,
        )

    def describe(self, state: GaenState) -> KeyDescription:
        rows: list[list[object]] = [
            [k.key_data.hex(), format_utc(k.start), format_utc(k.end), k.rolling_period] for k in state
        ]
        return ["GAEN key", "start (UTC)", "end (UTC)", "intervals"], rows

    def show_json(self, state: GaenState | None) -> dict[str, Any]:
        return {
            "gaen_keys": [
                {
                    "key": key.key_data.hex(),
                    "rolling_start_interval_number": key.rolling_start_interval_number,
                    "rolling_period": key.rolling_period,
                    "start": key.start,
                    "end": key.end,
                }
                for key in state or ()
            ]
        }


class BluezoneKeys:
    """One base key for the install; each day's key by hash chain; a record covers many days."""

    key_length = BLUEZONE_KEY_LENGTH
    made_at_install = True

    def rolled(
        self, state: BluezoneBaseKey | None, at: float, settings: object, random_bytes: RandomBytes
    ) -> BluezoneBaseKey:
        return state or BluezoneBaseKey.generate(at, random_bytes=random_bytes)

    def checked(self, state: Any) -> BluezoneBaseKey:
        if not isinstance(state, BluezoneBaseKey):
            raise InvalidKeyError(f"a key ring's Bluezone key must be a BluezoneBaseKey, got {state!r:.60}")
        return state

    def to_json(self, state: BluezoneBaseKey) -> dict[str, Any]:
        return {"base_key": state.key.hex(), "base_day": state.base_day}

    def from_json(self, value: Any) -> BluezoneBaseKey:
        return BluezoneBaseKey(bytes.fromhex(value["base_key"]), value["base_day"])

    def from_key(self, key: bytes, start: float, rolling_period: int) -> BluezoneBaseKey:
        return BluezoneBaseKey(key, utc_midnight(start))

    def first_time(self, state: BluezoneBaseKey) -> int:
        return state.base_day

    def last_time(self, state: BluezoneBaseKey) -> None:
        return None

    def upcoming(self, state: BluezoneBaseKey, settings: KeyRingSettings, at: float, count: int) -> IdTable:
        if utc_midnight(at) < state.base_day:
            return empty_table(BluezoneScheme.name, BluezoneScheme.id_length)
        ids_per_day = settings.bluezone_ids_per_day
        record = state.record(at, 1 + math.ceil(count / ids_per_day), ids_per_day)
        return upcoming_of(BluezoneScheme(ids_per_day).ids_of_key(record), None, at, count)

    def id_table(
        self, state: BluezoneBaseKey, settings: KeyRingSettings, first_day: int, days: int
    ) -> IdTable:
        records: list[BluezoneDailyKey] = self.published(state, settings, first_day, days)
        if not records:
            return empty_table(BluezoneScheme.name, BluezoneScheme.id_length)
        (record,) = records
        return BluezoneScheme(record.ids_per_day).ids_of_key(record), None

    def published(
        self, state: BluezoneBaseKey, settings: KeyRingSettings, first_day: int, days: int
    ) -> list[Any]:
        """One record from the first of those days (never before install); nothing if they end before."""
        first = max(utc_midnight(first_day), state.base_day)
        end = utc_midnight(first_day) + days * SECONDS_PER_DAY
        if end <= first:
            return []
        return [state.record(first, (end - first) // SECONDS_PER_DAY, settings.bluezone_ids_per_day)]

    def key_data(self, state: BluezoneBaseKey) -> list[bytes]:
        return [state.key]

    def id_tables(
        self, state: BluezoneBaseKey, keys: NDArray[np.uint8], settings: KeyRingSettings, start: int, end: int
    ) -> IdTables:
        """The record :meth:`id_table` would take over the window's days, for every base key at once."""
        n = int(keys.shape[0])
        first_day = utc_midnight(start)
        days = (utc_midnight(max(start, end - 1)) - first_day) // SECONDS_PER_DAY + 1
        records: list[BluezoneDailyKey] = self.published(state, settings, first_day, days)
        if not records or end <= start:
            return IdTables(np.zeros((n, 0, BLUEZONE_ID_LENGTH), np.uint8), np.zeros(0, np.int64), None)
        (record,) = records
        slot = record.slot_seconds
        starts = record.time_start + np.arange(record.days * record.ids_per_day, dtype=np.int64) * slot
        keep = np.flatnonzero((starts >= start) & (starts < end) & (starts < record.time_end))
        if not keep.size:
            return IdTables(np.zeros((n, 0, BLUEZONE_ID_LENGTH), np.uint8), np.zeros(0, np.int64), None)
        daily = self._daily_keys(state, keys, record)
        ids = ids_of_records(daily, int(keep[-1]) + 1, record.ids_per_day)[:, keep[0] :]
        return IdTables(np.ascontiguousarray(ids), starts[keep[0] : keep[-1] + 1], None)

    def published_many(
        self,
        state: BluezoneBaseKey,
        keys: NDArray[np.uint8],
        settings: KeyRingSettings,
        first_day: int,
        days: int,
    ) -> list[Any]:
        """Each base key's record over those days (the same days for all)."""
        records: list[BluezoneDailyKey] = self.published(state, settings, first_day, days)
        out: list[Any] = []
        for record in records:
            daily = self._daily_keys(state, keys, record)
            out += [
                BluezoneDailyKey(key, record.time_start, record.time_end, record.ids_per_day)
                for key in byte_rows(daily)
            ]
        return out

    @staticmethod
    def _daily_keys(
        state: BluezoneBaseKey, keys: NDArray[np.uint8], record: BluezoneDailyKey
    ) -> NDArray[np.uint8]:
        """The daily key of the record's first day of each base key (a column of ``keys``)."""
        steps = (record.time_start - state.base_day) // SECONDS_PER_DAY
        return chained_keys(np.ascontiguousarray(keys[:, 0]), steps)

    def describe(self, state: BluezoneBaseKey) -> KeyDescription:
        return f"Bluezone base key {state.key.hex()} installed {format_utc(state.base_day)}"

    def show_json(self, state: BluezoneBaseKey | None) -> dict[str, Any]:
        return {"bluezone": None if state is None else self.to_json(state)}


GAEN_KEYS = GaenKeys()
BLUEZONE_KEYS = BluezoneKeys()


def _joined(parts: list[NDArray[np.uint8]]) -> NDArray[np.uint8]:
    """(n, s_i, w) parts side by side, (n, sum s_i, w); one part as it is."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
