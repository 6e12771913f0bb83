"""Device calibration: per-model RSSI and TX-power corrections, and attenuation from them.

Phones of different models read the same signal up to ~20 dB apart, so GAEN publishes a table
(oem, device, model, rssi_correction, tx_power_correction, confidence). Unknown models fall back to a
similar model (MEDIUM confidence), then the OEM average (LOW), then the fleet average (LOWEST).
attenuation = TX power - (RSSI + rssi_correction), floored at 0 dB as GAEN does.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from importlib import resources

import numpy as np
from numpy.typing import NDArray

from proximity.errors import CalibrationError

__all__ = [
    "COLUMNS",
    "DEFAULT_TX_POWER_DBM",
    "Calibration",
    "CalibrationLevel",
    "CalibrationRow",
    "CalibrationTable",
    "attenuation",
    "default_calibration",
]

COLUMNS = ("oem", "device", "model", "rssi_correction", "tx_power_correction", "confidence")

# TX power assumed where a counterpart did not tell us (no AEM, Bluezone, recordings without it).
# iOS reports 8 dBm for ordinary adverts (as in the MIT recordings); GAEN counterparts carry theirs.
DEFAULT_TX_POWER_DBM = 8.0


class CalibrationLevel(IntEnum):
    """How a model's correction was found; the value is GAEN's calibration confidence (0-3)."""

    FLEET = 0
    OEM = 1
    SIMILAR = 2
    EXACT = 3


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    oem: str
    device: str
    model: str
    rssi_correction: float
    tx_power_correction: float
    confidence: int

    def __post_init__(self) -> None:
        for name in ("rssi_correction", "tx_power_correction"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise CalibrationError(f"{name} must be a finite number of dB, got {value!r}")
        if self.confidence not in (0, 1, 2, 3):
            raise CalibrationError(f"confidence must be 0-3, got {self.confidence!r}")


@dataclass(frozen=True, slots=True)
class Calibration:
    """The corrections chosen for one model, and how they were found."""

    rssi_correction: float
    tx_power_correction: float
    confidence: int
    level: CalibrationLevel


@dataclass(frozen=True, slots=True)
class CalibrationTable:
    rows: tuple[CalibrationRow, ...]

    def __post_init__(self) -> None:
        if not self.rows:
            raise CalibrationError("a calibration table needs at least one row (the fleet average)")

    @classmethod
    def parse(cls, text: str) -> CalibrationTable:
        """Read the published CSV (a header with at least :data:`COLUMNS`)."""
        reader = csv.DictReader(io.StringIO(text))
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise CalibrationError(f"calibration CSV lacks column(s) {', '.join(missing)}")
        rows = []
        for line, record in enumerate(reader, start=2):
            try:
                rows.append(
                    CalibrationRow(
                        record["oem"].strip(),
                        record["device"].strip(),
                        record["model"].strip(),
                        float(record["rssi_correction"]),
                        float(record["tx_power_correction"]),
                        int(record["confidence"]),
                    )
                )
            except (TypeError, ValueError) as error:
                raise CalibrationError(f"calibration CSV line {line}: {error}") from None
        return cls(tuple(rows))

    def lookup(self, oem: str = "", device: str = "", model: str = "") -> Calibration:
        """Corrections for a model: exact device/model, else similar model, else OEM, else fleet."""
        oem_k, device_k, model_k = _norm(oem), _norm(device), _norm(model)
        same_oem = [r for r in self.rows if _norm(r.oem) == oem_k] if oem_k else []
        pool = same_oem or (list(self.rows) if not oem_k else [])
        exact = [
            r
            for r in pool
            if (device_k and _norm(r.device) == device_k) or (model_k and _norm(r.model) == model_k)
        ]
        if exact:
            row = exact[0]
            return Calibration(
                row.rssi_correction, row.tx_power_correction, row.confidence, CalibrationLevel.EXACT
            )
        if model_k and pool:
            best = max(_common_prefix(_norm(r.model), model_k) for r in pool)
            if best >= max(4, 0.75 * len(model_k)):
                similar = [r for r in pool if _common_prefix(_norm(r.model), model_k) == best]
                return _average(similar, CalibrationLevel.SIMILAR)
        if same_oem:
            return _average(same_oem, CalibrationLevel.OEM)
        return _average(list(self.rows), CalibrationLevel.FLEET)

    def fleet(self) -> Calibration:
        return _average(list(self.rows), CalibrationLevel.FLEET)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _average(rows: list[CalibrationRow], level: CalibrationLevel) -> Calibration:
    return Calibration(
        float(np.mean([r.rssi_correction for r in rows])),
        float(np.mean([r.tx_power_correction for r in rows])),
        int(level),
        level,
    )


@cache
def default_calibration() -> CalibrationTable:
    """The small table shipped as package data (read once)."""
    text = resources.files("proximity.estimation").joinpath("data/calibration.csv").read_text("utf-8")
    return CalibrationTable.parse(text)


def attenuation(
    rssi: NDArray[np.float64],
    tx_power: NDArray[np.float64] | float | None = None,
    rssi_correction: float = 0.0,
    default_tx_power: float = DEFAULT_TX_POWER_DBM,
) -> NDArray[np.float64]:
    """GAEN attenuation in dB: max(TX - (RSSI + correction), 0); NaN where the RSSI is unknown.

    ``tx_power`` may hold NaN where unknown; those sightings (and ``None``) use ``default_tx_power``.
    """
    rssi = np.asarray(rssi, dtype=np.float64)
    tx = np.full(rssi.shape, default_tx_power) if tx_power is None else np.asarray(tx_power, np.float64)
    tx = np.where(np.isnan(tx), default_tx_power, tx)
    with np.errstate(invalid="ignore"):
        return np.maximum(tx - (rssi + rssi_correction), 0.0)
