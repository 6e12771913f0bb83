"""The encounter log: every sighting kept safely in one SQLite file (an edge adapter; stdlib sqlite3).

Why SQLite: one file, atomic transactions, and WAL mode lets a running node write while a ``match`` run
reads, without "database is locked". Each batch is one ``BEGIN IMMEDIATE`` transaction with one
prepared ``executemany``, which is both the fast path (>= 200,000 rows/s) and the crash-safety unit: a
batch is either wholly in the log or not at all.

Bad rows: by default (``on_bad="raise"``) a batch with any impossible row is refused whole with
:class:`~proximity.errors.InvalidBatchError` naming every bad row, and nothing is written;
``on_bad="skip"`` writes the valid rows and reports the bad ones in the :class:`IngestReport`.
A valid row is never dropped because a neighbour was bad without the caller being told.
"""

from __future__ import annotations

import functools
import math
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, TypeVar, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from proximity.errors import EncounterLogCorruptError, InvalidBatchError, InvalidTimeError
from proximity.log import id_blocks
from proximity.log.connection import guard, integrity_check, open_database, snapshot, transaction
from proximity.log.dedup import LastKept
from proximity.log.matchable import LogSightings
from proximity.log.schema import SCHEME_CODES, SCHEME_NAMES_BY_CODE
from proximity.schemes.gaen import AEM_LENGTH
from proximity.schemes.registry import RETENTION_DAYS
from proximity.sighting_columns import SightingColumns, columns_of
from proximity.sightings import Observations, Sighting, record_of
from proximity.times import SECONDS_PER_DAY
from proximity.times import now as wall_clock

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "EncounterLog",
    "ExposureRecord",
    "IngestReport",
    "LogStats",
    "PruneReport",
]

DEFAULT_RETENTION_DAYS = RETENTION_DAYS
_F = TypeVar("_F", bound=Callable[..., Any])
_ROWS_PER_STATEMENT = 128  # rows per INSERT; 128 x 7 columns stays below SQLite's old 999-variable limit


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one batch did: rows written, rows dropped as duplicates, rows refused (with reasons)."""

    written: int
    duplicates: int = 0
    bad_rows: tuple[int, ...] = ()
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PruneReport:
    sightings: int
    exposures: int
    cutoff: float


@dataclass(frozen=True, slots=True)
class LogStats:
    sightings: int
    distinct_ids: int
    by_scheme: Mapping[str, int]
    first_time: float | None
    last_time: float | None
    exposures: int
    schema_version: int


@dataclass(frozen=True, slots=True)
class ExposureRecord:
    """An exposure found later by matching: one published key's sightings on one UTC day."""

    scheme: str
    key: bytes
    day: int
    first_time: float
    last_time: float
    sightings: int
    found_at: float
    verdict: str | None = None  # the estimator's verdict as JSON text
    row_id: int | None = None


def _guarded(method: _F) -> _F:
    """Run a public method under :meth:`EncounterLog._guard`."""

    @functools.wraps(method)
    def wrapper(self: EncounterLog, *args: Any, **kwargs: Any) -> Any:
        with self._guard():
            return method(self, *args, **kwargs)

    return cast(_F, wrapper)


