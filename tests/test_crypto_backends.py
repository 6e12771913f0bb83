"""The two crypto backends: the C one against published vectors and, primitive by primitive and scheme by
scheme, against the numpy reference; and the one switch that chooses between them."""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import load_vectors
from proximity.crypto import CHOICES, ENV_VAR, crypto_backend, native, resolve_backend, switch
from proximity.errors import BackendUnavailableError
from proximity.matching import GaenMatcher, KeyBatch, ObservedIdIndex, match_bluezone, match_dp3t, match_gaen
from proximity.schemes.bluezone import BYTE_SELECT, BluezoneBaseKey, ids_of_records
from proximity.schemes.dp3t import Dp3tDayKey, ephid_inputs, ephids_of
from proximity.schemes.gaen import derive_aemks, derive_rpiks, rpi_inputs, rpis_of_keys
from proximity.schemes.published import NO_ONSET
from proximity.sightings import Observations

OFFICIAL: dict[str, Any] = load_vectors("gaen-test-vectors.json")["sets"][0]
DP3T: dict[str, Any] = load_vectors("dp3t-vectors.json")
C = native.native_module()
needs_c = pytest.mark.skipif(C is None, reason=f"C crypto backend unavailable: {native.unavailable_reason()}")
SHA_IMPLS = ["portable", "shani"] if C is not None and C.features()["shani"] else ["portable"]
AES_IMPLS = ["aesni", "vaes"] if C is not None and C.features()["vaes"] else ["aesni"]
REFERENCE = crypto_backend("portable")


@pytest.fixture(params=SHA_IMPLS)
def sha_impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test with each SHA-256 compression the CPU supports, restoring the chosen one after."""
    assert C is not None
    previous = C.set_sha256(request.param)
    yield str(request.param)
    C.set_sha256(previous)


@pytest.fixture(params=AES_IMPLS)
def aes_impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test with each AES implementation the CPU supports, restoring the chosen one after."""
    assert C is not None
    previous = C.set_aes(request.param)
    yield str(request.param)
    C.set_aes(previous)


def _every_impl() -> Iterator[None]:
    """Yield once per (SHA-256, AES) implementation pair of the C backend, restoring the chosen ones."""
    assert C is not None
    sha, aes = C.set_sha256("portable"), C.set_aes("aesni")
    try:
        for s in SHA_IMPLS:
            for a in AES_IMPLS:
                C.set_sha256(s)
                C.set_aes(a)
                yield
    finally:
        C.set_sha256(sha)
        C.set_aes(aes)


# --- published vectors ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["c", "libcrypto", "portable"])
def test_official_gaen_vector_on_every_backend(name: str) -> None:
    if name == "c" and C is None:
        pytest.skip("no C backend")
    crypto = crypto_backend(name)
    tek = np.frombuffer(bytes.fromhex(OFFICIAL["tek_hex"]), np.uint8).reshape(1, 16)
    assert derive_rpiks(tek, crypto).tobytes().hex() == OFFICIAL["rpik_hex"]
    assert derive_aemks(tek, crypto).tobytes().hex() == OFFICIAL["aemk_hex"]
    rpis = rpis_of_keys(tek, np.array([OFFICIAL["en_interval_number_of_key"]]), crypto)
    assert [row.tobytes().hex() for row in rpis[0]] == [p["rpi_hex"] for p in OFFICIAL["advertised_data"]]


@needs_c
def test_official_gaen_vector_with_every_c_implementation(sha_impl: str, aes_impl: str) -> None:
    test_official_gaen_vector_on_every_backend("c")


@pytest.mark.parametrize("name", ["c", "libcrypto", "portable"])
def test_dp3t_vectors_on_every_backend(name: str) -> None:
    if name == "c" and C is None:
        pytest.skip("no C backend")
    sk1 = bytes.fromhex(DP3T["sk1"])
    ephids = ephids_of(np.frombuffer(sk1, np.uint8).reshape(1, 32), crypto_backend(name))[0]
    for index, ephid in DP3T["ephids_of_sk1"].items():
        assert ephids[int(index)].tobytes().hex() == ephid


