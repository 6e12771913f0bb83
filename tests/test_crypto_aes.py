"""Both AES-ECB implementations of the reference crypto backend against FIPS-197 and the official GAEN
vectors (RPIs of set 0)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import load_vectors
from proximity.crypto import crypto_backend
from proximity.crypto.aes import EcbBackend, LibcryptoEcb, PortableEcb, available_backends
from proximity.schemes.gaen import derive_aemks, derive_rpiks, padded_blocks

OFFICIAL: dict[str, Any] = load_vectors("gaen-test-vectors.json")["sets"][0]
BACKENDS = available_backends()


def test_the_fast_backend_loads_here() -> None:
    # This machine kind has libcrypto 3 and cffi; if that changes, the portable path still works.
    assert [b.name for b in BACKENDS] == ["libcrypto", "cryptography"]
    assert crypto_backend("python").name == "python:libcrypto"


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_fips197_known_answer(backend: EcbBackend) -> None:
    key = np.arange(16, dtype=np.uint8).reshape(1, 16)
    plain = np.frombuffer(bytes.fromhex("00112233445566778899aabbccddeeff"), np.uint8).reshape(1, 1, 16)
    assert backend.encrypt_rows(key, plain).tobytes().hex() == "69c4e0d86a7b0430d8cdb78070b4c55a"


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_official_rpis_of_set_0(backend: EcbBackend) -> None:
    tek = np.frombuffer(bytes.fromhex(OFFICIAL["tek_hex"]), np.uint8).reshape(1, 16)
    reference = crypto_backend("portable")
    rpik = derive_rpiks(tek, reference)
    assert rpik.tobytes().hex() == OFFICIAL["rpik_hex"]
    assert derive_aemks(tek, reference).tobytes().hex() == OFFICIAL["aemk_hex"]
    blocks = padded_blocks(np.array([OFFICIAL["en_interval_number_of_key"]], np.int64))
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


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_one_backend_shared_by_many_threads_gives_the_portable_result(backend: EcbBackend) -> None:
    # Regression: LibcryptoEcb re-keyed ONE shared EVP context, so concurrent callers (matching with
    # worker threads) raced on it and got some rows encrypted under another thread's key.
    import threading

    rng = np.random.default_rng(11)
    jobs = [
        (rng.integers(0, 256, (64, 16), dtype=np.uint8), rng.integers(0, 256, (64, 9, 16), dtype=np.uint8))
        for _ in range(8)
    ]
    expected = [PortableEcb().encrypt_rows(keys, blocks) for keys, blocks in jobs]
    wrong: list[int] = []
    barrier = threading.Barrier(len(jobs))

    def run(j: int) -> None:
        keys, blocks = jobs[j]
        barrier.wait()
        for _ in range(60):
            if not np.array_equal(backend.encrypt_rows(keys, blocks), expected[j]):
                wrong.append(j)

    threads = [threading.Thread(target=run, args=(j,)) for j in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def _encrypt_with_the_inherited_backend(keys: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    # Runs in a forked child: BACKENDS[0] is the parent's object (inherited, not pickled).
    return BACKENDS[0].encrypt_rows(keys, blocks)


def test_libcrypto_backend_works_in_a_forked_child() -> None:
    import multiprocessing

    if not isinstance(BACKENDS[0], LibcryptoEcb):
        pytest.skip("libcrypto is not available here")
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork here")
    backend = BACKENDS[0]
    rng = np.random.default_rng(12)
    keys = rng.integers(0, 256, (5, 16), dtype=np.uint8)
    blocks = rng.integers(0, 256, (5, 3, 16), dtype=np.uint8)
    backend.encrypt_rows(keys, blocks)  # the parent has made its context
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply(_encrypt_with_the_inherited_backend, (keys, blocks))
    assert np.array_equal(child, PortableEcb().encrypt_rows(keys, blocks))
