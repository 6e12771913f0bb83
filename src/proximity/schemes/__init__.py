"""Rotating-ID schemes: each turns one key into the ephemeral IDs a phone broadcasts."""

from proximity.schemes.base import EphemeralId, IdBatch, RotatingIdScheme
from proximity.schemes.bluezone import BLUEZONE, BluezoneBaseKey, BluezoneDailyKey, BluezoneScheme
from proximity.schemes.gaen import GAEN, GaenScheme, Metadata, TemporaryExposureKey

__all__ = [
    "BLUEZONE",
    "GAEN",
    "SCHEME_NAMES",
    "BluezoneBaseKey",
    "BluezoneDailyKey",
    "BluezoneScheme",
    "EphemeralId",
    "GaenScheme",
    "IdBatch",
    "Metadata",
    "RotatingIdScheme",
    "TemporaryExposureKey",
]

SCHEME_NAMES = ("gaen", "bluezone")
