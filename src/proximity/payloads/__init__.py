"""BLE payload codecs of the supported schemes (pure: no bleak, no dbus)."""

from proximity.payloads.adstructures import (
    MalformedAdvertisingDataError,
    build_ad_structures,
    parse_ad_structures,
)
from proximity.payloads.adverts import (
    BLUEZONE_COMPANY_ID,
    BLUEZONE_SERVICE_UUID16,
    DP3T_SERVICE_UUID16,
    GAEN_SERVICE_UUID,
    GAEN_SERVICE_UUID16,
    Advert,
    BluezAdvertisement,
    BluezoneAdvert,
    Dp3tAdvert,
    GaenAdvert,
    decode_ad_bytes,
    decode_bleak,
)

__all__ = [
    "BLUEZONE_COMPANY_ID",
    "BLUEZONE_SERVICE_UUID16",
    "DP3T_SERVICE_UUID16",
    "GAEN_SERVICE_UUID",
    "GAEN_SERVICE_UUID16",
    "Advert",
    "BluezAdvertisement",
    "BluezoneAdvert",
    "Dp3tAdvert",
    "GaenAdvert",
    "MalformedAdvertisingDataError",
    "build_ad_structures",
    "decode_ad_bytes",
    "decode_bleak",
    "parse_ad_structures",
]
