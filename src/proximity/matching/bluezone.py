"""Bluezone matching: published daily-key records x observed IDs -> every matched sighting.

A record covers consecutive days from ``time_start``; its IDs roll to the next day's key by one
SHA-256 step every ``ids_per_day`` slots. A sighting counts only inside its ID's own slot, with
inclusive bounds ``[slot_start, slot_start + slot_seconds]`` as the app's SQL query has them. Unlike
the app, which stops at the first hit, every matched sighting is reported.

Per chunk of records, the scheme's own batch crypto (:func:`proximity.schemes.bluezone.ids_of_records`,
SHA-256 chains of the crypto backend, :mod:`proximity.crypto`) gives all IDs of the chunk, which are
probed against the index at once; only the hits are evaluated exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from proximity.crypto import crypto_backend, resolve_backend
from proximity.matching.index import ObservedIdIndex, in_log_order, take_rows
from proximity.matching.pool import Progress, resolve_workers, run_chunks, typed_chunks
from proximity.matching.results import KeyMatch
from proximity.matching.source import SightingSource
from proximity.schemes.bluezone import BLUEZONE, BluezoneDailyKey, ids_of_records
from proximity.sightings import Observations

__all__ = ["BluezoneMatcher", "match_bluezone", "record_ids"]

DEFAULT_RECORD_CHUNK = 128


def _slot_count(record: BluezoneDailyKey) -> int:
    """Slots that start before ``time_end`` (it is exclusive)."""
    slot = record.slot_seconds
    return min(-(-(record.time_end - record.time_start) // slot), record.days * record.ids_per_day)


def _chains(daily_keys: list[bytes], count: int, ids_per_day: int, backend: str | None) -> NDArray[np.uint8]:
    """The first ``count`` IDs of records sharing a shape, as (records, count, 12)."""
    keys = np.frombuffer(b"".join(daily_keys), np.uint8).reshape(len(daily_keys), -1)
    return ids_of_records(keys, count, ids_per_day, crypto_backend(backend))


def record_ids(
    record: BluezoneDailyKey, *, backend: str | None = None
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """All IDs of a record as (k, 12) uint8 with each slot's start (unix seconds)."""
    count = _slot_count(record)
    ids = _chains([record.daily_key], count, record.ids_per_day, backend)[0]
    starts = record.time_start + np.arange(count, dtype=np.int64) * record.slot_seconds
    return ids, starts