@needs_c
def test_fips197_aes256_and_rfc4231_hmac(sha_impl: str, aes_impl: str) -> None:
    c = crypto_backend("c")
    key = np.arange(32, dtype=np.uint8).reshape(1, 32)
    plain = np.frombuffer(bytes.fromhex("00112233445566778899aabbccddeeff"), np.uint8).reshape(1, 1, 16)
    assert c.aes_ecb(key, plain).tobytes().hex() == "8ea2b7ca516745bfeafc49904b496089"  # FIPS-197 C.3
    mac = c.hmac_sha256(np.frombuffer(b"Jefe", np.uint8).reshape(1, 4), b"what do ya want for nothing?")
    assert mac.tobytes().hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


# --- every primitive: C == reference ----------------------------------------------------------------

arrays = st.integers(0, 2**32 - 1).map(np.random.default_rng)


@needs_c
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays, st.sampled_from([16, 32]), st.integers(0, 9), st.integers(1, 40), st.integers(1, 4))
def test_aes_ecb_and_ctr_equal_the_reference(
    rng: np.random.Generator, width: int, n: int, per: int, u: int
) -> None:
    c = crypto_backend("c")
    keys = rng.integers(0, 256, (n, width), np.uint8)
    blocks = rng.integers(0, 256, (u, per, 16), np.uint8)
    rows = rng.integers(0, u, n)
    counters = rng.integers(0, 256, (n, 16), np.uint8)
    counters[: n // 2, 8:] = 0xFF  # the low 64 bits carry into the high ones (and, all 0xFF, wrap)
    if n:
        counters[0, :] = 0xFF
    length = int(rng.integers(0, 16 * per + 20))
    for _ in _every_impl():
        assert np.array_equal(c.aes_ecb(keys, blocks, rows), REFERENCE.aes_ecb(keys, blocks, rows))
        assert np.array_equal(c.aes_ctr(keys, counters, length), REFERENCE.aes_ctr(keys, counters, length))


def test_aes_ctr_is_the_standard_mode() -> None:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    rng = np.random.default_rng(3)
    for name in ["c", "portable"] if C is not None else ["portable"]:
        for width in (16, 32):
            key, counter = rng.bytes(width), b"\xff" * 9 + rng.bytes(7)
            expected = Cipher(algorithms.AES(key), modes.CTR(counter)).encryptor().update(bytes(100))
            keys = np.frombuffer(key, np.uint8).reshape(1, width)
            got = crypto_backend(name).aes_ctr(keys, np.frombuffer(counter, np.uint8).reshape(1, 16), 100)
            assert got.tobytes() == expected


@needs_c
@settings(max_examples=40, deadline=None)
@given(arrays, st.integers(0, 6), st.integers(1, 130), st.binary(max_size=300), st.integers(1, 32))
def test_hashes_hmac_and_hkdf_equal_the_reference(
    rng: np.random.Generator, n: int, width: int, message: bytes, length: int
) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    c = crypto_backend("c")
    rows = rng.integers(0, 256, (n, width), np.uint8)
    info = message[:256]
    for _ in _every_impl():
        assert np.array_equal(c.sha256(rows), REFERENCE.sha256(rows))
        assert np.array_equal(c.hmac_sha256(rows, message), REFERENCE.hmac_sha256(rows, message))
        assert np.array_equal(c.hkdf_sha256(rows, info, length), REFERENCE.hkdf_sha256(rows, info, length))
    for row, mac, okm in zip(
        rows, c.hmac_sha256(rows, message), c.hkdf_sha256(rows, info, length), strict=True
    ):
        assert mac.tobytes() == hmac.new(row.tobytes(), message, hashlib.sha256).digest()
        assert okm.tobytes() == HKDF(hashes.SHA256(), length, None, info).derive(row.tobytes())


@needs_c
@settings(max_examples=30, deadline=None)
@given(arrays, st.integers(0, 5), st.integers(0, 40), st.booleans())
def test_sha256_chains_equal_the_reference(
    rng: np.random.Generator, n: int, length: int, select: bool
) -> None:
    c = crypto_backend("c")
    seeds = rng.integers(0, 256, (n, 32), np.uint8)
    chosen = BYTE_SELECT if select else None
    for _ in _every_impl():
        got = c.sha256_chain(seeds, length, chosen)
        assert got.shape == (n, length, 12 if select else 32)
        assert np.array_equal(got, REFERENCE.sha256_chain(seeds, length, chosen))
    if n and length > 2 and not select:
        assert got[0, 2].tobytes() == hashlib.sha256(hashlib.sha256(seeds[0].tobytes()).digest()).digest()


@needs_c
@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([12, 16]),
    st.lists(st.binary(min_size=16, max_size=16), max_size=60),
    st.lists(st.binary(min_size=16, max_size=16), max_size=30),
    st.integers(0, 255),
)
def test_probe_equals_the_reference(length: int, observed: list[bytes], others: list[bytes], b: int) -> None:
    # shared first 8 bytes make prefix buckets and exact-compare collisions common
    observed = [(bytes([b]) * 8 + o[8:] if i % 3 == 0 else o)[:length] for i, o in enumerate(observed)]
    probes = observed + [o[:length] for o in others] + [bytes([b]) * length]
    index = ObservedIdIndex.build(np.frombuffer(b"".join(observed), np.uint8).reshape(-1, length))
    candidates = np.frombuffer(b"".join(probes), np.uint8).reshape(-1, length)
    python = index.find(candidates, backend="portable")
    c = index.find(candidates, backend="c")
    assert c[0].tolist() == python[0].tolist() and c[1].tolist() == python[1].tolist()


