"""Scan and advertise duty cycles: what fraction of the time a phone's radio listens and talks.

One value type, used by the live node (``proximity node --duty``) and the simulator alike, so both read
the same figures from each scheme's record (:mod:`proximity.schemes.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["CONTINUOUS", "OPERATING_SYSTEMS", "DutyCycle"]

OPERATING_SYSTEMS = ("android", "ios")
"""The phone platforms a scheme record can name a background limit for (and a simulated crowd mixes)."""


@dataclass(frozen=True, slots=True)
class DutyCycle:
    """On ``scan_on`` s of every ``scan_period`` s it scans; on ``advertise_on`` of ``advertise_period``
    it advertises. Each simulated phone starts its cycles at its own random phase."""

    name: str
    scan_on: float
    scan_period: float
    advertise_on: float
    advertise_period: float

    def __post_init__(self) -> None:
        if not (0 < self.scan_on <= self.scan_period and 0 < self.advertise_on <= self.advertise_period):
            raise ValueError(f"duty cycle {self.name!r}: need 0 < on <= period for scanning and advertising")

    @property
    def scan_window(self) -> tuple[float, float] | None:
        """(seconds on, period) of scanning, or None when it scans all the time."""
        return None if self.scan_on >= self.scan_period else (self.scan_on, self.scan_period)

    def scanning(self, t: float | NDArray[np.float64], phase: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Whether each phase's phone scans at ``t`` (times as a column: one row per time)."""
        if self.scan_on >= self.scan_period:
            return np.ones(phase.shape, np.bool_)
        return np.asarray(((t + phase * self.scan_period) % self.scan_period) < self.scan_on)

    def advertising(self, t: float | NDArray[np.float64], phase: NDArray[np.float64]) -> NDArray[np.bool_]:
        if self.advertise_on >= self.advertise_period:
            return np.ones(phase.shape, np.bool_)
        period = self.advertise_period
        return np.asarray(((t + phase * period) % period) < self.advertise_on)


CONTINUOUS = DutyCycle("continuous", 1.0, 1.0, 1.0, 1.0)
"""A recording rig (the MIT sessions, a laptop node): always scanning and advertising."""
