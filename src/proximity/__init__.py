"""proximity: privacy-preserving BLE proximity contact tracing.

Rotating-ID schemes (GAEN v1.2, Bluezone), their BLE payloads and the device's key ring. The core is
pure (no I/O, no bleak, sqlite3, dbus or asyncio); adapters live at the edges.

Note: the unrelated PyPI package ``proximity`` uses the same import name; this one is distributed as
``proximity-tracing``.
"""

from proximity.broadcast import Broadcast, bluezone_broadcasts, gaen_broadcasts
from proximity.errors import (
    InvalidKeyError,
    InvalidLengthError,
    InvalidTimeError,
    KeyRingCorruptError,
    KeyRingError,
    KeyRingNotFoundError,
    MalformedPayloadError,
    NoKeyForTimeError,
    ProximityError,
)
from proximity.keyring import (
    KeyRing,
    KeyRingSettings,
    default_keyring_path,
    load_keyring,
    resolve_keyring_path,
    save_keyring,
    wipe_keyring,
)
from proximity.payloads import (
    Advert,
    BluezAdvertisement,
    BluezoneAdvert,
    GaenAdvert,
    MalformedAdvertisingDataError,
    decode_ad_bytes,
    decode_bleak,
)
from proximity.schemes import (
    BLUEZONE,
    GAEN,
    SCHEME_NAMES,
    BluezoneBaseKey,
    BluezoneDailyKey,
    BluezoneScheme,
    EphemeralId,
    GaenScheme,
    IdBatch,
    Metadata,
    RotatingIdScheme,
    TemporaryExposureKey,
)
from proximity.sightings import InvalidSightingError, Observations, Sighting
from proximity.times import parse_time, utc_midnight

__version__ = "0.1.0"

__all__ = [
    "BLUEZONE",
    "GAEN",
    "SCHEME_NAMES",
    "Advert",
    "BluezAdvertisement",
    "BluezoneAdvert",
    "BluezoneBaseKey",
    "BluezoneDailyKey",
    "BluezoneScheme",
    "Broadcast",
    "EphemeralId",
    "GaenAdvert",
    "GaenScheme",
    "IdBatch",
    "InvalidKeyError",
    "InvalidLengthError",
    "InvalidSightingError",
    "InvalidTimeError",
    "KeyRing",
    "KeyRingCorruptError",
    "KeyRingError",
    "KeyRingNotFoundError",
    "KeyRingSettings",
    "MalformedAdvertisingDataError",
    "MalformedPayloadError",
    "Metadata",
    "NoKeyForTimeError",
    "Observations",
    "ProximityError",
    "RotatingIdScheme",
    "Sighting",
    "TemporaryExposureKey",
    "__version__",
    "bluezone_broadcasts",
    "decode_ad_bytes",
    "decode_bleak",
    "default_keyring_path",
    "gaen_broadcasts",
    "load_keyring",
    "parse_time",
    "resolve_keyring_path",
    "save_keyring",
    "utc_midnight",
    "wipe_keyring",
]