@needs_c
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays, st.sampled_from([16, 32]), st.integers(1, 6), st.integers(1, 150), st.integers(0, 20))
def test_fused_encrypt_and_probe_equals_the_reference(
    rng: np.random.Generator, width: int, n: int, per: int, plants: int
) -> None:
    keys = rng.integers(0, 256, (n, width), np.uint8)
    blocks = rng.integers(0, 256, (2, per, 16), np.uint8)
    rows = rng.integers(0, 2, n)
    counts = rng.integers(0, per + 2, n)  # some beyond the row (clipped), some zero
    out = REFERENCE.aes_ecb(keys, blocks, rows).reshape(-1, 16)
    planted = out[rng.integers(0, n * per, plants)]
    index = ObservedIdIndex.build(np.concatenate([rng.integers(0, 256, (50, 16), np.uint8), planted]))
    expected = REFERENCE.aes_ecb_probe(keys, blocks, rows, counts, index)
    for _ in _every_impl():
        got = crypto_backend("c").aes_ecb_probe(keys, blocks, rows, counts, index)
        assert got[0].tolist() == expected[0].tolist() and got[1].tolist() == expected[1].tolist()


@needs_c
def test_buffers_of_the_wrong_size_are_refused() -> None:
    assert C is not None
    with pytest.raises(ValueError, match="32"):
        C.sha256_rows(bytes(15), 15, bytearray(31))
    with pytest.raises(ValueError, match="16 or 32"):
        C.aes_ecb(bytes(24), 24, bytes(16), 1, np.zeros(1, np.int64), bytearray(16))
    with pytest.raises(ValueError, match="rows"):
        C.aes_ecb(bytes(16), 16, bytes(16), 1, np.array([1], np.int64), bytearray(16))
    with pytest.raises(ValueError, match="select"):
        C.sha256_chain(bytes(32), 2, bytes([32]), bytearray(2))
    with pytest.raises(ValueError, match="length"):
        C.hkdf_sha256(bytes(16), 16, b"", 33, bytearray(33))
    with pytest.raises(TypeError):
        C.sha256_rows(bytes(16), 16, b"read-only output, thirty-two by")


