"""The log's columnar side store: every sighting's ID, packed per scheme and hour, for fast matching.

Why: a matcher needs the observed IDs first (to build its index) and the full sightings only of the
few IDs a published key derives. Reading 100,000 sightings as Python row tuples costs ~0.3 s of CPU,
more than the crypto of 100,000 keys; reading the same IDs as a few hundred packed blobs costs
milliseconds (``np.frombuffer``).

The invariant (checked by the tests after every kind of write): the block of (scheme, bucket) holds
the ``observed_id`` of every sighting of that scheme whose hour :func:`bucket_of` its time falls in,
concatenated in some order, and ``count`` says how many. Appends happen in the writer's transaction;
any delete of sightings re-derives the blocks it touched (:func:`resync`), so a crash or a rollback
leaves the two in step.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BUCKET_SECONDS",
    "IdBlocks",
    "affected_buckets",
    "append",
    "bucket_of",
    "hour_spans",
    "read",
    "rebuild_all",
    "resync",
]

BUCKET_SECONDS = 3600  # one hour: ~a few hundred sightings a block on a phone, 14 x 24 blocks a scheme
# seconds either side of an hour also read back: a time's hour is computed in floating point
_EDGE = 1.0


def bucket_of(times: NDArray[np.float64]) -> NDArray[np.int64]:
    """The hour bucket of each time (times are >= 0: validated before anything is written)."""
    return np.floor(np.asarray(times, dtype=np.float64) / BUCKET_SECONDS).astype(np.int64)


def hour_spans(buckets: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Sorted distinct hours as sorted, disjoint ``[lo, hi)`` spans of time (adjacent hours merged),
    each widened by a second so every time whose :func:`bucket_of` is among them falls inside."""
    if buckets.size == 0:
        return np.zeros(0), np.zeros(0)
    breaks = np.flatnonzero(np.diff(buckets) > 1)
    first = buckets[np.r_[0, breaks + 1]]
    last = buckets[np.r_[breaks, buckets.size - 1]]
    lo = first.astype(np.float64) * BUCKET_SECONDS - _EDGE
    hi = (last + 1).astype(np.float64) * BUCKET_SECONDS + _EDGE
    return lo, hi


@dataclass(frozen=True, slots=True, eq=False)
class IdBlocks:
    """One scheme's side store as read: ``ids`` (n, L) with the hour ``buckets`` of each row."""

    ids: NDArray[np.uint8]
    buckets: NDArray[np.int64]


def append(db: sqlite3.Connection, code: int, ids: Sequence[bytes], times: NDArray[np.float64]) -> None:
    """Add the IDs of sightings just inserted (same transaction) to their blocks."""
    n = len(ids)
    if n == 0:
        return
    length = len(ids[0])
    flat = np.frombuffer(b"".join(ids), dtype=np.uint8).reshape(n, length)
    buckets = bucket_of(times)
    order = np.argsort(buckets, kind="stable")
    packed = np.ascontiguousarray(flat[order]).tobytes()
    starts = np.flatnonzero(np.r_[True, buckets[order][1:] != buckets[order][:-1]])
    ends = np.r_[starts[1:], n]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        bucket = int(buckets[order[start]])
        row = db.execute(
            "SELECT count, ids FROM id_blocks WHERE scheme = ? AND bucket = ?", (code, bucket)
        ).fetchone()
        chunk = packed[start * length : end * length]
        if row is None:
            db.execute(
                "INSERT INTO id_blocks (scheme, bucket, count, ids) VALUES (?, ?, ?, ?)",
                (code, bucket, end - start, chunk),
            )
        else:
            db.execute(
                "UPDATE id_blocks SET count = ?, ids = ? WHERE scheme = ? AND bucket = ?",
                (int(row[0]) + end - start, bytes(row[1]) + chunk, code, bucket),
            )


def affected_buckets(db: sqlite3.Connection, where: str, params: Sequence[object]) -> set[tuple[int, int]]:
    """The (scheme, bucket) pairs of the sightings matching ``where`` (call before deleting them)."""
    rows = db.execute(f"SELECT DISTINCT scheme, time FROM sightings WHERE {where}", params).fetchall()
    if not rows:
        return set()
    codes = np.array([r[0] for r in rows], dtype=np.int64)
    buckets = bucket_of(np.array([r[1] for r in rows], dtype=np.float64))
    return set(zip(codes.tolist(), buckets.tolist(), strict=True))


def resync(db: sqlite3.Connection, pairs: Iterable[tuple[int, int]]) -> None:
    """Re-derive the blocks of ``pairs`` from the sightings (after rows were deleted)."""
    for code, bucket in sorted(pairs):
        lo = bucket * BUCKET_SECONDS - _EDGE
        hi = (bucket + 1) * BUCKET_SECONDS + _EDGE
        rows = db.execute(
            "SELECT observed_id, time FROM sightings WHERE scheme = ? AND time >= ? AND time < ? ORDER BY id",
            (code, lo, hi),
        ).fetchall()
        inside = bucket_of(np.array([r[1] for r in rows], dtype=np.float64)) == bucket
        mine = [r[0] for r, keep in zip(rows, inside.tolist(), strict=True) if keep]
        if mine:
            db.execute(
                "INSERT INTO id_blocks (scheme, bucket, count, ids) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (scheme, bucket) DO UPDATE SET count = excluded.count, ids = excluded.ids",
                (code, bucket, len(mine), b"".join(mine)),
            )
        else:
            db.execute("DELETE FROM id_blocks WHERE scheme = ? AND bucket = ?", (code, bucket))


def rebuild_all(db: sqlite3.Connection) -> None:
    """Derive every block from the sightings (the migration that adds the side store)."""
    db.execute("DELETE FROM id_blocks")
    codes = [int(r[0]) for r in db.execute("SELECT DISTINCT scheme FROM sightings")]
    for code in codes:
        cursor = db.execute("SELECT observed_id, time FROM sightings WHERE scheme = ? ORDER BY id", (code,))
        while rows := cursor.fetchmany(100_000):
            ids = [r[0] for r in rows]
            if any(not isinstance(value, bytes) or len(value) != len(ids[0]) for value in ids):
                raise sqlite3.DatabaseError("a sighting's observed_id is not a blob of its scheme's length")
            append(db, code, ids, np.array([r[1] for r in rows], dtype=np.float64))


def read(db: sqlite3.Connection, code: int, length: int) -> IdBlocks | None:
    """Every ID of scheme ``code`` with its bucket, or None when the blocks disagree with the sightings
    (a file written by other means: the caller then reads the sightings themselves)."""
    rows = db.execute(
        "SELECT bucket, count, ids FROM id_blocks WHERE scheme = ? ORDER BY bucket", (code,)
    ).fetchall()
    counts = np.array([r[1] for r in rows], dtype=np.int64)
    try:
        joined = b"".join(r[2] for r in rows)
    except TypeError:  # a block that is not a blob
        return None
    total = int(db.execute("SELECT count(*) FROM sightings WHERE scheme = ?", (code,)).fetchone()[0])
    if int(counts.sum()) != total or len(joined) != total * length:
        return None
    ids = np.frombuffer(joined, dtype=np.uint8).reshape(total, length)
    buckets = np.repeat(np.array([r[0] for r in rows], dtype=np.int64), counts)
    return IdBlocks(ids, buckets)
