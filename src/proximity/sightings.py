"""What a scanner hears: one :class:`Sighting` per advert, and :class:`Observations` as numpy batches.

Every source (live scan, capture replay, simulator) produces Sightings; the encounter log stores them
and hands the matcher :class:`Observations`, the same data column-wise. The rules a sighting's fields
obey are written once here, for one value (:func:`time_problem`, :func:`id_problem`,
:func:`proximity.radio.rssi_problem`) and for a column (:func:`times_valid`,
:func:`proximity.radio.rssi_valid`); :class:`Sighting` and the column validator
(:mod:`proximity.sighting_columns`, which the log writes through) both apply them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from proximity.errors import InvalidLengthError, ProximityError
from proximity.radio import rssi_problem
from proximity.schemes.gaen import AEM_LENGTH
from proximity.schemes.registry import SCHEME_NAMES, SchemeRecord, UnknownSchemeError, scheme_record
from proximity.times import LATEST_TIME

__all__ = [
    "ID_LENGTHS",
    "InvalidSightingError",
    "Observations",
    "Sighting",
    "id_problem",
    "metadata_problem",
    "time_problem",
    "times_valid",
]

ID_LENGTHS = {name: scheme_record(name).id_length for name in SCHEME_NAMES}
"""Each scheme's ID length, from its record (a derived view, kept for callers that index by name)."""


class InvalidSightingError(ProximityError, ValueError):
    """A sighting with an impossible field (unknown scheme, wrong ID length, NaN RSSI, negative time)."""


def record_of(scheme: str) -> SchemeRecord:
    """The scheme's record, or :class:`InvalidSightingError` naming the schemes there are."""
    try:
        return scheme_record(scheme)
    except UnknownSchemeError as error:
        raise InvalidSightingError(str(error)) from None


def time_problem(value: float) -> str | None:
    """Why ``value`` is not a sighting's time (unix seconds from 1970 to year 9998), or None."""
    if not 0 <= value <= LATEST_TIME:  # NaN fails too
        return f"time must be unix seconds from 1970 to year 9998 (0..{LATEST_TIME}), got {value!r}"
    return None


def times_valid(times: NDArray[np.float64]) -> NDArray[np.bool_]:
    """:func:`time_problem` over a column: True where the time is valid."""
    valid: NDArray[np.bool_] = (times >= 0) & (times <= LATEST_TIME)  # NaN fails both
    return valid


def id_problem(record: SchemeRecord, length: int, what: str = "ID") -> InvalidLengthError | None:
    """Why an ID (``what``: "ID", "own_id") of ``length`` bytes cannot be one of ``record``'s, or None."""
    if length != record.id_length:
        return InvalidLengthError(f"{record.name} {what}", record.id_length, length)
    return None


def metadata_problem(record: SchemeRecord) -> str | None:
    """Why ``record``'s sightings cannot carry metadata, or None when they can."""
    if record.metadata_length is None:
        return f"{record.label} sightings carry no metadata (only GAEN's AEM)"
    return None


@dataclass(frozen=True, slots=True)
class Sighting:
    """One advert heard: the counterpart's ID at ``time`` (unix seconds), with what came with it.

    ``metadata`` is GAEN's AEM as received (still encrypted: it can only be read after the sender's key
    is published). ``rssi`` is None when the radio did not report one; ``own_id`` is the ID this device
    broadcast at the time (None for replays).
    """

    scheme: str
    id: bytes
    time: float
    rssi: int | None = None
    metadata: bytes | None = None
    address: str | None = None
    own_id: bytes | None = None

    def __post_init__(self) -> None:
        record = record_of(self.scheme)
        if not isinstance(self.id, bytes):
            raise TypeError("id must be bytes")
        if (wrong := id_problem(record, len(self.id))) is not None:
            raise wrong
        if not isinstance(self.time, int | float):
            raise InvalidSightingError(f"time must be unix seconds, got {self.time!r:.40}")
        if (problem := time_problem(self.time)) is not None:
            raise InvalidSightingError(problem)
        if self.rssi is not None:
            if isinstance(self.rssi, bool) or not isinstance(self.rssi, int):
                raise InvalidSightingError(f"rssi must be an integer dBm or None, got {self.rssi!r}")
            if (problem := rssi_problem(self.rssi)) is not None:
                raise InvalidSightingError(problem)
        if self.own_id is not None and (wrong := id_problem(record, len(self.own_id), "own_id")) is not None:
            raise wrong
        if self.metadata is not None:
            if record.metadata_length is None:
                raise InvalidSightingError(str(metadata_problem(record)))
            if len(self.metadata) != record.metadata_length:
                raise InvalidLengthError("AEM", record.metadata_length, len(self.metadata))


@dataclass(frozen=True, slots=True, eq=False)
class Observations:
    """Sightings of one scheme column-wise, as the matcher takes them.

    ``rssi`` is float64 with NaN for unknown; ``aem`` is (n, 4) uint8, meaningful where ``has_aem``;
    ``row_ids`` point back into the log (or into the input sequence).
    """

    scheme: str
    ids: NDArray[np.uint8]
    times: NDArray[np.float64]
    rssi: NDArray[np.float64]
    aem: NDArray[np.uint8]
    has_aem: NDArray[np.bool_]
    row_ids: NDArray[np.int64]

    def __post_init__(self) -> None:
        length = record_of(self.scheme).id_length
        n = self.ids.shape[0]
        if self.ids.shape != (n, length) or self.ids.dtype != np.uint8:
            raise InvalidLengthError(f"each {self.scheme} ID", length, int(self.ids.shape[-1]))
        for name, array in (
            ("times", self.times),
            ("rssi", self.rssi),
            ("has_aem", self.has_aem),
            ("row_ids", self.row_ids),
        ):
            if array.shape != (n,):
                raise ValueError(f"{name} must hold one entry per sighting ({n}), got shape {array.shape}")
        if self.aem.shape != (n, AEM_LENGTH):
            raise ValueError(f"aem must have shape ({n}, {AEM_LENGTH}), got {self.aem.shape}")

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def require_scheme(self, scheme: str) -> None:
        """Refuse (:class:`InvalidSightingError`) another scheme's sightings for ``scheme``'s matcher."""
        if self.scheme != scheme:
            wanted = record_of(scheme).label
            raise InvalidSightingError(
                f"{wanted} matching needs {wanted} observations, got {record_of(self.scheme).label}'s"
            )

    @classmethod
    def from_sightings(cls, scheme: str, sightings: Iterable[Sighting]) -> Observations:
        """Column-wise copy of the sightings of ``scheme``; ``row_ids`` are positions in the input."""
        chosen = [(i, s) for i, s in enumerate(sightings) if s.scheme == scheme]
        length = record_of(scheme).id_length
        n = len(chosen)
        ids = np.frombuffer(b"".join(s.id for _, s in chosen), dtype=np.uint8).reshape(n, length)
        aem = np.zeros((n, AEM_LENGTH), dtype=np.uint8)
        has_aem = np.zeros(n, dtype=np.bool_)
        for row, (_, s) in enumerate(chosen):
            if s.metadata is not None:
                aem[row] = np.frombuffer(s.metadata, dtype=np.uint8)
                has_aem[row] = True
        return cls(
            scheme=scheme,
            ids=ids.copy(),
            times=np.array([s.time for _, s in chosen], dtype=np.float64),
            rssi=np.array([np.nan if s.rssi is None else s.rssi for _, s in chosen], dtype=np.float64),
            aem=aem,
            has_aem=has_aem,
            row_ids=np.array([i for i, _ in chosen], dtype=np.int64),
        )
