"""BLE payload codecs: round trips through raw bytes, BlueZ's form and bleak's real objects."""

from __future__ import annotations

import pytest
from bleak.backends.scanner import AdvertisementData
from hypothesis import given
from hypothesis import strategies as st

from proximity import (
    BluezoneAdvert,
    GaenAdvert,
    MalformedAdvertisingDataError,
    MalformedPayloadError,
    decode_ad_bytes,
    decode_bleak,
)
from proximity.payloads import BLUEZONE_COMPANY_ID, GAEN_SERVICE_UUID, build_ad_structures

rpis = st.binary(min_size=16, max_size=16)
aems = st.binary(min_size=4, max_size=4)
bluezone_ids = st.binary(min_size=12, max_size=12)
gaen_adverts = st.builds(GaenAdvert, rpis, aems)
bluezone_adverts = st.builds(BluezoneAdvert, bluezone_ids)
adverts = gaen_adverts | bluezone_adverts


def bleak_data(service_data: dict[str, bytes], manufacturer_data: dict[int, bytes]) -> AdvertisementData:
    return AdvertisementData(
        local_name=None,
        manufacturer_data=manufacturer_data,
        service_data=service_data,
        service_uuids=list(service_data),
        tx_power=None,
        rssi=-60,
        platform_data=(),
    )


@given(adverts)
def test_raw_round_trip_within_legacy_limit(advert: GaenAdvert | BluezoneAdvert) -> None:
    raw = advert.to_ad_bytes()
    assert len(raw) <= 31
    assert decode_ad_bytes(raw) == advert


@given(adverts)
def test_bluez_form_round_trips_through_bleak_shapes(advert: GaenAdvert | BluezoneAdvert) -> None:
    bluez = advert.to_bluez()
    assert bluez.type == "broadcast"
    data = bleak_data(dict(bluez.service_data), dict(bluez.manufacturer_data))
    assert decode_bleak(data.service_data, data.manufacturer_data) == advert


def test_gaen_advert_is_the_31_bytes_of_the_spec() -> None:
    advert = GaenAdvert(bytes(range(16)), bytes([0xA0, 0xA1, 0xA2, 0xA3]))
    raw = advert.to_ad_bytes()
    assert raw == bytes.fromhex("02011a03036ffd17166ffd") + bytes(range(16)) + bytes.fromhex("a0a1a2a3")
    assert len(raw) == 31


def test_bluezone_advert_layout() -> None:
    advert = BluezoneAdvert(bytes.fromhex("B9A665D754FE65E665D76A45"))
    raw = advert.to_ad_bytes()
    assert raw[3:] == bytes.fromhex("0303564e0fffb522B9A665D754FE65E665D76A45")
    assert advert.to_bluez().manufacturer_data == {BLUEZONE_COMPANY_ID: advert.bluezone_id}


def test_uuid_keys_in_any_case_and_short_form() -> None:
    payload = bytes(20)
    for key in (GAEN_SERVICE_UUID.upper(), "fd6f", "0000FD6F"):
        assert decode_bleak({key: payload}, {}) == GaenAdvert(bytes(16), bytes(4))


def test_not_ours_decodes_to_none() -> None:
    assert (
        decode_bleak({"0000180f-0000-1000-8000-00805f9b34fb": b"\x64"}, {0x004C: b"\x02\x15" + bytes(21)})
        is None
    )
    heart_rate = build_ad_structures([(0x01, b"\x06"), (0x03, b"\x0d\x18"), (0x16, b"\x0d\x18\x40")])
    assert decode_ad_bytes(heart_rate) is None
    assert decode_ad_bytes(b"") is None
    assert decode_ad_bytes(b"\x02\x01\x06\x00\x00\x00") is None  # zero-length padding ends the data


@given(st.binary(max_size=40).filter(lambda b: len(b) != 20))
def test_gaen_service_data_of_wrong_length_is_an_error(payload: bytes) -> None:
    with pytest.raises(MalformedPayloadError, match=f"must be 20 bytes, got {len(payload)}") as caught:
        decode_bleak({GAEN_SERVICE_UUID: payload}, {})
    assert caught.value.scheme == "gaen"


@given(st.binary(max_size=27).filter(lambda b: len(b) != 12))
def test_bluezone_manufacturer_data_of_wrong_length_is_an_error(payload: bytes) -> None:
    raw = build_ad_structures([(0xFF, b"\xb5\x22" + payload)])
    with pytest.raises(MalformedPayloadError, match=f"must be 12 bytes, got {len(payload)}") as caught:
        decode_ad_bytes(raw)
    assert caught.value.scheme == "bluezone"


def test_truncated_ad_structure_is_a_clear_error() -> None:
    with pytest.raises(MalformedAdvertisingDataError, match="claims 23 bytes"):
        decode_ad_bytes(bytes.fromhex("02011a17166ffd") + bytes(5))


def test_advert_values_validate_lengths() -> None:
    with pytest.raises(ValueError, match="RPI must be 16 bytes, got 15"):
        GaenAdvert(bytes(15), bytes(4))
    with pytest.raises(ValueError, match="Bluezone ID must be 12 bytes, got 16"):
        BluezoneAdvert(bytes(16))
    with pytest.raises(ValueError, match="at most 31 bytes"):
        build_ad_structures([(0xFF, bytes(40))])


@pytest.mark.parametrize("key", ["zzzz", "fd6g", "xyzw1234", " -x- ", ""])
def test_service_data_keys_that_are_no_uuid_are_not_ours(key: str) -> None:
    assert decode_bleak({key: bytes(20)}, {}) is None
    # ...and do not hide an advert of ours beside them.
    assert decode_bleak({key: b"\x01", "fd6f": bytes(20)}, {}) == GaenAdvert(bytes(16), bytes(4))


@given(st.integers(0, 0xFFFF))
def test_16_bit_uuids_round_trip_through_the_base_uuid(short: int) -> None:
    from proximity.payloads.adverts import uuid16_to_uuid128, uuid128_to_uuid16

    assert uuid128_to_uuid16(uuid16_to_uuid128(short)) == short


@pytest.mark.parametrize(
    "uuid",
    [
        "0000+d6f-0000-1000-8000-00805f9b34fb",  # int(..., 16) would take the sign
        "0000_d6f-0000-1000-8000-00805f9b34fb",
        "0001fd6f-0000-1000-8000-00805f9b34fb",  # a 32-bit UUID
        "0000fd6f-0000-1000-8000-00805f9b34fc",  # not the Bluetooth base
        "0000fd6f-0000-1000-8000-00805f9b34fb0",
        "fd6f",
    ],
)
def test_other_uuids_have_no_16_bit_form(uuid: str) -> None:
    from proximity.payloads.adverts import uuid128_to_uuid16

    assert uuid128_to_uuid16(uuid) is None
