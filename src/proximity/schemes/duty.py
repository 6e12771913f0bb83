"""Scan and advertise duty cycles: what fraction of the time a phone's radio listens and talks.

One value type, used by the live node (``proximity node --duty``) and the simulator alike, so both read
the same figures from each scheme's record (:mod:`proximity.schemes.registry`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["CONTINUOUS", "OPERATING_SYSTEMS", "DutyCycle", "Phases"]

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


class Phases:
    """Phones' phases in one window (``on`` s of every ``period`` s), sorted by where in the period each
    switches on, so the phones on at a time are found by binary search and only they (and those within
    a rounding margin of a switch) are tested: GAEN scans 4 s of 300, ~1.3 % of phones at a time."""

    def __init__(self, phase: NDArray[np.float64], on: float, period: float) -> None:
        self.phase, self.on, self.period = np.asarray(phase, np.float64), on, period
        self.offset = self.phase * period  # x = t + offset, as the remainder rule computes it
        self.order = np.argsort(self.offset, kind="stable")
        self.sorted = self.offset[self.order]

    def at(self, t: float) -> NDArray[np.int64]:
        """The indices (ascending) of the phases on at ``t``: exactly those where :func:`_on` is true."""
        on, period = self.on, self.period
        if on >= period:
            return np.arange(self.phase.size, dtype=np.int64)
        # x = t + offset lies within half a unit in the last place of x of the real sum, so x % period
        # is within that of (t % period + offset) mod period: candidates are the offsets whose real sum
        # falls within a margin of [0, on) (modulo period), tested exactly below
        margin = 16.0 * (np.spacing(abs(t) + period) + np.spacing(period))
        low = -math.fmod(t, period) - margin  # offsets in [low, low + on + 2 margin] modulo period
        if on + 2.0 * margin >= period:
            pick = np.arange(self.phase.size, dtype=np.int64)
        else:
            low -= math.floor(low / period) * period  # into [0, period]; offsets lie in [0, period] too
            ends = np.array([low - period, low, low + period])
            lo = np.searchsorted(self.sorted, ends, side="left")
            hi = np.searchsorted(self.sorted, ends + (on + 2.0 * margin), side="right")
            pick = np.sort(np.concatenate([self.order[a:b] for a, b in zip(lo, hi, strict=True)]))
        x = t + self.offset[pick]
        out: NDArray[np.int64] = pick[(x % period) < on]
        return out


CONTINUOUS = DutyCycle("continuous", 1.0, 1.0, 1.0, 1.0)
"""A recording rig (the MIT sessions, a laptop node): always scanning and advertising."""