@dataclass(frozen=True, slots=True, eq=False)
class BluezoneMatcher:
    """Observations of Bluezone sightings with their index."""

    observations: Observations
    index: ObservedIdIndex
    sorted_times: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    backend: str | None = None  # a proximity.crypto.CHOICES name; None: PROXIMITY_MATCH_BACKEND
    # whether the observations are in (time, row id) order, as a log reads them
    log_order: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        times = self.observations.times
        object.__setattr__(self, "log_order", in_log_order(times, self.observations.row_ids))
        if self.sorted_times.shape != times.shape:
            object.__setattr__(self, "sorted_times", times if self.log_order else np.sort(times))

    @classmethod
    def build(cls, observations: Observations, backend: str | None = None) -> BluezoneMatcher:
        observations.require_scheme(BLUEZONE.name)
        return cls(observations, ObservedIdIndex.build(observations.ids), backend=backend)

    def with_backend(self, backend: str | None) -> BluezoneMatcher:
        return replace(self, backend=backend)

    @property
    def backend_in_use(self) -> str:
        """Which crypto backend computes the ID chains and probes the index ("c", "python:...")."""
        return crypto_backend(self.backend).name

    def match_batch(self, records: Sequence[BluezoneDailyKey]) -> list[KeyMatch]:
        if not records or len(self.index) == 0:
            return []
        # A record with no sighting at all in its span cannot match: skip its hashing (reads the
        # observation times, never the clock).
        low = np.array([r.time_start for r in records], dtype=np.float64)
        high = np.array([r.time_start + _slot_count(r) * r.slot_seconds for r in records], dtype=np.float64)
        inside = np.searchsorted(self.sorted_times, high, side="right") > np.searchsorted(
            self.sorted_times, low
        )
        records = [record for record, keep in zip(records, inside.tolist(), strict=True) if keep]
        shapes: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, record in enumerate(records):
            shapes[_slot_count(record), record.ids_per_day].append(i)
        out: list[KeyMatch] = []
        backend = self.backend
        for (count, ids_per_day), members in shapes.items():
            daily_keys = [records[i].daily_key for i in members]
            ids = _chains(daily_keys, count, ids_per_day, backend).reshape(-1, 12)
            positions, unique = self.index.find(ids, backend=backend)
            owner, slot = np.divmod(positions, count)
            out += self._evaluate([records[i] for i in members], owner, slot, unique)
        return out

    def _evaluate(
        self,
        records: list[BluezoneDailyKey],
        owner: NDArray[np.int64],
        slots: NDArray[np.int64],
        unique: NDArray[np.int64],
    ) -> list[KeyMatch]:
        """Every hit (record ``owner``, its ID ``slots``, the unique ID it hit) at once, as columns:
        a sighting counts inside its ID's own slot (inclusive bounds, as the app's query has them);
        a match per record that keeps any, in record order."""
        obs, index = self.observations, self.index
        hits = np.argsort(owner, kind="stable")  # by record, each record's hits in probe order
        owner, slots, unique = owner[hits], slots[hits], unique[hits]
        begin = index.offsets[unique]
        count = index.offsets[unique + 1] - begin
        hit = np.repeat(np.arange(hits.size), count)
        firsts = np.cumsum(count) - count
        rows = index.rows[np.arange(hit.size) - np.repeat(firsts - begin, count)]
        slot_seconds = np.array([r.slot_seconds for r in records], np.int64)[owner]
        start = np.array([r.time_start for r in records], np.int64)[owner] + slots * slot_seconds
        times = obs.times[rows]
        inside = (times >= start[hit]) & (times <= (start + slot_seconds)[hit])
        rows, hit = rows[inside], hit[inside]
        record = owner[hit]
        if self.log_order:  # each record's rows by position is by (time, row id): nearly sorted
            order = np.argsort(record * np.int64(len(obs)) + rows, kind="stable")
        else:
            order = np.lexsort((obs.row_ids[rows], obs.times[rows], record))
        rows, hit, record = rows[order], hit[order], record[order]
        row_ids, ids = obs.row_ids[rows].astype(np.int64), take_rows(index.unique_ids, unique[hit])
        times, rssi = obs.times[rows].astype(np.float64), obs.rssi[rows].astype(np.float64)
        cuts = np.flatnonzero(np.diff(record)) + 1
        starts = np.concatenate(([0], cuts)).tolist() if record.size else []
        ends = np.concatenate((cuts, [record.size])).tolist() if record.size else []
        return [
            KeyMatch(
                scheme=BLUEZONE.name,
                key=records[r],
                verified=False,
                row_ids=row_ids[a:b],
                ids=ids[a:b],
                times=times[a:b],
                rssi=rssi[a:b],
                tx_power=np.full(b - a, np.nan),
                calibration_confidence=np.full(b - a, -1, dtype=np.int8),
            )
            for r, a, b in zip(record[starts].tolist(), starts, ends, strict=True)
        ]


def match_bluezone(
    records: Iterable[BluezoneDailyKey],
    observations: Observations | BluezoneMatcher | SightingSource,
    *,
    workers: int | None = None,
    chunk_size: int = DEFAULT_RECORD_CHUNK,
    backend: str | None = None,
    progress: Progress | None = None,
) -> list[KeyMatch]:
    """Match daily-key records against observed Bluezone sightings; one :class:`KeyMatch` per record.

    Results are unverified (the records carry no signature), one per distinct record, sorted by daily
    key and start, so they do not depend on ``workers``. ``backend`` (a :data:`proximity.crypto.CHOICES`
    name; default: ``PROXIMITY_MATCH_BACKEND``) changes only the speed.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if isinstance(observations, SightingSource):  # no two-pass path here yet: read every sighting
        observations = observations.everything()
    matcher = (
        observations if isinstance(observations, BluezoneMatcher) else BluezoneMatcher.build(observations)
    )
    matcher = matcher.with_backend(resolve_backend(backend if backend is not None else matcher.backend))
    chunks = typed_chunks(records, chunk_size, BluezoneDailyKey, "records")
    threads = matcher.backend == "c"  # the C chains run without the GIL: threads share the matcher
    found = run_chunks(matcher, chunks, resolve_workers(workers), progress, threads=threads)
    chosen: dict[tuple[bytes, int, int, int], KeyMatch] = {}
    for match in found:
        record = match.key
        assert isinstance(record, BluezoneDailyKey)
        chosen.setdefault((record.daily_key, record.time_start, record.time_end, record.ids_per_day), match)
    return [chosen[k] for k in sorted(chosen)]
