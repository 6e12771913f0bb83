"""Both AES-ECB backends against FIPS-197 and the official GAEN vectors (RPIs of set 0)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import load_vectors
from proximity.matching.aes import EcbBackend, LibcryptoEcb, PortableEcb, available_backends, default_backend
from proximity.matching.gaen import _padded_blocks, derive_keys

OFFICIAL: dict[str, Any] = load_vectors("gaen-test-vectors.json")["sets"][0]
BACKENDS = available_backends()


def test_the_fast_backend_loads_here() -> None:
    # This machine kind has libcrypto 3 and cffi; if that changes, the portable path still works.
    assert [b.name for b in BACKENDS] == ["libcrypto", "cryptography"]
    assert default_backend().name in {"libcrypto", "cryptography"}


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_fips197_known_answer(backend: EcbBackend) -> None:
    key = np.arange(16, dtype=np.uint8).reshape(1, 16)
    plain = np.frombuffer(bytes.fromhex("00112233445566778899aabbccddeeff"), np.uint8).reshape(1, 1, 16)
    assert backend.encrypt_rows(key, plain).tobytes().hex() == "69c4e0d86a7b0430d8cdb78070b4c55a"


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_official_rpis_of_set_0(backend: EcbBackend) -> None:
    tek = np.frombuffer(bytes.fromhex(OFFICIAL["tek_hex"]), np.uint8).reshape(1, 16)
    rpik = derive_keys(tek, b"EN-RPIK")
    assert rpik.tobytes().hex() == OFFICIAL["rpik_hex"]
    assert derive_keys(tek, b"EN-AEMK").tobytes().hex() == OFFICIAL["aemk_hex"]
    blocks = _padded_blocks(np.array([OFFICIAL["en_interval_number_of_key"]], np.int64))
    assert blocks[0, 0].tobytes().hex() == OFFICIAL["derived_not_in_source"]["padded_data_0_hex"]
    out = backend.encrypt_rows(rpik, blocks)[0]
    assert [row.tobytes().hex() for row in out] == [p["rpi_hex"] for p in OFFICIAL["advertised_data"]]


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_shared_plaintext_rows_and_many_keys(backend: EcbBackend) -> None:
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 256, (9, 16), dtype=np.uint8)
    blocks = rng.integers(0, 256, (3, 5, 16), dtype=np.uint8)
    rows = np.array([0, 1, 2, 2, 1, 0, 0, 1, 2])
    expected = PortableEcb().encrypt_rows(keys, blocks[rows])
    assert np.array_equal(backend.encrypt_rows(keys, blocks, rows), expected)


def test_bad_shapes_are_refused() -> None:
    backend = PortableEcb()
    with pytest.raises(ValueError, match="keys"):
        backend.encrypt_rows(np.zeros((2, 15), np.uint8), np.zeros((2, 1, 16), np.uint8))
    with pytest.raises(ValueError, match="rows"):
        backend.encrypt_rows(np.zeros((2, 16), np.uint8), np.zeros((1, 1, 16), np.uint8), np.array([0, 1]))


def test_libcrypto_backend_survives_pickling() -> None:
    import pickle

    if not isinstance(BACKENDS[0], LibcryptoEcb):
        pytest.skip("libcrypto is not available here")
    clone = pickle.loads(pickle.dumps(BACKENDS[0]))
    assert clone.name == "libcrypto"