@needs_c
@pytest.mark.parametrize(("seeds", "length"), [(1, 2**62 + 1), (2, 2**61 + 1), (4, 2**60 + 1)])
def test_chains_refuse_sizes_that_overflow(seeds: int, length: int) -> None:
    # n*length*12 must not wrap around, or a tiny output buffer would pass the size check. In a child:
    # an unchecked size crashes the interpreter.
    code = (
        "from proximity.crypto import _native\n"
        f"try:\n    _native.sha256_chain(bytes(32 * {seeds}), {length}, bytes(12), "
        f"bytearray(({seeds} * {length} * 12) % 2**64))\n"
        "except (OverflowError, ValueError) as e:\n    print(type(e).__name__, e)\n"
        "else:\n    print('accepted')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.startswith("OverflowError"), done.stdout


@needs_c
def test_the_cpu_features_are_reported_and_the_fastest_code_is_chosen() -> None:
    assert C is not None
    features = C.features()
    assert features["aesni"] is True  # else the backend would not be available
    assert features["sha256"] == ("shani" if features["shani"] else "portable")
    assert features["aes"] == ("vaes" if features["vaes"] else "aesni")
    with pytest.raises(ValueError, match="SHA-256"):
        C.set_sha256("md5")
    with pytest.raises(ValueError, match="AES"):
        C.set_aes("des")


# --- each scheme's batch crypto: C == reference ----------------------------------------------------


@needs_c
def test_each_schemes_batch_crypto_is_identical_on_both_backends() -> None:
    rng = np.random.default_rng(8)
    c = crypto_backend("c")
    teks, starts = rng.integers(0, 256, (20, 16), np.uint8), rng.integers(2**32 - 200, 2**32, 20)
    assert np.array_equal(rpis_of_keys(teks, starts, c), rpis_of_keys(teks, starts, REFERENCE))
    daily = rng.integers(0, 256, (5, 32), np.uint8)
    for count, per_day in ((1, 96), (96, 96), (300, 144), (1344, 96)):
        assert np.array_equal(
            ids_of_records(daily, count, per_day, c), ids_of_records(daily, count, per_day, REFERENCE)
        )
    assert np.array_equal(ephids_of(daily, c), ephids_of(daily, REFERENCE))
    c_inputs, reference_inputs = ephid_inputs(daily, c), ephid_inputs(daily, REFERENCE)
    for i in range(3):
        assert np.array_equal(c_inputs[i], reference_inputs[i])
    assert np.array_equal(rpi_inputs(teks, starts, c)[1], rpi_inputs(teks, starts, REFERENCE)[1])


# --- the one switch ---------------------------------------------------------------------------------


def test_env_var_and_argument_choose_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert CHOICES == ("auto", "c", "python", "libcrypto", "portable")
    monkeypatch.setenv(ENV_VAR, "python")
    assert resolve_backend() in {"libcrypto", "portable"}
    assert crypto_backend().name.startswith("python:")
    monkeypatch.setenv(ENV_VAR, "auto")
    assert resolve_backend() == ("c" if C is not None else "libcrypto")
    monkeypatch.setenv(ENV_VAR, "portable")
    assert crypto_backend().name == "python:cryptography"  # the same one variable picks the AES
    assert crypto_backend() is crypto_backend("PORTABLE")  # made once, shared
    assert resolve_backend("PYTHON") in {"libcrypto", "portable"}
    with pytest.raises(ValueError, match="one of auto, c, python, libcrypto, portable"):
        resolve_backend("fortran")


def test_the_schemes_follow_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from proximity.schemes.gaen import derive_rpik

    used: list[str] = []
    reference_hkdf = REFERENCE.hkdf_sha256

    def counting(*args: Any) -> Any:
        used.append("portable")
        return reference_hkdf(*args)

    monkeypatch.setattr(REFERENCE, "hkdf_sha256", counting)
    monkeypatch.setenv(ENV_VAR, "portable")
    assert derive_rpik(bytes.fromhex(OFFICIAL["tek_hex"])).hex() == OFFICIAL["rpik_hex"]
    assert used == ["portable"]  # the single-key function ran the chosen backend's batch primitive


def test_asking_for_c_where_it_cannot_run_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "_checked", (None, "the C extension is not built (simulated)"))
    monkeypatch.setattr(switch, "_BACKENDS", {})
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_backend() in {"libcrypto", "portable"}  # automatic: falls back
    with pytest.raises(BackendUnavailableError, match="not built") as caught:
        resolve_backend("c")
    assert caught.value.backend == "c"
    with pytest.raises(BackendUnavailableError):
        match_gaen([], Observations.from_sightings("gaen", []), backend="c")


