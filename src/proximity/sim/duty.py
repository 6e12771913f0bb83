"""Scan and advertise duty cycles per scheme (spec: gaen.md, bluezone.md), with a random phase per phone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["ADVERTISES_ONLY_IN_FOREGROUND", "DUTY_CYCLES", "OPERATING_SYSTEMS", "DutyCycle"]


@dataclass(frozen=True, slots=True)
class DutyCycle:
    """On ``scan_on`` s of every ``scan_period`` s it scans; on ``advertise_on`` of ``advertise_period``
    it advertises. Each phone starts its cycles at its own random phase."""

    name: str
    scan_on: float
    scan_period: float
    advertise_on: float
    advertise_period: float

    def __post_init__(self) -> None:
        if not (0 < self.scan_on <= self.scan_period and 0 < self.advertise_on <= self.advertise_period):
            raise ValueError(f"duty cycle {self.name!r}: need 0 < on <= period for scanning and advertising")

    def scanning(self, t: float, phase: NDArray[np.float64]) -> NDArray[np.bool_]:
        if self.scan_on >= self.scan_period:
            return np.ones(phase.shape, np.bool_)
        return np.asarray(((t + phase * self.scan_period) % self.scan_period) < self.scan_on)

    def advertising(self, t: float, phase: NDArray[np.float64]) -> NDArray[np.bool_]:
        if self.advertise_on >= self.advertise_period:
            return np.ones(phase.shape, np.bool_)
        period = self.advertise_period
        return np.asarray(((t + phase * period) % period) < self.advertise_on)


OPERATING_SYSTEMS = ("android", "ios")
# (scheme, OS) pairs whose app cannot advertise while in the background: Bluezone on iOS (iOS moves a
# background app's service UUIDs to an overflow area other phones do not see; Bluezone had no
# Apple exemption, GAEN runs in the OS and has). Such a phone advertises only in the foreground.
ADVERTISES_ONLY_IN_FOREGROUND = frozenset({("bluezone", "ios")})

DUTY_CYCLES = {
    # Android GAEN: ~4 s scans every 210-300 s; advertises all the time (every 200-270 ms).
    "gaen": DutyCycle("gaen", 4.0, 300.0, 1.0, 1.0),
    # Bluezone Android background: advertise 15 s on / 15 s off, scan 40 s on / 260 s off.
    "bluezone": DutyCycle("bluezone", 40.0, 300.0, 15.0, 30.0),
    # A recording rig (the MIT sessions): always scanning and advertising.
    "continuous": DutyCycle("continuous", 1.0, 1.0, 1.0, 1.0),
}
