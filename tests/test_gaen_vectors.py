"""GAEN v1.2 crypto against Google's published test vectors (set 0), one test id per vector."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from conftest import load_vectors
from proximity.schemes.gaen import (
    GAEN,
    Metadata,
    TemporaryExposureKey,
    aems_of_rpis,
    decrypt_aem,
    derive_aemk,
    derive_rpik,
    en_interval_number,
    encrypt_aem,
    rpis,
)

OFFICIAL: dict[str, Any] = load_vectors("gaen-test-vectors.json")["sets"][0]
TEK = bytes.fromhex(OFFICIAL["tek_hex"])
METADATA = bytes.fromhex(OFFICIAL["ble_metadata_hex"])
PAIRS = OFFICIAL["advertised_data"]


def test_vector_set_is_complete() -> None:
    assert len(PAIRS) == 144
    assert [p["en_interval_number"] for p in PAIRS] == list(range(2642976, 2642976 + 144))


def test_key_interval_from_generation_time() -> None:
    assert (
        en_interval_number(OFFICIAL["key_generation_unix_seconds"]) == OFFICIAL["en_interval_number_of_key"]
    )


def test_rpik() -> None:
    assert derive_rpik(TEK).hex() == OFFICIAL["rpik_hex"]


def test_aemk() -> None:
    assert derive_aemk(TEK).hex() == OFFICIAL["aemk_hex"]


def test_metadata_decodes() -> None:
    metadata = Metadata.from_bytes(METADATA)
    assert metadata == Metadata(tx_power=8, calibration_confidence=0, major_version=1, minor_version=0)
    assert metadata.to_bytes() == METADATA


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"interval-{p['index']}")
def test_rpi_and_aem(pair: dict[str, Any]) -> None:
    rpik, aemk = derive_rpik(TEK), derive_aemk(TEK)
    rpi = rpis(rpik, pair["en_interval_number"], 1)[0].tobytes()
    assert rpi.hex() == pair["rpi_hex"]
    aem = encrypt_aem(aemk, rpi, METADATA)
    assert aem.hex() == pair["aem_hex"]
    assert decrypt_aem(aemk, rpi, aem) == METADATA


def test_all_rpis_and_aems_of_the_key_in_one_batch() -> None:
    key = TemporaryExposureKey(TEK, OFFICIAL["en_interval_number_of_key"])
    batch = GAEN.ids_of_key(key)
    aems = GAEN.aems_of_key(key, batch, Metadata.from_bytes(METADATA))
    assert [row.tobytes().hex() for row in batch.ids] == [p["rpi_hex"] for p in PAIRS]
    assert [row.tobytes().hex() for row in aems] == [p["aem_hex"] for p in PAIRS]
    assert batch.starts[0] == OFFICIAL["key_generation_unix_seconds"]
    assert np.all(batch.ends - batch.starts == 600)


def test_id_at_agrees_with_batch() -> None:
    key = TemporaryExposureKey(TEK, OFFICIAL["en_interval_number_of_key"])
    start = OFFICIAL["key_generation_unix_seconds"]
    for pair in PAIRS[::13]:
        at = start + pair["index"] * 600 + 599.5
        ephemeral = GAEN.id_at(key, at)
        assert ephemeral.hex == pair["rpi_hex"]
        assert ephemeral.start == start + pair["index"] * 600


def test_batch_aem_decrypts_with_the_same_call() -> None:
    key = TemporaryExposureKey(TEK, OFFICIAL["en_interval_number_of_key"])
    batch = GAEN.ids_of_key(key)
    aems = GAEN.aems_of_key(key, batch, Metadata.from_bytes(METADATA))
    # XOR with the keystream again: an all-zero "metadata" yields the keystream, so AEM ^ it = metadata.
    keystream = aems_of_rpis(derive_aemk(TEK), batch.ids, bytes(4))
    assert np.all((aems ^ keystream) == np.frombuffer(METADATA, dtype=np.uint8))


@given(st.binary(min_size=16, max_size=16))
def test_hkdf_matches_cryptography_hkdf(tek: bytes) -> None:
    """An independent second implementation: pyca's HKDF with salt=None."""
    for info, derive in ((b"EN-RPIK", derive_rpik), (b"EN-AEMK", derive_aemk)):
        reference = HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=info).derive(tek)
        assert derive(tek) == reference
