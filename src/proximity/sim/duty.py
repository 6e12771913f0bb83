"""Scan and advertise duty cycles per scheme: each scheme record's own (proximity.schemes.registry), the
same values the live node uses, plus ``continuous``. Each simulated phone runs them at a random phase."""

from __future__ import annotations

from proximity.schemes.duty import DutyCycle
from proximity.schemes.registry import duty_cycles

__all__ = ["DUTY_CYCLES", "DutyCycle"]

DUTY_CYCLES = duty_cycles()
