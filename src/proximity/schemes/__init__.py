"""Rotating-ID schemes: each turns one key into the ephemeral IDs a phone broadcasts.

Each scheme's facts (ID length, duty cycle, payload codec, log code...) are in its record in
:mod:`proximity.schemes.registry`, which is not imported here so the registry can use the payload codecs.
"""

from proximity.schemes.base import EphemeralId, IdBatch, RotatingIdScheme
from proximity.schemes.bluezone import BLUEZONE, BluezoneBaseKey, BluezoneDailyKey, BluezoneScheme
from proximity.schemes.dp3t import DP3T, Dp3tDayKey, Dp3tScheme
from proximity.schemes.gaen import GAEN, GaenScheme, Metadata, TemporaryExposureKey

__all__ = [
    "BLUEZONE",
    "DP3T",
    "GAEN",
    "BluezoneBaseKey",
    "BluezoneDailyKey",
    "BluezoneScheme",
    "Dp3tDayKey",
    "Dp3tScheme",
    "EphemeralId",
    "GaenScheme",
    "IdBatch",
    "Metadata",
    "RotatingIdScheme",
    "TemporaryExposureKey",
]