def _gaen_case() -> tuple[KeyBatch, Observations]:
    rng = np.random.default_rng(9)
    n, start = 300, 2_650_032
    keys = KeyBatch(
        rng.integers(0, 256, (n, 16), dtype=np.uint8),
        start - 144 * rng.integers(0, 3, n),
        rng.integers(1, 145, n),
        np.zeros(n, np.int32),
        np.ones(n, np.int32),
        np.full(n, NO_ONSET, np.int32),
    )
    rpis = rpis_of_keys(keys.key_data, keys.rolling_start, REFERENCE)
    picks = rng.integers(0, n, 400), rng.integers(0, 144, 400)
    ids = np.concatenate([rpis[picks], rng.integers(0, 256, (100, 16), dtype=np.uint8)])
    times = np.concatenate(
        [keys.rolling_start[picks[0]] * 600.0 + picks[1] * 600, np.full(100, start * 600.0)]
    )
    m = len(ids)
    obs = Observations(
        "gaen", ids, times, np.full(m, -60.0), np.zeros((m, 4), np.uint8), np.zeros(m, bool), np.arange(m)
    )
    return keys, obs


def _summary(matches: list[Any]) -> list[tuple[Any, list[int], bytes]]:
    return [(m.key, m.row_ids.tolist(), m.ids.tobytes()) for m in matches]


@needs_c
def test_whole_matchers_identical_on_both_backends() -> None:
    keys, obs = _gaen_case()
    c = match_gaen(keys, obs, workers=1, backend="c", chunk_size=64)
    python = match_gaen(keys, obs, workers=1, backend="portable", chunk_size=64)
    assert len(c) > 50 and _summary(c) == _summary(python)
    assert GaenMatcher.build(obs, backend="c").backend_in_use == "c"
    assert GaenMatcher.build(obs, backend="portable").backend_in_use == "python:cryptography"

    day = 1596844800
    records = [BluezoneBaseKey(bytes([i]) * 32, day).record(day, 3) for i in range(5)]
    daily = np.frombuffer(b"".join(r.daily_key for r in records), np.uint8).reshape(5, 32)
    ids = ids_of_records(daily, 288, 96, REFERENCE)[:, ::7].reshape(-1, 12)
    times = day + np.tile(np.arange(0, 288, 7) * 900.0, 5)
    m = len(ids)
    obs = Observations(
        "bluezone", ids, times, np.full(m, -60.0), np.zeros((m, 4), np.uint8), np.zeros(m, bool), np.arange(m)
    )
    c = match_bluezone(records, obs, workers=1, backend="c")
    assert len(c) == 5 and _summary(c) == _summary(
        match_bluezone(records, obs, workers=1, backend="portable")
    )

    published = [Dp3tDayKey(bytes([i]) * 32, day) for i in range(4)]
    seen = np.concatenate([ephids_of(daily[:1], REFERENCE)[0, :3], ephids_of(daily[1:2], REFERENCE)[0, 90:]])
    chained = ephids_of(np.frombuffer(published[2].on_day(day + 86400).key, np.uint8).reshape(1, 32))[0, :2]
    dp3t_ids = np.concatenate([seen, chained])
    days = np.array([day + 100.0] * 9 + [day + 86400 + 100.0] * 2)
    m = len(dp3t_ids)
    obs = Observations(
        "dp3t", dp3t_ids, days, np.full(m, -60.0), np.zeros((m, 4), np.uint8), np.zeros(m, bool), np.arange(m)
    )
    published = [
        Dp3tDayKey(bytes(daily[0]), day),
        Dp3tDayKey(bytes(daily[1]), day),
        published[2],
        published[3],
    ]
    c = match_dp3t(published, obs, workers=1, backend="c")
    assert sorted(len(found) for found in c) == [2, 3, 6]  # the third key found chained to the next day
    assert _summary(c) == _summary(match_dp3t(published, obs, workers=1, backend="portable"))


