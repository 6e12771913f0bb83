"""Encode both schemes' adverts to raw bytes and BlueZ's form, and decode what a scanner would hear."""

from __future__ import annotations

from proximity import BluezoneAdvert, GaenAdvert, MalformedPayloadError, decode_ad_bytes, decode_bleak
from proximity.payloads import GAEN_SERVICE_UUID


def main() -> None:
    gaen = GaenAdvert(rpi=bytes.fromhex("8be6cd371c5c891604bfbe49df845096"), aem=bytes.fromhex("72033874"))
    bluezone = BluezoneAdvert(bytes.fromhex("B9A665D754FE65E665D76A45"))
    for advert in (gaen, bluezone):
        raw = advert.to_ad_bytes()
        print(f"{advert.scheme:8} raw ({len(raw)} bytes): {raw.hex()}")
        print(f"{'':8} BlueZ form: {advert.to_bluez()}")
        assert decode_ad_bytes(raw) == advert
    # What bleak hands a scanner callback: service data keyed by 128-bit UUID strings.
    print("decoded from bleak's shape:", decode_bleak({GAEN_SERVICE_UUID: gaen.payload}, {}))
    print("an advert that is not ours:", decode_bleak({}, {0x004C: b"\x02\x15"}))
    try:
        decode_bleak({GAEN_SERVICE_UUID: gaen.payload[:19]}, {})
    except MalformedPayloadError as error:
        print("ours but malformed:", error)


if __name__ == "__main__":
    main()
