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
            return np.ones(np.broadcast_shapes(np.shape(t), phase.shape), np.bool_)
        return _on(t, phase, self.scan_on, self.scan_period)

    def advertising(self, t: float | NDArray[np.float64], phase: NDArray[np.float64]) -> NDArray[np.bool_]:
        if self.advertise_on >= self.advertise_period:
            return np.ones(np.broadcast_shapes(np.shape(t), phase.shape), np.bool_)
        return _on(t, phase, self.advertise_on, self.advertise_period)


def _on(
    t: float | NDArray[np.float64], phase: NDArray[np.float64], on: float, period: float
) -> NDArray[np.bool_]:
    """``((t + phase * period) % period) < on``, exactly, without the remainder's cost on every entry:
    a float remainder of a unix time takes ~20 steps, so it is estimated by ``x - period * floor(x /
    period)`` (off by a few units in the last place of x at most) and computed exactly only where
    that estimate is within 8 such units of a switch (0, ``on`` or ``period``)."""
    x = np.asarray(t + phase * period, np.float64)
    r = x - period * np.floor(x / period)
    margin = 8.0 * np.spacing(np.abs(x).max(initial=0.0)) + 8.0 * np.spacing(period)
    out: NDArray[np.bool_] = r < on
    near = (np.abs(r - on) <= margin) | (r <= margin) | (r >= period - margin)
    if near.any():
        out[near] = (x[near] % period) < on
    return out


CONTINUOUS = DutyCycle("continuous", 1.0, 1.0, 1.0, 1.0)
"""A recording rig (the MIT sessions, a laptop node): always scanning and advertising."""
