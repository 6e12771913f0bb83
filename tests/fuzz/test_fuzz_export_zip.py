"""Fuzz: GAEN export.zip / export.bin (mutated signed exports) -> parse_export_bytes, verified or not."""

from __future__ import annotations

from fuzzing import FUZZ_SETTINGS, guarded, inputs
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURES
from proximity.keyfiles.gaen_export import (
    TrustedKey,
    generate_signing_key,
    parse_export_bytes,
    signing_key_pem,
    write_export,
)
from proximity.schemes.gaen import TemporaryExposureKey
from proximity.schemes.published import DiagnosisKey

SIGNER = generate_signing_key()
TRUSTED = [
    TrustedKey.from_pem(signing_key_pem(SIGNER)[1]),
    TrustedKey.from_pem((FIXTURES / "gaen-server-example-public.pem").read_bytes()),
]
OURS = write_export(
    [DiagnosisKey(TemporaryExposureKey(bytes([i]) * 16, 2_650_000 + i * 144)) for i in range(5)],
    SIGNER,
    key_id="310",
    start_timestamp=1_590_000_000,
    end_timestamp=1_590_086_400,
)
SEEDS = [
    OURS,
    (FIXTURES / "gaen-server-example-export.zip").read_bytes(),
    (FIXTURES / "gaen-internals-export.bin").read_bytes(),
]


def test_fuzz_export_zip() -> None:
    with guarded("export.zip") as guard:

        @FUZZ_SETTINGS
        @given(inputs(SEEDS), st.booleans())
        def run(data: bytes, verify: bool) -> None:
            guard.call(lambda: parse_export_bytes(data, TRUSTED, verify=verify, source="fuzz.zip"))

        run()
