"""Scan and advertise duty cycles per scheme: each scheme record's own (proximity.schemes.registry), the
same values the live node uses, plus ``continuous``. Each simulated phone runs them at a random phase."""

from __future__ import annotations

from proximity.schemes.duty import DutyCycle
from proximity.schemes.registry import duty_cycles

__all__ = ["ADVERTISES_ONLY_IN_FOREGROUND", "DUTY_CYCLES", "OPERATING_SYSTEMS", "DutyCycle"]

DUTY_CYCLES = duty_cycles()

OPERATING_SYSTEMS = ("android", "ios")
# (scheme, OS) pairs whose app cannot advertise while in the background: Bluezone on iOS (iOS moves a
# background app's service UUIDs to an overflow area other phones do not see; Bluezone had no
# Apple exemption, GAEN runs in the OS and has). Such a phone advertises only in the foreground.
ADVERTISES_ONLY_IN_FOREGROUND = frozenset({("bluezone", "ios")})
