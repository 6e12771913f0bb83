"""The radio's limits, in one place: what RSSI and TX power a Bluetooth LE controller can report.

The encounter log, the observed-CSV reader and :class:`~proximity.sightings.Sighting` all check against
these, so a value one of them refuses is refused by all (e.g. HCI's 127 "RSSI not available").
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["RSSI_NOT_AVAILABLE", "RSSI_RANGE", "TX_POWER_RANGE", "rssi_problem", "rssi_valid"]

RSSI_RANGE = (-127, 20)  # dBm a controller can report (HCI LE advertising report, Core spec 7.7.65.2)
RSSI_NOT_AVAILABLE = 127  # HCI's "RSSI not available": no reading, never a strength
TX_POWER_RANGE = (-50, 20)  # dBm GAEN metadata may carry (Exposure Notification BLE spec v1.2)


def rssi_problem(value: object) -> str | None:
    """Why ``value`` is not an RSSI reading (a whole number of dBm in :data:`RSSI_RANGE`), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"rssi must be a number of dBm, got {value!r:.40}"
    low, high = RSSI_RANGE
    if value == RSSI_NOT_AVAILABLE:
        return f"rssi {RSSI_NOT_AVAILABLE} is HCI's 'not available'; leave it empty instead"
    if not (math.isfinite(value) and value == round(value) and low <= value <= high):
        return f"rssi must be a whole number of dBm in [{low}, {high}], got {value!r:.40}"
    return None


def rssi_valid(values: NDArray[np.float64]) -> NDArray[np.bool_]:
    """:func:`rssi_problem` over a column: True where the value is an RSSI reading (NaN is not)."""
    low, high = RSSI_RANGE
    with np.errstate(invalid="ignore"):
        valid: NDArray[np.bool_] = (
            np.isfinite(values) & (values == np.round(values)) & (values >= low) & (values <= high)
        )
    return valid
