"""The BLE advertisements of both schemes: decode from bleak's shapes or raw bytes, encode for BlueZ or raw.

Decoding answers three ways: ``None`` for an advertisement that is not ours (no GAEN service data, no
Bluezone company id), an advert value for a well-formed one, and :class:`MalformedPayloadError` for one
that is ours but has the wrong length. Nothing here imports dbus or bleak: the BlueZ form is plain
Python values that the advertiser wraps in D-Bus variants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from proximity.errors import MalformedPayloadError, PayloadTypeError
from proximity.payloads.adstructures import (
    AD_COMPLETE_16BIT_UUIDS,
    AD_FLAGS,
    AD_MANUFACTURER_DATA,
    AD_SERVICE_DATA_16BIT,
    build_ad_structures,
    parse_ad_structures,
)
from proximity.schemes.base import require_bytes
from proximity.schemes.bluezone import ID_LENGTH as BLUEZONE_ID_LENGTH
from proximity.schemes.dp3t import EPHID_LENGTH as DP3T_EPHID_LENGTH
from proximity.schemes.gaen import AEM_LENGTH, RPI_LENGTH

__all__ = [
    "BASE_UUID_SUFFIX",
    "BLUEZONE_COMPANY_ID",
    "BLUEZONE_SERVICE_UUID16",
    "DP3T_SERVICE_UUID",
    "DP3T_SERVICE_UUID16",
    "GAEN_SERVICE_UUID",
    "GAEN_SERVICE_UUID16",
    "Advert",
    "BluezAdvertisement",
    "BluezoneAdvert",
    "Dp3tAdvert",
    "GaenAdvert",
    "decode_ad_bytes",
    "decode_bleak",
    "uuid16_to_uuid128",
    "uuid128_to_uuid16",
]

GAEN_SERVICE_UUID16 = 0xFD6F
BLUEZONE_SERVICE_UUID16 = 0x4E56
BLUEZONE_COMPANY_ID = 0x22B5
DP3T_SERVICE_UUID16 = 0xFD68  # reserved for DP-3T; the SDK put the EphID in its service data
BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"  # the Bluetooth base UUID after its first 8 hex digits


def uuid16_to_uuid128(uuid16: int) -> str:
    """The Bluetooth base UUID form of a 16-bit UUID, lowercase, as bleak keys service data."""
    return f"0000{uuid16:04x}{BASE_UUID_SUFFIX}"


def uuid128_to_uuid16(uuid: str) -> int | None:
    """The 16-bit UUID inside a lowercase Bluetooth base UUID; None for any other UUID or text."""
    short = uuid[4:8]
    if len(uuid) == 36 and uuid.startswith("0000") and uuid.endswith(BASE_UUID_SUFFIX) and _is_hex(short):
        return int(short, 16)
    return None


def _is_hex(text: str) -> bool:
    """Hex digits only: ``int(text, 16)`` alone would also take signs, underscores and spaces."""
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


GAEN_SERVICE_UUID = uuid16_to_uuid128(GAEN_SERVICE_UUID16)
BLUEZONE_SERVICE_UUID = uuid16_to_uuid128(BLUEZONE_SERVICE_UUID16)
DP3T_SERVICE_UUID = uuid16_to_uuid128(DP3T_SERVICE_UUID16)


@dataclass(frozen=True, slots=True)
class BluezAdvertisement:
    """The properties of a BlueZ ``org.bluez.LEAdvertisement1`` object, as plain Python values.

    Type is "broadcast" for both schemes: we serve no GATT, and non-connectable adverts let the kernel
    give every registration a fresh random address.
    """

    type: str
    service_uuids: tuple[str, ...]
    service_data: Mapping[str, bytes] = field(default_factory=dict)
    manufacturer_data: Mapping[int, bytes] = field(default_factory=dict)
    include_tx_power: bool = False


def _service_data_ad_bytes(flags: int, uuid16: int, payload: bytes) -> bytes:
    """Flags, the complete 16-bit UUID list, and the payload as that UUID's service data."""
    uuid = uuid16.to_bytes(2, "little")
    return build_ad_structures(
        [(AD_FLAGS, bytes([flags])), (AD_COMPLETE_16BIT_UUIDS, uuid), (AD_SERVICE_DATA_16BIT, uuid + payload)]
    )


