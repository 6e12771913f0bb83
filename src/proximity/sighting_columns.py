"""The sighting rules over columns: a batch of one scheme's sightings checked at once, vectorised.

The encounter log writes through this (``EncounterLog.add_columns`` is its fast path, >= 200,000 rows/s,
too fast for a :class:`~proximity.sightings.Sighting` per row); the rules, limits and messages are
Sighting's own (:mod:`proximity.sightings`, :mod:`proximity.radio`), so a row the log refuses is one
Sighting refuses, for the same stated reason. Pure: numpy only, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from proximity.radio import rssi_problem, rssi_valid
from proximity.schemes.gaen import AEM_LENGTH
from proximity.sightings import (
    InvalidSightingError,
    Sighting,
    id_problem,
    metadata_problem,
    record_of,
    time_problem,
    times_valid,
)

__all__ = ["SightingColumns", "columns_of"]


class SightingColumns:
    """One scheme's batch column-wise, checked with vectorised tests (no per-row Python validation).

    ``valid`` marks the rows :class:`~proximity.sightings.Sighting` would accept; :meth:`problems` says
    why each other row would be refused, in the words Sighting uses."""

    __slots__ = (
        "address",
        "aem",
        "has_aem",
        "id_bytes",
        "id_ok",
        "n",
        "own_id",
        "own_ok",
        "rssi",
        "rssi_known",
        "scheme",
        "times",
        "valid",
    )

    def __init__(self) -> None:
        self.scheme = ""
        self.n = 0
        self.id_bytes: list[bytes] = []
        self.id_ok: NDArray[np.bool_] = np.zeros(0, np.bool_)
        self.times: NDArray[np.float64] = np.zeros(0)
        self.rssi: NDArray[np.float64] = np.zeros(0)
        self.rssi_known: NDArray[np.bool_] = np.zeros(0, np.bool_)
        self.aem: NDArray[np.uint8] | None = None
        self.has_aem: NDArray[np.bool_] | None = None
        self.address: Sequence[str | None] | None = None
        self.own_id: Sequence[bytes | None] | None = None
        self.own_ok: NDArray[np.bool_] = np.zeros(0, np.bool_)
        self.valid: NDArray[np.bool_] = np.zeros(0, np.bool_)

    @classmethod
    def build(
        cls,
        scheme: str,
        ids: NDArray[np.uint8] | Sequence[bytes],
        times: ArrayLike,
        rssi: ArrayLike | None,
        rssi_known: NDArray[np.bool_] | None,
        aem: NDArray[np.uint8] | None,
        has_aem: NDArray[np.bool_] | None,
        address: Sequence[str | None] | None,
        own_id: Sequence[bytes | None] | None,
    ) -> SightingColumns:
        record = record_of(scheme)
        length = record.id_length
        self = cls()
        self.scheme = scheme
        if isinstance(ids, np.ndarray):
            if ids.dtype != np.uint8 or ids.ndim != 2:
                raise TypeError("ids must be an (n, L) uint8 array or a sequence of bytes")
            n = int(ids.shape[0])
            if ids.shape[1] == length:
                flat = np.ascontiguousarray(ids).view(np.dtype((np.void, length))).ravel()
                self.id_bytes = cast(list[bytes], flat.tolist())
                self.id_ok = np.ones(n, np.bool_)
            else:
                self.id_bytes = [bytes(row) for row in ids]
                self.id_ok = np.zeros(n, np.bool_)
        else:
            self.id_bytes = list(ids)
            n = len(self.id_bytes)
            if not all(isinstance(v, bytes) for v in self.id_bytes):
                raise TypeError("each ID must be bytes")
            self.id_ok = np.fromiter(map(len, self.id_bytes), dtype=np.int64, count=n) == length
        self.n = n
        self.times = _float_column("times", times, n)
        if rssi is None:
            self.rssi = np.zeros(n)
            self.rssi_known = np.zeros(n, np.bool_)
        else:
            self.rssi = _float_column("rssi", rssi, n)
            self.rssi_known = (
                np.ones(n, np.bool_) if rssi_known is None else _mask("rssi_known", rssi_known, n)
            )
        if aem is not None or has_aem is not None:
            if (problem := metadata_problem(record)) is not None:
                raise InvalidSightingError(problem)
            if aem is None or aem.shape != (n, AEM_LENGTH) or aem.dtype != np.uint8:
                raise ValueError(f"aem must be a ({n}, {AEM_LENGTH}) uint8 array")
            self.aem = aem
            self.has_aem = np.ones(n, np.bool_) if has_aem is None else _mask("has_aem", has_aem, n)
        for name, column in (("address", address), ("own_id", own_id)):
            if column is not None and len(column) != n:
                raise ValueError(f"{name} must hold one entry per sighting ({n}), got {len(column)}")
        self.address = address
        self.own_id = own_id
        if own_id is None:
            self.own_ok = np.ones(n, np.bool_)
        else:
            lengths = np.fromiter((length if v is None else len(v) for v in own_id), np.int64, count=n)
            self.own_ok = lengths == length
        self.valid = self._check()
        return self

    def _check(self) -> NDArray[np.bool_]:
        rssi_ok = ~self.rssi_known | rssi_valid(self.rssi)
        valid: NDArray[np.bool_] = self.id_ok & times_valid(self.times) & rssi_ok & self.own_ok
        return valid

    def problems(self) -> tuple[NDArray[np.int64], list[str]]:
        """The rows refused, and why (each reason from the rule Sighting applies to the field)."""
        bad = np.flatnonzero(~self.valid)
        record = record_of(self.scheme)
        reasons = []
        for row in bad.tolist():
            why: list[object] = []
            if not self.id_ok[row]:
                why.append(id_problem(record, len(self.id_bytes[row])))
            why.append(time_problem(float(self.times[row])))
            if self.rssi_known[row]:
                why.append(rssi_problem(float(self.rssi[row])))
            if not self.own_ok[row] and self.own_id is not None:
                why.append(id_problem(record, len(self.own_id[row] or b""), "own_id"))
            reasons.append("; ".join(str(w) for w in why if w is not None))
        return bad, reasons

    def columns(self, keep: NDArray[np.bool_]) -> dict[str, list[object]]:
        """The kept rows column by column (numpy -> lists), only the columns this batch has."""
        index = np.flatnonzero(keep)
        picked = index.tolist()
        everything = index.size == self.n
        out: dict[str, list[object]] = {
            "observed_id": list(self.id_bytes) if everything else [self.id_bytes[i] for i in picked],
            "time": self.times[index].tolist(),
        }
        known = self.rssi_known[index]
        if known.any():
            rssi = np.where(known, self.rssi[index], 0.0).astype(np.int64).astype(object)
            rssi[~known] = None
            out["rssi"] = rssi.tolist()
        if self.aem is not None and self.has_aem is not None:
            blobs = np.ascontiguousarray(self.aem[index]).view(np.dtype((np.void, AEM_LENGTH))).ravel()
            metadata = np.empty(index.size, dtype=object)
            metadata[:] = blobs.tolist()
            metadata[~self.has_aem[index]] = None
            out["metadata"] = metadata.tolist()
        if self.address is not None:
            out["address"] = [self.address[i] for i in picked]
        if self.own_id is not None:
            out["own_id"] = [self.own_id[i] for i in picked]
        return out


def columns_of(scheme: str, sightings: list[Sighting]) -> SightingColumns:
    """Sightings of one scheme (already valid each) as a column batch."""
    n = len(sightings)
    has_aem = np.fromiter((s.metadata is not None for s in sightings), np.bool_, count=n)
    aem = None
    if record_of(scheme).metadata_length is not None and has_aem.any():
        aem = np.zeros((n, AEM_LENGTH), np.uint8)
        aem[has_aem] = np.frombuffer(
            b"".join(s.metadata for s in sightings if s.metadata is not None), np.uint8
        ).reshape(-1, AEM_LENGTH)
    rssi_known = np.fromiter((s.rssi is not None for s in sightings), np.bool_, count=n)
    return SightingColumns.build(
        scheme,
        [s.id for s in sightings],
        np.fromiter((s.time for s in sightings), np.float64, count=n),
        np.fromiter((0 if s.rssi is None else s.rssi for s in sightings), np.float64, count=n),
        rssi_known,
        aem,
        has_aem if aem is not None else None,
        [s.address for s in sightings],
        [s.own_id for s in sightings],
    )


def _float_column(name: str, values: ArrayLike, n: int) -> NDArray[np.float64]:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numbers") from None
    if array.shape != (n,):
        raise ValueError(f"{name} must hold one entry per sighting ({n}), got shape {array.shape}")
    return array


def _mask(name: str, values: NDArray[np.bool_], n: int) -> NDArray[np.bool_]:
    array = np.asarray(values, dtype=np.bool_)
    if array.shape != (n,):
        raise ValueError(f"{name} must hold one entry per sighting ({n}), got shape {array.shape}")
    return array
