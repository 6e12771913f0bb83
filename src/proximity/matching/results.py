"""What matching hands the estimator: per matched key, its sightings as numpy columns.

A :class:`KeyMatch` is one published key (a GAEN diagnosis key, or a day key of another scheme) with
every sighting that counted for it. The estimator reads ``times``, ``rssi`` and ``tx_power`` (float64, NaN
for unknown); ``tx_power`` and ``calibration_confidence`` come from the decrypted AEM, so they exist
only for GAEN sightings that carried metadata. :func:`group_by_day` splits matches per UTC day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from proximity.schemes.published import DiagnosisKey, PublishedKey, ReportType
from proximity.times import SECONDS_PER_DAY

__all__ = ["DayMatch", "KeyMatch", "MatchColumns", "group_by_day"]


@dataclass(frozen=True, slots=True, eq=False)
class KeyMatch:
    """One published key and the sightings that matched it, sorted by time then row.

    ``calibration_confidence`` is int8, -1 where unknown. ``verified`` is True only for keys from a
    file whose signature was checked (Bluezone JSON carries none, so its matches are unverified).
    """

    scheme: str
    key: DiagnosisKey | PublishedKey
    verified: bool
    row_ids: NDArray[np.int64]
    ids: NDArray[np.uint8]
    times: NDArray[np.float64]
    rssi: NDArray[np.float64]
    tx_power: NDArray[np.float64]
    calibration_confidence: NDArray[np.int8]

    def __post_init__(self) -> None:
        n = self.times.shape[0]
        for name in ("row_ids", "rssi", "tx_power", "calibration_confidence"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must hold one entry per sighting ({n})")
        if self.ids.ndim != 2 or self.ids.shape[0] != n:
            raise ValueError(f"ids must hold one row per sighting ({n})")
        for array in (
            self.row_ids,
            self.ids,
            self.times,
            self.rssi,
            self.tx_power,
            self.calibration_confidence,
        ):
            array.setflags(write=False)

    def __len__(self) -> int:
        return int(self.times.shape[0])

    @property
    def key_data(self) -> bytes:
        """The key's bytes: the TEK, or the published day key."""
        return self.key.key_data

    @property
    def report_type(self) -> ReportType:
        return self.key.report_type if isinstance(self.key, DiagnosisKey) else ReportType.UNKNOWN

    @property
    def transmission_risk_level(self) -> int:
        return self.key.transmission_risk_level if isinstance(self.key, DiagnosisKey) else 0

    @property
    def days_since_onset_of_symptoms(self) -> int | None:
        return self.key.days_since_onset_of_symptoms if isinstance(self.key, DiagnosisKey) else None

    @property
    def sort_key(self) -> tuple[str, bytes, int]:
        if isinstance(self.key, DiagnosisKey):
            return self.scheme, self.key_data, self.key.tek.rolling_start_interval_number
        return self.scheme, self.key_data, self.key.start

    def select(self, mask: NDArray[np.bool_]) -> KeyMatch:
        return KeyMatch(
            self.scheme,
            self.key,
            self.verified,
            self.row_ids[mask],
            self.ids[mask],
            self.times[mask],
            self.rssi[mask],
            self.tx_power[mask],
            self.calibration_confidence[mask],
        )


@dataclass(frozen=True, slots=True, eq=False)
class MatchColumns:
    """Every counted sighting of a key batch's matched keys, as columns grouped by key.

    What one matcher pass produces: ``key`` is each sighting's row in the batch matched (ascending:
    keys in batch order, each key's sightings sorted by time then row), ``key_of`` gives the published
    key of a row. A consumer of many sightings (the simulator) reads the columns as they are; the
    per-key API, :meth:`matches`, is built from them on demand.
    """

    scheme: str
    key_of: Callable[[int], DiagnosisKey | PublishedKey]
    verified: bool
    key: NDArray[np.int64]
    row_ids: NDArray[np.int64]
    ids: NDArray[np.uint8]
    times: NDArray[np.float64]
    rssi: NDArray[np.float64]
    tx_power: NDArray[np.float64]
    calibration_confidence: NDArray[np.int8]

    def __len__(self) -> int:
        return int(self.key.shape[0])

    def matches(self) -> list[KeyMatch]:
        """One :class:`KeyMatch` per matched key, in batch order (its arrays are views of the columns)."""
        key = self.key
        if key.size == 0:
            return []
        cuts = np.flatnonzero(np.diff(key)) + 1
        starts = np.concatenate(([0], cuts)).tolist()
        ends = np.concatenate((cuts, [key.size])).tolist()
        return [
            KeyMatch(
                scheme=self.scheme,
                key=self.key_of(k),
                verified=self.verified,
                row_ids=self.row_ids[a:b],
                ids=self.ids[a:b],
                times=self.times[a:b],
                rssi=self.rssi[a:b],
                tx_power=self.tx_power[a:b],
                calibration_confidence=self.calibration_confidence[a:b],
            )
            for k, a, b in zip(key[starts].tolist(), starts, ends, strict=True)
        ]


@dataclass(frozen=True, slots=True, eq=False)
class DayMatch:
    """The sightings of one key on one UTC day (``day`` is that day's midnight, unix seconds)."""

    day: int
    match: KeyMatch

    @property
    def first_seen(self) -> float:
        return float(self.match.times.min())

    @property
    def last_seen(self) -> float:
        return float(self.match.times.max())

    @property
    def sightings(self) -> int:
        return len(self.match)

    @property
    def unique_ids(self) -> list[bytes]:
        """The distinct matched IDs in order of first sighting."""
        seen: dict[bytes, None] = {}
        for row in self.match.ids:
            seen.setdefault(row.tobytes(), None)
        return list(seen)


def group_by_day(matches: Iterable[KeyMatch]) -> list[DayMatch]:
    """Split every match by the UTC day of its sightings, in key order then day order."""
    out: list[DayMatch] = []
    for match in matches:
        days = (np.floor(match.times / SECONDS_PER_DAY) * SECONDS_PER_DAY).astype(np.int64)
        for day in np.unique(days):
            out.append(DayMatch(int(day), match.select(days == day)))
    return out