def test_the_reference_path_runs_when_the_extension_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    keys, obs = _gaen_case()
    expected = match_gaen(keys, obs, workers=1, backend="portable")
    monkeypatch.setattr(native, "_checked", (None, "simulated"))
    monkeypatch.setattr(switch, "_BACKENDS", {})
    monkeypatch.delenv(ENV_VAR, raising=False)
    matcher = GaenMatcher.build(obs)
    assert matcher.backend_in_use.startswith("python:")
    assert _summary(match_gaen(keys, matcher, workers=1)) == _summary(expected)


@needs_c
@pytest.mark.parametrize("threads", [2, 3, 7])
def test_batches_split_over_threads_give_the_same_bytes_in_the_same_order(threads: int) -> None:
    # Big enough that every primitive runs on several threads (chunks of 64 keys, 2,048 AES blocks, 4,096
    # probes; helpers from 4 chunks a thread), with hits in most chunks, so each chunk's finds must be
    # moved up behind the previous chunk's.
    rng = np.random.default_rng(threads)
    one, many = native.NativeBackend(threads=1), native.NativeBackend(threads=threads)
    keys = rng.integers(0, 256, (3000, 16), np.uint8)
    assert many.hkdf_sha256(keys, b"EN-RPIK", 16).tobytes() == one.hkdf_sha256(keys, b"EN-RPIK", 16).tobytes()
    assert many.hmac_sha256(keys, b"m").tobytes() == one.hmac_sha256(keys, b"m").tobytes()
    assert many.sha256(keys).tobytes() == one.sha256(keys).tobytes()
    seeds = rng.integers(0, 256, (2000, 32), np.uint8)
    assert many.sha256_chain(seeds, 3).tobytes() == one.sha256_chain(seeds, 3).tobytes()
    wide = rng.integers(0, 256, (600, 32), np.uint8)
    counters = rng.integers(0, 256, (600, 16), np.uint8)
    assert many.aes_ctr(wide, counters, 1536).tobytes() == one.aes_ctr(wide, counters, 1536).tobytes()
    blocks = rng.integers(0, 256, (3, 144, 16), np.uint8)
    rows = rng.integers(0, 3, 600)
    out = one.aes_ecb(keys[:600], blocks, rows)
    assert many.aes_ecb(keys[:600], blocks, rows).tobytes() == out.tobytes()
    flat = out.reshape(-1, 16)
    planted = flat[rng.choice(flat.shape[0], 400, replace=False)]
    index = ObservedIdIndex.build(np.concatenate([rng.integers(0, 256, (5000, 16), np.uint8), planted]))
    counts = rng.integers(0, 150, 600)
    expected = REFERENCE.aes_ecb_probe(keys[:600], blocks, rows, counts, index)
    assert expected[0].size > 100
    for backend in (one, many):
        got = backend.aes_ecb_probe(keys[:600], blocks, rows, counts, index)
        assert got[0].tolist() == expected[0].tolist() and got[1].tolist() == expected[1].tolist()
        found = backend.probe(index, flat)
        assert found[0].tolist() == REFERENCE.probe(index, flat)[0].tolist()


@needs_c
def test_the_thread_count_comes_from_the_setting_or_the_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native.THREADS_VAR, "3")
    assert native.crypto_threads() == 3 and native.NativeBackend().threads == 3
    monkeypatch.delenv(native.THREADS_VAR)
    assert native.crypto_threads() == len(os.sched_getaffinity(0))
    for bad in ("0", "-1", "two"):
        monkeypatch.setenv(native.THREADS_VAR, bad)
        with pytest.raises(ValueError, match=native.THREADS_VAR):
            native.crypto_threads()
    with pytest.raises(ValueError, match="threads"):
        native.NativeBackend(threads=0)
    assert C is not None
    with pytest.raises(ValueError, match="threads"):
        C.hkdf_sha256(bytes(16), 16, b"", 16, bytearray(16), 0)
    assert pickle.loads(pickle.dumps(native.NativeBackend(threads=2))).threads == 2
