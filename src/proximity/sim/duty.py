"""Scan and advertise duty cycles per scheme: each scheme record's own (proximity.schemes.registry), the
same values the live node uses, plus ``continuous``. Each simulated phone runs them at a random phase.
The background limits per OS are the records' too; here only as views the simulator indexes."""

from __future__ import annotations

from proximity.schemes.duty import OPERATING_SYSTEMS, DutyCycle
from proximity.schemes.registry import duty_cycles, scheme_records

__all__ = ["ADVERTISES_ONLY_IN_FOREGROUND", "DUTY_CYCLES", "OPERATING_SYSTEMS", "DutyCycle"]

DUTY_CYCLES = duty_cycles()

ADVERTISES_ONLY_IN_FOREGROUND = frozenset(
    (record.name, system) for record in scheme_records() for system in record.foreground_only
)
"""(scheme, OS) pairs whose app advertises only in the foreground: each record's ``foreground_only``."""
