"""Published GAEN keys: one :class:`DiagnosisKey` as a value, many as a column-wise :class:`KeyBatch`.

They live with the schemes, not the matcher, so key files, the CLI and the simulator get the value types
without importing the matcher.

The matcher works on batches (numpy columns), so that a million keys cost no million Python objects;
single keys are for people and tests. Export files parse straight into batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from proximity.errors import InvalidKeyError
from proximity.schemes.gaen import MAX_ENIN, TEK_LENGTH, TEK_ROLLING_PERIOD, TemporaryExposureKey

__all__ = ["DiagnosisKey", "KeyBatch", "PublishedKey", "ReportType", "batches_of"]

NO_ONSET = np.iinfo(np.int32).min  # days_since_onset_of_symptoms not given


class ReportType(IntEnum):
    """TemporaryExposureKey.ReportType of the export format; REVOKED withdraws a key."""

    UNKNOWN = 0
    CONFIRMED_TEST = 1
    CONFIRMED_CLINICAL_DIAGNOSIS = 2
    SELF_REPORT = 3
    RECURSIVE = 4
    REVOKED = 5


class PublishedKey(Protocol):
    """What a match result needs of any scheme's published key besides GAEN's :class:`DiagnosisKey`
    (which also says report type, risk and onset): its bytes and the UTC midnight it starts on."""

    @property
    def key_data(self) -> bytes: ...

    @property
    def start(self) -> int: ...


@dataclass(frozen=True, slots=True)
class DiagnosisKey:
    """A published TEK with what the health authority says about it."""

    tek: TemporaryExposureKey
    transmission_risk_level: int = 0
    report_type: ReportType = ReportType.UNKNOWN
    days_since_onset_of_symptoms: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.tek, TemporaryExposureKey):
            raise TypeError(f"tek must be a TemporaryExposureKey, got {type(self.tek).__name__}")
        object.__setattr__(self, "report_type", ReportType(self.report_type))
        if not 0 <= self.transmission_risk_level <= 8:
            raise InvalidKeyError(f"transmission_risk_level must be 0..8, got {self.transmission_risk_level}")
        onset = self.days_since_onset_of_symptoms
        if onset is not None and not -(2**31) < onset < 2**31:
            raise InvalidKeyError(f"days_since_onset_of_symptoms out of range: {onset}")

    @property
    def key_data(self) -> bytes:
        return self.tek.key_data

    @property
    def identity(self) -> tuple[bytes, int]:
        """(key bytes, rolling start): what a revision refers to."""
        return self.tek.key_data, self.tek.rolling_start_interval_number


@dataclass(frozen=True, slots=True, eq=False)
class KeyBatch:
    """Many diagnosis keys column-wise; every row is valid (readers drop malformed keys first).

    ``days_since_onset`` holds ``NO_ONSET`` where the field was absent. ``verified`` says whether the
    keys come from a file whose signature was checked.
    """

    key_data: NDArray[np.uint8]
    rolling_start: NDArray[np.int64]
    rolling_period: NDArray[np.int64]
    transmission_risk_level: NDArray[np.int32]
    report_type: NDArray[np.int32]
    days_since_onset: NDArray[np.int32]
    verified: bool = False

    def __post_init__(self) -> None:
        n = self.key_data.shape[0]
        if self.key_data.shape != (n, TEK_LENGTH) or self.key_data.dtype != np.uint8:
            raise ValueError(f"key_data must be an (n, {TEK_LENGTH}) uint8 array, got {self.key_data.shape}")
        for name in ("rolling_start", "rolling_period", "transmission_risk_level", "report_type"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must hold one entry per key ({n})")
        if self.days_since_onset.shape != (n,):
            raise ValueError(f"days_since_onset must hold one entry per key ({n})")
        if n:
            if self.rolling_period.min() < 1 or self.rolling_period.max() > TEK_ROLLING_PERIOD:
                raise InvalidKeyError(f"rolling_period must be 1..{TEK_ROLLING_PERIOD}")
            if (
                self.rolling_start.min() < 0
                or (self.rolling_start + self.rolling_period - 1).max() > MAX_ENIN
            ):
                raise InvalidKeyError("interval numbers must fit in uint32")

    def __len__(self) -> int:
        return int(self.key_data.shape[0])

    def key(self, i: int) -> DiagnosisKey:
        onset = int(self.days_since_onset[i])
        return DiagnosisKey(
            TemporaryExposureKey(
                self.key_data[i].tobytes(), int(self.rolling_start[i]), int(self.rolling_period[i])
            ),
            int(self.transmission_risk_level[i]),
            ReportType(int(self.report_type[i])),
            None if onset == NO_ONSET else onset,
        )

    def __iter__(self) -> Iterator[DiagnosisKey]:
        for i in range(len(self)):
            yield self.key(i)

    def select(self, rows: NDArray[np.intp] | NDArray[np.bool_] | slice) -> KeyBatch:
        return KeyBatch(
            self.key_data[rows],
            self.rolling_start[rows],
            self.rolling_period[rows],
            self.transmission_risk_level[rows],
            self.report_type[rows],
            self.days_since_onset[rows],
            self.verified,
        )

    @classmethod
    def from_keys(cls, keys: Sequence[DiagnosisKey], *, verified: bool = False) -> KeyBatch:
        n = len(keys)
        return cls(
            np.frombuffer(b"".join(k.tek.key_data for k in keys), dtype=np.uint8)
            .reshape(n, TEK_LENGTH)
            .copy(),
            np.array([k.tek.rolling_start_interval_number for k in keys], dtype=np.int64),
            np.array([k.tek.rolling_period for k in keys], dtype=np.int64),
            np.array([k.transmission_risk_level for k in keys], dtype=np.int32),
            np.array([int(k.report_type) for k in keys], dtype=np.int32),
            np.array(
                [
                    NO_ONSET if k.days_since_onset_of_symptoms is None else k.days_since_onset_of_symptoms
                    for k in keys
                ],
                dtype=np.int32,
            ),
            verified,
        )

    @classmethod
    def concatenate(cls, batches: Sequence[KeyBatch]) -> KeyBatch:
        if not batches:
            return cls.from_keys([])
        return cls(
            np.concatenate([b.key_data for b in batches]),
            np.concatenate([b.rolling_start for b in batches]),
            np.concatenate([b.rolling_period for b in batches]),
            np.concatenate([b.transmission_risk_level for b in batches]),
            np.concatenate([b.report_type for b in batches]),
            np.concatenate([b.days_since_onset for b in batches]),
            all(b.verified for b in batches),
        )


def batches_of(
    keys: Iterable[DiagnosisKey | KeyBatch], chunk: int, *, verified: bool = False
) -> Iterator[KeyBatch]:
    """Regroup keys and batches into batches of at most ``chunk`` keys, holding at most one chunk."""
    pending: list[DiagnosisKey] = []
    for item in keys:
        if isinstance(item, KeyBatch):
            if pending:
                yield KeyBatch.from_keys(pending, verified=verified)
                pending = []
            for start in range(0, len(item), chunk):  # slices: views of the batch, nothing copied
                yield item.select(slice(start, min(start + chunk, len(item))))
        elif isinstance(item, DiagnosisKey):
            pending.append(item)
            if len(pending) == chunk:
                yield KeyBatch.from_keys(pending, verified=verified)
                pending = []
        else:
            raise TypeError(f"keys must be DiagnosisKey or KeyBatch values, got {type(item).__name__}")
    if pending:
        yield KeyBatch.from_keys(pending, verified=verified)
