"""Raw BLE advertising data: a sequence of AD structures ``[length][type][data...]``."""

from __future__ import annotations

from collections.abc import Iterable

from proximity.errors import ProximityError

__all__ = [
    "AD_COMPLETE_16BIT_UUIDS",
    "AD_FLAGS",
    "AD_INCOMPLETE_16BIT_UUIDS",
    "AD_MANUFACTURER_DATA",
    "AD_SERVICE_DATA_16BIT",
    "LEGACY_ADV_MAX",
    "AdStructure",
    "MalformedAdvertisingDataError",
    "build_ad_structures",
    "parse_ad_structures",
]

AD_FLAGS = 0x01
AD_INCOMPLETE_16BIT_UUIDS = 0x02
AD_COMPLETE_16BIT_UUIDS = 0x03
AD_SERVICE_DATA_16BIT = 0x16
AD_MANUFACTURER_DATA = 0xFF
LEGACY_ADV_MAX = 31

AdStructure = tuple[int, bytes]


class MalformedAdvertisingDataError(ProximityError, ValueError):
    """Raw advertising data whose AD structures overrun the buffer."""


def parse_ad_structures(raw: bytes) -> list[AdStructure]:
    """Split advertising data into (type, data) pairs; a zero length byte ends it (padding)."""
    structures: list[AdStructure] = []
    offset = 0
    while offset < len(raw):
        length = raw[offset]
        if length == 0:
            break
        end = offset + 1 + length
        if end > len(raw):
            raise MalformedAdvertisingDataError(
                f"AD structure at byte {offset} claims {length} bytes but only {len(raw) - offset - 1} remain"
            )
        structures.append((raw[offset + 1], bytes(raw[offset + 2 : end])))
        offset = end
    return structures


def build_ad_structures(structures: Iterable[AdStructure], limit: int = LEGACY_ADV_MAX) -> bytes:
    """Join (type, data) pairs into advertising data, refusing more than ``limit`` bytes."""
    out = bytearray()
    for ad_type, data in structures:
        if len(data) > 254:
            raise ValueError(f"AD structure data must be at most 254 bytes, got {len(data)}")
        out += bytes([len(data) + 1, ad_type]) + data
    if len(out) > limit:
        raise ValueError(f"advertising data must be at most {limit} bytes, got {len(out)}")
    return bytes(out)
