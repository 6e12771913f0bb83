"""Fuzz: raw advertising data and bleak's dictionaries -> decode_ad_bytes / decode_bleak."""

from __future__ import annotations

from typing import Any

from fuzzing import FUZZ_SETTINGS, guarded, inputs, json_values
from hypothesis import given
from hypothesis import strategies as st

from proximity.payloads import BluezoneAdvert, GaenAdvert
from proximity.payloads.adverts import BLUEZONE_COMPANY_ID, GAEN_SERVICE_UUID, decode_ad_bytes, decode_bleak

SEEDS = [
    GaenAdvert(bytes(range(16)), bytes.fromhex("400c0000")).to_ad_bytes(),
    BluezoneAdvert(bytes.fromhex("3AA8DFC0A15682B27216FC31")).to_ad_bytes(),
]
VALUES = st.one_of(st.binary(max_size=40), json_values())


def test_fuzz_adverts() -> None:
    with guarded("adverts") as guard:

        @FUZZ_SETTINGS
        @given(st.booleans(), inputs(SEEDS, 64), VALUES, VALUES)
        def run(raw_bytes: bool, raw: bytes, service: Any, manufacturer: Any) -> None:
            if raw_bytes:
                guard.call(lambda: decode_ad_bytes(raw))
            else:
                guard.call(
                    lambda: decode_bleak({GAEN_SERVICE_UUID: service}, {BLUEZONE_COMPANY_ID: manufacturer})
                )

        run()
