"""A scheme's own keys on a device (its "key state"), as one protocol the key ring, ``proximity ids``,
the CLI and the simulator use for every scheme alike.

A key ring holds, per scheme, one value of that scheme's choosing (GAEN: a tuple of TEKs; a chained
scheme: the key of its first day). The scheme's record names the :class:`SchemeKeys` that knows the
value (``SchemeRecord.keys``): how it is made and rolled, its JSON in the key-ring file, which IDs it
broadcasts, and what a confirmed user publishes from it. Nothing outside the scheme reads the value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from proximity.schemes.base import IdBatch

__all__ = [
    "IdTable",
    "IdTables",
    "KeyDescription",
    "RandomBytes",
    "SchemeKeys",
    "byte_rows",
    "empty_table",
    "joined",
    "upcoming_of",
]

RandomBytes = Callable[[int], bytes]

IdTable = tuple[IdBatch, NDArray[np.uint8] | None]
"""IDs with their encrypted metadata row for row (GAEN's AEMs), None for a scheme that sends none."""

KeyDescription = str | tuple[list[str], list[list[object]]]
"""How ``keys show`` prints a scheme's keys: one line, or a table (headers, rows)."""


@dataclass(frozen=True, slots=True, eq=False)
class IdTables:
    """The IDs of many devices whose keys share their times, over the same slots: ``ids`` (n, s, id
    length) uint8, the slot starts ``starts`` (s,) int64 in order, and the encrypted metadata beside
    each ID (n, s, metadata length), None for a scheme that sends none."""

    ids: NDArray[np.uint8]
    starts: NDArray[np.int64]
    metadata: NDArray[np.uint8] | None


class SchemeKeys(Protocol):
    """One scheme's key state: pure functions of the value, the ring's settings and a time.

    ``settings`` is the ring's :class:`~proximity.keyring.model.KeyRingSettings` (typed loosely here so
    that schemes stay below the key ring in the import graph). ``from_json`` raises ``KeyError``,
    ``TypeError``, ``ValueError`` or a :class:`~proximity.errors.ProximityError` on bad content; the
    key-ring store turns those into its typed corrupt-file error.
    """

    key_length: int
    """Bytes of a key given by hand (``proximity ids --key``)."""

    made_at_install: bool
    """Whether the key is made when the ring is created, before the other schemes' keys (the order a
    seeded ring draws its random bytes in, kept from earlier versions)."""

    def rolled(self, state: Any | None, at: float, settings: Any, random_bytes: RandomBytes) -> Any:
        """The state at ``at`` (a new one when ``state`` is None): keys made and expired as due."""
        ...

    def checked(self, state: Any) -> Any:
        """``state`` if it is a valid key state of this scheme (normalised, e.g. keys in order), else an
        :class:`~proximity.errors.InvalidKeyError`: a ring built by hand holds what a rolled one would."""
        ...

    def to_json(self, state: Any) -> Any:
        """The state as JSON values (the key-ring file's entry for this scheme)."""
        ...

    def from_json(self, value: Any) -> Any:
        """The inverse of :meth:`to_json`, checking the content."""
        ...

    def from_key(self, key: bytes, start: float, rolling_period: int) -> Any:
        """A state holding one key given by hand, starting at ``start`` (``rolling_period``: GAEN's)."""
        ...

    def first_time(self, state: Any) -> int | None:
        """When the state's first ID starts (None: no key yet)."""
        ...

    def last_time(self, state: Any) -> int | None:
        """When the state's last ID ends (None: a chain, which never ends)."""
        ...

    def upcoming(self, state: Any, settings: Any, at: float, count: int) -> IdTable:
        """At most ``count`` IDs from the slot containing ``at`` on, in broadcast order."""
        ...

    def id_table(self, state: Any, settings: Any, first_day: int, days: int) -> IdTable:
        """Every ID over ``days`` UTC days from ``first_day`` (vectorised: the simulator's tables)."""
        ...

    def published(self, state: Any, settings: Any, first_day: int, days: int) -> list[Any]:
        """What the app uploads when its user is confirmed, covering those days (each has ``key_data``)."""
        ...

    def key_data(self, state: Any) -> list[bytes]:
        """The random bytes of each key the state holds, in a fixed order: the columns of the batch
        methods' ``keys``. A state's key times never depend on these bytes, so one state stands for
        many devices made and rolled at the same times (:class:`proximity.keyring.KeyRings`)."""
        ...

    def id_tables(self, state: Any, keys: NDArray[np.uint8], settings: Any, start: int, end: int) -> IdTables:
        """The IDs whose slots start in ``[start, end)`` of n states like ``state`` whose key bytes are
        the rows of ``keys`` ((n, k, key length), k as :meth:`key_data` lists them): what
        :meth:`id_table` gives each, as one batch."""
        ...

    def published_many(
        self, state: Any, keys: NDArray[np.uint8], settings: Any, first_day: int, days: int
    ) -> Any:
        """What :meth:`published` gives each of those n states, concatenated in their order (each gives
        as many as ``state`` does): a list, or GAEN's :class:`~proximity.schemes.published.KeyBatch`."""
        ...

    def describe(self, state: Any) -> KeyDescription:
        """The keys for ``proximity keys show``."""
        ...

    def show_json(self, state: Any | None) -> dict[str, Any]:
        """The keys for ``proximity keys show --json``: fields merged into its document."""
        ...


def byte_rows(rows: NDArray[np.uint8]) -> list[bytes]:
    """Each row of an (n, w) array as bytes (the batch methods' keys, as values take them)."""
    data, width = rows.tobytes(), int(rows.shape[1])
    return [data[i : i + width] for i in range(0, len(data), width)]


def empty_table(scheme: str, length: int) -> IdTable:
    return joined(scheme, length, []), None


def joined(scheme: str, length: int, batches: Sequence[IdBatch]) -> IdBatch:
    """One batch of several (an empty one of ``length``-byte IDs for none)."""
    if not batches:
        empty = np.zeros(0, np.int64)
        return IdBatch(scheme, np.zeros((0, length), np.uint8), empty, empty)
    return IdBatch(
        scheme,
        np.concatenate([b.ids for b in batches]),
        np.concatenate([b.starts for b in batches]),
        np.concatenate([b.ends for b in batches]),
    )


def upcoming_of(batch: IdBatch, metadata: NDArray[np.uint8] | None, at: float, count: int) -> IdTable:
    """The rows of a table from the slot containing ``at`` on, at most ``count``."""
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
    rows = np.flatnonzero(batch.ends > at)[:count]
    picked = IdBatch(batch.scheme, batch.ids[rows], batch.starts[rows], batch.ends[rows])
    return picked, None if metadata is None else metadata[rows]