def _service_data_bluez(uuid: str, payload: bytes) -> BluezAdvertisement:
    return BluezAdvertisement(type="broadcast", service_uuids=(uuid,), service_data={uuid: payload})


@dataclass(frozen=True, slots=True)
class GaenAdvert:
    """A GAEN advertisement: service 0xFD6F carrying RPI (16 bytes) || AEM (4 bytes)."""

    scheme: ClassVar[str] = "gaen"
    flags: ClassVar[int] = 0x1A
    service_uuid: ClassVar[str] = GAEN_SERVICE_UUID
    monitor_pattern: ClassVar[tuple[int, int, bytes]] = (
        0,
        AD_SERVICE_DATA_16BIT,
        GAEN_SERVICE_UUID16.to_bytes(2, "little"),
    )
    rpi: bytes
    aem: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "rpi", require_bytes("RPI", self.rpi, RPI_LENGTH))
        object.__setattr__(self, "aem", require_bytes("AEM", self.aem, AEM_LENGTH))

    @property
    def id(self) -> bytes:
        return self.rpi

    @property
    def payload(self) -> bytes:
        """The service data for 0xFD6F."""
        return self.rpi + self.aem

    @classmethod
    def of(cls, id: bytes, metadata: bytes | None) -> GaenAdvert:
        """The advert of an ID and its encrypted metadata (the AEM), as a key ring's table gives them."""
        if metadata is None:
            raise MalformedPayloadError("gaen", "encrypted metadata", AEM_LENGTH, 0)
        return cls(id, metadata)

    @classmethod
    def from_payload(cls, payload: bytes) -> GaenAdvert:
        expected = RPI_LENGTH + AEM_LENGTH
        if len(payload) != expected:
            raise MalformedPayloadError("gaen", "service data for 0xFD6F", expected, len(payload))
        return cls(bytes(payload[:RPI_LENGTH]), bytes(payload[RPI_LENGTH:]))

    def to_ad_bytes(self) -> bytes:
        """Raw advertising data: flags, complete 16-bit UUID list, service data (31 bytes)."""
        return _service_data_ad_bytes(self.flags, GAEN_SERVICE_UUID16, self.payload)

    def to_bluez(self) -> BluezAdvertisement:
        return _service_data_bluez(GAEN_SERVICE_UUID, self.payload)


@dataclass(frozen=True, slots=True)
class BluezoneAdvert:
    """A Bluezone (Android) advert: service 0x4E56 + manufacturer data 0x22B5 carrying the 12-byte ID."""

    scheme: ClassVar[str] = "bluezone"
    flags: ClassVar[int] = 0x06
    service_uuid: ClassVar[str] = BLUEZONE_SERVICE_UUID
    monitor_pattern: ClassVar[tuple[int, int, bytes]] = (
        0,
        AD_MANUFACTURER_DATA,
        BLUEZONE_COMPANY_ID.to_bytes(2, "little"),
    )
    bluezone_id: bytes

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "bluezone_id", require_bytes("Bluezone ID", self.bluezone_id, BLUEZONE_ID_LENGTH)
        )

    @property
    def id(self) -> bytes:
        return self.bluezone_id

    @property
    def payload(self) -> bytes:
        """The manufacturer data for company 0x22B5 (without the company id)."""
        return self.bluezone_id

    @classmethod
    def of(cls, id: bytes, metadata: bytes | None) -> BluezoneAdvert:
        """The advert of an ID (the scheme sends no metadata)."""
        return cls(id)

    @classmethod
    def from_payload(cls, payload: bytes) -> BluezoneAdvert:
        if len(payload) != BLUEZONE_ID_LENGTH:
            raise MalformedPayloadError(
                "bluezone", "manufacturer data for company 0x22B5", BLUEZONE_ID_LENGTH, len(payload)
            )
        return cls(bytes(payload))

    def to_ad_bytes(self) -> bytes:
        """Raw advertising data: ``[flags] 03 03 56 4E | 0F FF B5 22 <ID>``."""
        return build_ad_structures(
            [
                (AD_FLAGS, bytes([self.flags])),
                (AD_COMPLETE_16BIT_UUIDS, BLUEZONE_SERVICE_UUID16.to_bytes(2, "little")),
                (AD_MANUFACTURER_DATA, BLUEZONE_COMPANY_ID.to_bytes(2, "little") + self.payload),
            ]
        )

    def to_bluez(self) -> BluezAdvertisement:
        return BluezAdvertisement(
            type="broadcast",
            service_uuids=(BLUEZONE_SERVICE_UUID,),
            manufacturer_data={BLUEZONE_COMPANY_ID: self.payload},
        )