class EncounterLog:
    """One SQLite encounter log. Open with ``EncounterLog(path)`` (creates it) or ``create=False``.

    A log is used from one thread; open one per process (a writer and any number of readers may have
    the same file open at once). ``timeout`` is how long a writer waits for another writer's lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        timeout: float = 30.0,
        check: bool = False,
    ) -> None:
        self.path = str(path)
        self._dedup = LastKept()
        self._db = open_database(self.path, create=create, timeout=timeout, check=check)

    # -- life cycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EncounterLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------------

    @_guarded
    def add(
        self,
        sightings: Iterable[Sighting],
        *,
        dedup_seconds: float | None = None,
        on_bad: Literal["raise", "skip"] = "raise",
        source: int | None = None,
    ) -> IngestReport:
        """Write Sightings in one transaction (all schemes at once). Sightings validate themselves.

        ``source`` is a replayed capture's id from :meth:`begin_source` (None for a live scan)."""
        by_scheme: dict[str, list[Sighting]] = {}
        positions: dict[str, list[int]] = {}  # the caller's row of every regrouped row
        for number, sighting in enumerate(sightings):
            if not isinstance(sighting, Sighting):
                raise TypeError(f"expected Sighting, got {type(sighting).__name__}")
            by_scheme.setdefault(sighting.scheme, []).append(sighting)
            positions.setdefault(sighting.scheme, []).append(number)
        batches = [columns_of(scheme, rows) for scheme, rows in by_scheme.items()]
        return self._write(
            batches, dedup_seconds, on_bad, [positions[scheme] for scheme in by_scheme], source
        )

    @_guarded
    def add_columns(
        self,
        scheme: str,
        ids: NDArray[np.uint8] | Sequence[bytes],
        times: ArrayLike,
        rssi: ArrayLike | None = None,
        *,
        rssi_known: NDArray[np.bool_] | None = None,
        aem: NDArray[np.uint8] | None = None,
        has_aem: NDArray[np.bool_] | None = None,
        address: Sequence[str | None] | None = None,
        own_id: Sequence[bytes | None] | None = None,
        dedup_seconds: float | None = None,
        on_bad: Literal["raise", "skip"] = "raise",
    ) -> IngestReport:
        """Write one scheme's sightings given column-wise (the fast path).

        ``ids`` is an (n, L) uint8 array or a sequence of byte strings. ``rssi`` is in dBm; a NaN or
        out-of-range value is a bad row: say "not reported" with ``rssi_known=False`` (or ``rssi=None``
        for a batch without any). ``aem`` is (n, 4) uint8, stored where ``has_aem`` (GAEN only).
        """
        columns = SightingColumns.build(scheme, ids, times, rssi, rssi_known, aem, has_aem, address, own_id)
        return self._write([columns], dedup_seconds, on_bad)

    def _write(
        self,
        batches: list[SightingColumns],
        dedup_seconds: float | None,
        on_bad: Literal["raise", "skip"],
        origins: list[list[int]] | None = None,
        source: int | None = None,
    ) -> IngestReport:
        """Write ``batches`` in one transaction; ``origins[b][i]`` is the caller's position of row ``i``
        of batch ``b`` (default: the batches' rows one after the other), used in bad-row reports."""
        if on_bad not in ("raise", "skip"):
            raise ValueError(f"on_bad must be 'raise' or 'skip', got {on_bad!r}")
        if dedup_seconds is not None and not (math.isfinite(dedup_seconds) and dedup_seconds > 0):
            raise ValueError(f"dedup_seconds must be a positive number of seconds, got {dedup_seconds!r}")
        bad_rows: list[int] = []
        reasons: list[str] = []
        offset = 0
        for b, batch in enumerate(batches):
            rows, why = batch.problems()
            if origins is None:
                bad_rows.extend(int(row) + offset for row in rows)
            else:
                bad_rows.extend(origins[b][row] for row in rows.tolist())
            reasons.extend(why)
            offset += batch.n
        order = np.argsort(bad_rows, kind="stable").tolist()
        bad_rows, reasons = [bad_rows[i] for i in order], [reasons[i] for i in order]
        if bad_rows and on_bad == "raise":
            raise InvalidBatchError(tuple(bad_rows), tuple(reasons), offset)
        duplicates = 0
        written = 0
        try:
            with self._transaction():
                for batch in batches:
                    keep = batch.valid
                    if dedup_seconds is not None:
                        keep, dropped = self._dedup.keep(
                            SCHEME_CODES[batch.scheme], batch.id_bytes, batch.times, keep, dedup_seconds
                        )
                        duplicates += dropped
                    columns = batch.columns(keep)
                    if source is not None:
                        columns["source"] = [source] * int(keep.sum())
                    _insert(self._db, batch.scheme, columns)
                    kept_ids = cast(list[bytes], columns["observed_id"])
                    id_blocks.append(self._db, SCHEME_CODES[batch.scheme], kept_ids, batch.times[keep])
                    written += int(keep.sum())
        except BaseException:
            self._dedup.clear()  # the cache may hold rows that were never committed
            raise
        return IngestReport(written, duplicates, tuple(bad_rows), tuple(reasons))

    def _transaction(self) -> AbstractContextManager[None]:
        """The one write transaction (:func:`proximity.log.connection.transaction`)."""
        return transaction(self._db, self.path)

    @_guarded
    def record_exposures(self, records: Iterable[ExposureRecord]) -> int:
        """Keep exposures found by matching (one transaction); returns how many were written. A later
        finding for the same key and day replaces the earlier one (matching again adds no copy)."""
        rows = [
            (
                SCHEME_CODES[r.scheme],
                r.key,
                r.day,
                r.first_time,
                r.last_time,
                r.sightings,
                r.found_at,
                r.verdict,
            )
            for r in records
        ]
        with self._transaction():
            self._db.executemany(
                "DELETE FROM exposures WHERE scheme = ? AND key = ? AND day = ?", [row[:3] for row in rows]
            )
            self._db.executemany(
                "INSERT INTO exposures (scheme, key, day, first_time, last_time, sightings, found_at, "
                "verdict) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    @_guarded
    def prune(self, days: float = DEFAULT_RETENTION_DAYS, *, now: float | None = None) -> PruneReport:
        """Delete sightings (and exposures) older than ``days`` before ``now`` (default: the wall clock).

        Pass ``now`` when replaying or auditing old data, so it is not pruned away by accident.
        """
        if isinstance(days, bool) or not isinstance(days, int | float):
            raise TypeError(f"days must be a number, got {type(days).__name__}")
        if not (math.isfinite(days) and days >= 0):
            raise InvalidTimeError(f"days must be a finite non-negative number of days, got {days!r}")
        at = wall_clock() if now is None else float(now)
        if not math.isfinite(at):
            raise InvalidTimeError(f"now must be finite unix seconds, got {now!r}")
        cutoff = at - days * SECONDS_PER_DAY
        if not math.isfinite(cutoff):
            raise InvalidTimeError(f"days={days!r} before now={at!r} is not a representable time")
        with self._transaction():
            touched = id_blocks.affected_buckets(self._db, "time < ?", (cutoff,))
            sightings = self._db.execute("DELETE FROM sightings WHERE time < ?", (cutoff,)).rowcount
            id_blocks.resync(self._db, touched)
            exposures = self._db.execute("DELETE FROM exposures WHERE last_time < ?", (cutoff,)).rowcount
        self._dedup.forget_before(cutoff)
        return PruneReport(sightings, exposures, cutoff)

    @_guarded
    def begin_source(self, digest: bytes, name: str = "") -> int | None:
        """Start adding a replayed capture known by its content hash: its id for :meth:`add`'s
        ``source``, or None if it was replayed whole before (so a re-run adds nothing).

        Rows of an earlier replay of it that never completed (the process was killed) are removed
        here, in one transaction, so the new replay starts from none of them.
        """
        if not isinstance(digest, bytes) or not digest:
            raise TypeError("digest must be non-empty bytes (e.g. the capture's SHA-256)")
        with self._transaction():
            row = self._db.execute("SELECT id, complete FROM sources WHERE sha256 = ?", (digest,)).fetchone()
            if row is not None and row[1]:
                return None
            if row is None:
                source = self._db.execute(
                    "INSERT INTO sources (sha256, name, started_at) VALUES (?, ?, ?)",
                    (digest, name, wall_clock()),
                ).lastrowid
                assert source is not None
            else:
                source = int(row[0])
                touched = id_blocks.affected_buckets(self._db, "source = ?", (source,))
                self._db.execute("DELETE FROM sightings WHERE source = ?", (source,))
                id_blocks.resync(self._db, touched)
        self._dedup.clear()  # the rows behind the de-dup cache may have been removed
        return int(source)

    @_guarded
    def finish_source(self, source: int) -> int:
        """Mark a replayed capture complete (after its last batch committed); returns its row count."""
        with self._transaction():
            count = self._db.execute("SELECT count(*) FROM sightings WHERE source = ?", (source,)).fetchone()[
                0
            ]
            self._db.execute("UPDATE sources SET complete = 1, sightings = ? WHERE id = ?", (count, source))
        return int(count)

    @_guarded
    def wipe(self) -> None:
        """Delete every sighting and exposure (the file stays, empty, and is compacted)."""
        with self._transaction():
            self._db.execute("DELETE FROM sightings")
            self._db.execute("DELETE FROM id_blocks")
            self._db.execute("DELETE FROM exposures")
            self._db.execute("DELETE FROM sources")
        self._dedup.clear()
        self._db.execute("VACUUM")

    @_guarded
    def reindex(self) -> int:
        """Rebuild the packed ID store from the sightings, in one transaction; returns the sightings
        packed. Needed only after another program changed sightings around the library (its trigger
        then emptied the store, and matching falls back to reading every sighting)."""
        with self._transaction():
            id_blocks.rebuild_all(self._db)
            return int(self._db.execute("SELECT count(*) FROM sightings").fetchone()[0])

    # -- reading ------------------------------------------------------------------------------------

    @_guarded
    def observations(
        self, scheme: str, since: float | None = None, until: float | None = None
    ) -> Observations:
        """The sightings of ``scheme`` with ``since <= time < until``, column-wise, ordered by time."""
        length = record_of(scheme).id_length  # an unknown scheme is an InvalidSightingError
        lo = -math.inf if since is None else float(since)
        hi = math.inf if until is None else float(until)
        rows = self._db.execute(
            "SELECT id, observed_id, time, rssi, metadata FROM sightings "
            "WHERE scheme = ? AND time >= ? AND time < ? ORDER BY time, id",
            (SCHEME_CODES[scheme], lo, hi),
        ).fetchall()
        return self._observations(scheme, length, rows)

    def snapshot(self) -> AbstractContextManager[None]:
        """Reads inside see one state of the log while other processes write (a read transaction).
        Take :meth:`matchable` sources inside one, so a match's two passes see the same sightings."""
        return snapshot(self._db, self.path)

    def matchable(self, scheme: str) -> LogSightings | Observations:
        """``scheme``'s sightings for a matcher: a :class:`~proximity.matching.source.SightingSource`
        over the side store (IDs now, full sightings of found IDs later, while the log is open), or
        all the sightings when the side store disagrees with them (a file written by other means)."""
        blocks = self.packed_ids(scheme)
        return self.observations(scheme) if blocks is None else LogSightings(self, scheme, blocks)

    @_guarded
    def packed_ids(self, scheme: str) -> id_blocks.IdBlocks | None:
        """Every sighting's ID of ``scheme`` with its hour, read from the side store in a few blobs
        (:mod:`proximity.log.id_blocks`); None if the store disagrees with the sightings."""
        with self.snapshot():  # the blocks and the count they are checked against: one state
            return id_blocks.read(self._db, SCHEME_CODES[scheme], record_of(scheme).id_length)

    @_guarded
    def id_store_in_step(self) -> dict[str, bool]:
        """Per scheme the log holds sightings of: whether its packed IDs agree with them (else
        :meth:`reindex` rebuilds them; matching reads every sighting until then)."""
        with self.snapshot():
            codes = [int(r[0]) for r in self._db.execute("SELECT DISTINCT scheme FROM sightings")]
            return {
                scheme: self.packed_ids(scheme) is not None for scheme in sorted(map(self._scheme, codes))
            }

    @_guarded
    def observations_in(
        self, scheme: str, spans: Sequence[tuple[float, float]], ids: set[bytes]
    ) -> Observations:
        """The sightings of ``scheme`` in the time ``spans`` ([lo, hi), sorted, disjoint) whose ID is in
        ``ids``, column-wise, ordered by time (what a matcher needs of the IDs it found)."""
        length = record_of(scheme).id_length
        code = SCHEME_CODES[scheme]
        rows: list[Any] = []
        for lo, hi in spans:
            cursor = self._db.execute(
                "SELECT id, observed_id, time, rssi, metadata FROM sightings "
                "WHERE scheme = ? AND time >= ? AND time < ? ORDER BY time, id",
                (code, lo, hi),
            )
            rows += [row for row in cursor if row[1] in ids]
        return self._observations(scheme, length, rows)

    def _observations(self, scheme: str, length: int, rows: list[Any]) -> Observations:
        """Rows (id, observed_id, time, rssi, metadata) as checked columns."""
        n = len(rows)
        if n == 0:
            return Observations(
                scheme,
                np.zeros((0, length), np.uint8),
                np.zeros(0),
                np.zeros(0),
                np.zeros((0, AEM_LENGTH), np.uint8),
                np.zeros(0, np.bool_),
                np.zeros(0, np.int64),
            )
        row_ids, ids, times, rssi, metadata = zip(*rows, strict=True)
        # what SQLite hands back is not typed: check it (vectorised; per row only to name a bad one)
        joined_ids = self._blobs(row_ids, ids, length, f"a {scheme} ID")
        id_array = np.frombuffer(joined_ids, dtype=np.uint8).reshape(n, length).copy()
        try:
            time_array = np.asarray(times, dtype=np.float64)
            rssi_array = _nullable_floats(rssi)
            row_id_array = np.asarray(row_ids, dtype=np.int64)
        except (TypeError, ValueError, OverflowError):
            raise EncounterLogCorruptError(
                self.path, "a sighting's id, time or rssi is not a number"
            ) from None
        has_aem = np.fromiter((m is not None for m in metadata), dtype=np.bool_, count=n)
        aem = np.zeros((n, AEM_LENGTH), dtype=np.uint8)
        if has_aem.any():
            with_aem = [(i, m) for i, m in zip(row_ids, metadata, strict=True) if m is not None]
            blobs = self._blobs([i for i, _ in with_aem], [m for _, m in with_aem], AEM_LENGTH, "metadata")
            aem[has_aem] = np.frombuffer(blobs, dtype=np.uint8).reshape(-1, AEM_LENGTH)
        return Observations(
            scheme=scheme,
            ids=id_array,
            times=time_array,
            rssi=rssi_array,
            aem=aem,
            has_aem=has_aem,
            row_ids=row_id_array,
        )

    def _blobs(self, row_ids: Sequence[int], values: Sequence[object], length: int, what: str) -> bytes:
        """``values`` joined, each checked to be ``length`` bytes; else the first bad row is named."""
        try:
            joined = b"".join(cast(Sequence[bytes], values))
        except TypeError:
            joined = b""
        if len(joined) != len(values) * length:
            for row_id, value in zip(row_ids, values, strict=True):
                if not isinstance(value, bytes) or len(value) != length:
                    raise EncounterLogCorruptError(
                        self.path, f"sighting row {row_id}: {what} must be {length} bytes"
                    )
        return joined

    def iter_sightings(self, batch_size: int = 10_000) -> Iterator[Sighting]:
        """Every sighting, oldest row first, as Sighting values (for export); a damaged row or page
        is an :class:`EncounterLogCorruptError` naming it."""
        with self._guard():
            cursor = self._db.execute(
                "SELECT id, scheme, observed_id, time, rssi, metadata, address, own_id "
                "FROM sightings ORDER BY id"
            )
            while rows := cursor.fetchmany(batch_size):
                for row_id, scheme, observed, t, rssi, metadata, address, own in rows:
                    try:
                        sighting = Sighting(self._scheme(scheme), observed, t, rssi, metadata, address, own)
                    except (ValueError, TypeError) as error:
                        raise EncounterLogCorruptError(self.path, f"sighting row {row_id}: {error}") from None
                    yield sighting

    def _scheme(self, code: object) -> str:
        """The scheme of a stored code; an unknown one means the file is damaged (or from elsewhere)."""
        name = SCHEME_NAMES_BY_CODE.get(code) if isinstance(code, int) else None
        if name is None:
            raise EncounterLogCorruptError(self.path, f"unknown scheme code {code!r:.20} in the log")
        return name

    @_guarded
    def exposures(self) -> list[ExposureRecord]:
        return [
            ExposureRecord(self._scheme(s), k, d, f, la, n, at, v, rid)
            for rid, s, k, d, f, la, n, at, v in self._db.execute(
                "SELECT id, scheme, key, day, first_time, last_time, sightings, found_at, verdict "
                "FROM exposures ORDER BY id"
            )
        ]

    @_guarded
    def stats(self) -> LogStats:
        by_scheme = {
            self._scheme(code): count
            for code, count in self._db.execute("SELECT scheme, count(*) FROM sightings GROUP BY scheme")
        }
        distinct = self._db.execute(
            "SELECT count(*) FROM (SELECT DISTINCT scheme, observed_id FROM sightings)"
        ).fetchone()[0]
        first, last = self._db.execute("SELECT min(time), max(time) FROM sightings").fetchone()
        exposures = self._db.execute("SELECT count(*) FROM exposures").fetchone()[0]
        return LogStats(
            sightings=sum(by_scheme.values()),
            distinct_ids=int(distinct),
            by_scheme=by_scheme,
            first_time=first,
            last_time=last,
            exposures=int(exposures),
            schema_version=int(self._db.execute("PRAGMA user_version").fetchone()[0]),
        )

    def integrity_check(self, *, quick: bool = False) -> str:
        """SQLite's ``PRAGMA integrity_check`` (or ``quick_check``): "ok" or the problems found."""
        return integrity_check(self._db, self.path, quick=quick)

    def _guard(self) -> AbstractContextManager[None]:
        """SQLite's complaints as our typed errors (:func:`proximity.log.connection.guard`)."""
        return guard(self.path)


def _insert(db: sqlite3.Connection, scheme: str, columns: dict[str, list[object]]) -> None:
    """One prepared multi-row INSERT run by executemany: ~2x the rate of one statement per row."""
    names = list(columns)
    width = len(names)
    n = len(columns["time"])
    head = f"INSERT INTO sightings (scheme, {', '.join(names)}) VALUES "
    one = f"({SCHEME_CODES[scheme]}, {', '.join('?' * width)})"
    flat: list[object] = [None] * (n * width)
    for position, values in enumerate(columns.values()):
        flat[position::width] = values  # interleave column lists in C, not row by row
    full = n // _ROWS_PER_STATEMENT * _ROWS_PER_STATEMENT
    if full:
        chunked = iter(flat[: full * width])
        db.executemany(
            head + ", ".join([one] * _ROWS_PER_STATEMENT),
            zip(*[chunked] * (width * _ROWS_PER_STATEMENT), strict=True),
        )
    if full < n:
        rest = iter(flat[full * width :])
        db.executemany(head + one, zip(*[rest] * width, strict=True))


def _nullable_floats(values: Sequence[object]) -> NDArray[np.float64]:
    array = np.array(values, dtype=object)
    array[array == None] = np.nan  # noqa: E711 - elementwise comparison
    return array.astype(np.float64)