@dataclass(frozen=True, slots=True)
class Dp3tAdvert:
    """A DP-3T advert as the DP-3T SDK sent it: service 0xFD68 whose service data is the 16-byte EphID."""

    scheme: ClassVar[str] = "dp3t"
    flags: ClassVar[int] = 0x1A
    service_uuid: ClassVar[str] = DP3T_SERVICE_UUID
    monitor_pattern: ClassVar[tuple[int, int, bytes]] = (
        0,
        AD_SERVICE_DATA_16BIT,
        DP3T_SERVICE_UUID16.to_bytes(2, "little"),
    )
    ephid: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "ephid", require_bytes("EphID", self.ephid, DP3T_EPHID_LENGTH))

    @property
    def id(self) -> bytes:
        return self.ephid

    @property
    def payload(self) -> bytes:
        """The service data for 0xFD68."""
        return self.ephid

    @classmethod
    def of(cls, id: bytes, metadata: bytes | None) -> Dp3tAdvert:
        """The advert of an ID (the scheme sends no metadata)."""
        return cls(id)

    @classmethod
    def from_payload(cls, payload: bytes) -> Dp3tAdvert:
        if len(payload) != DP3T_EPHID_LENGTH:
            raise MalformedPayloadError("dp3t", "service data for 0xFD68", DP3T_EPHID_LENGTH, len(payload))
        return cls(bytes(payload))

    def to_ad_bytes(self) -> bytes:
        """Raw advertising data: flags, complete 16-bit UUID list, service data (27 bytes)."""
        return _service_data_ad_bytes(self.flags, DP3T_SERVICE_UUID16, self.payload)

    def to_bluez(self) -> BluezAdvertisement:
        return _service_data_bluez(DP3T_SERVICE_UUID, self.payload)


Advert = GaenAdvert | BluezoneAdvert | Dp3tAdvert


def _normalise_uuid(key: str) -> str:
    """The 128-bit form of a UUID key; a key that is no UUID comes back as it is (so it is not ours)."""
    text = key.strip().lower()
    if len(text) in (4, 8) and _is_hex(text):
        return uuid16_to_uuid128(int(text, 16)) if len(text) == 4 else f"{text}{BASE_UUID_SUFFIX}"
    return text


def decode_bleak(service_data: Mapping[str, bytes], manufacturer_data: Mapping[int, bytes]) -> Advert | None:
    """Decode bleak's ``AdvertisementData.service_data`` / ``.manufacturer_data`` shapes.

    Service data keys are 128-bit UUID strings (any case; 16- and 32-bit short forms are accepted too).
    """
    for key, value in service_data.items():
        if isinstance(key, str) and _normalise_uuid(key) == GAEN_SERVICE_UUID:
            return GaenAdvert.from_payload(_payload("GAEN service data", value))
        if isinstance(key, str) and _normalise_uuid(key) == DP3T_SERVICE_UUID:
            return Dp3tAdvert.from_payload(_payload("DP-3T service data", value))
    if BLUEZONE_COMPANY_ID in manufacturer_data:
        return BluezoneAdvert.from_payload(
            _payload("Bluezone manufacturer data", manufacturer_data[BLUEZONE_COMPANY_ID])
        )
    return None


def _payload(what: str, value: object) -> bytes:
    """A payload as bytes; anything else (``bytes(5)`` would make five zero bytes of an int) is refused."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise PayloadTypeError(what, type(value).__name__)
    return bytes(value)


def decode_ad_bytes(raw: bytes) -> Advert | None:
    """Decode raw advertising data (AD structures), e.g. from an HCI advertising report."""
    service_data: dict[str, bytes] = {}
    manufacturer_data: dict[int, bytes] = {}
    for ad_type, data in parse_ad_structures(raw):
        if ad_type == AD_SERVICE_DATA_16BIT and len(data) >= 2:
            service_data[uuid16_to_uuid128(int.from_bytes(data[:2], "little"))] = data[2:]
        elif ad_type == AD_MANUFACTURER_DATA and len(data) >= 2:
            manufacturer_data[int.from_bytes(data[:2], "little")] = data[2:]
    return decode_bleak(service_data, manufacturer_data)
