"""The C matching backend against the official vectors and against the Python path; and its selection."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import load_vectors
from proximity.errors import BackendUnavailableError
from proximity.matching import GaenMatcher, KeyBatch, ObservedIdIndex, match_bluezone, match_gaen, native
from proximity.matching import aes as aes_module
from proximity.matching.aes import PortableEcb
from proximity.matching.bluezone import _python_chains
from proximity.matching.gaen import _padded_blocks, derive_keys
from proximity.schemes.bluezone import SALT, BluezoneBaseKey
from proximity.schemes.published import NO_ONSET
from proximity.sightings import Observations

OFFICIAL: dict[str, Any] = load_vectors("gaen-test-vectors.json")["sets"][0]
C = native.native_module()
needs_c = pytest.mark.skipif(
    C is None, reason=f"C matching backend unavailable: {native.unavailable_reason()}"
)
SHA_IMPLS = ["portable", "shani"] if C is not None and C.features()["shani"] else ["portable"]
AES_IMPLS = ["aesni", "vaes"] if C is not None and C.features()["vaes"] else ["aesni"]


@pytest.fixture(params=SHA_IMPLS)
def sha_impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test with each SHA-256 compression the CPU supports, restoring the chosen one after."""
    assert C is not None
    previous = C.set_sha256(request.param)
    yield str(request.param)
    C.set_sha256(previous)


@pytest.fixture(params=AES_IMPLS)
def aes_impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test with each AES-NI implementation the CPU supports, restoring the chosen one after."""
    assert C is not None
    previous = C.set_aes(request.param)
    yield str(request.param)
    C.set_aes(previous)


def _python_rpis(key_data: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return PortableEcb().encrypt_rows(derive_keys(key_data, b"EN-RPIK"), _padded_blocks(starts))


@needs_c
def test_official_vector_rpik_aemk_and_all_144_rpis(sha_impl: str, aes_impl: str) -> None:
    tek = np.frombuffer(bytes.fromhex(OFFICIAL["tek_hex"]), np.uint8).reshape(1, 16)
    assert native.hkdf16(tek, b"EN-RPIK").tobytes().hex() == OFFICIAL["rpik_hex"]
    assert native.hkdf16(tek, b"EN-AEMK").tobytes().hex() == OFFICIAL["aemk_hex"]
    rpis = native.gaen_rpis(tek, np.array([OFFICIAL["en_interval_number_of_key"]]))
    assert [row.tobytes().hex() for row in rpis[0]] == [p["rpi_hex"] for p in OFFICIAL["advertised_data"]]


@needs_c
@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_sha256_compressions_equal_hashlib(data: bytes) -> None:
    assert C is not None
    previous = C.set_sha256("portable")
    try:
        for impl in SHA_IMPLS:
            C.set_sha256(impl)
            assert C.sha256(data) == hashlib.sha256(data).digest(), impl
    finally:
        C.set_sha256(previous)


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


key_batches = st.integers(1, 6).flatmap(
    lambda n: st.tuples(
        st.binary(min_size=16 * n, max_size=16 * n),
        # unaligned starts, and starts whose 144th interval wraps past uint32 (as numpy's astype does)
        st.lists(
            st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32 - 144, 2**32 - 1)), min_size=n, max_size=n
        ),
        st.lists(st.integers(1, 144), min_size=n, max_size=n),
    )
)


@needs_c
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key_batches)
def test_rpis_equal_the_python_path(batch: tuple[bytes, list[int], list[int]]) -> None:
    data, starts, _ = batch
    keys = np.frombuffer(data, np.uint8).reshape(-1, 16)
    start_array = np.array(starts, np.int64)
    expected = _python_rpis(keys, start_array)
    assert C is not None
    previous = C.set_aes(AES_IMPLS[0])
    try:
        for impl in AES_IMPLS:
            C.set_aes(impl)
            assert np.array_equal(native.gaen_rpis(keys, start_array), expected), impl
    finally:
        C.set_aes(previous)
    for info in (b"EN-AEMK", b"", b"x" * 54):
        assert np.array_equal(native.hkdf16(keys, info), derive_keys(keys, info))


@needs_c
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key_batches, st.lists(st.tuples(st.integers(0, 5), st.integers(0, 143)), max_size=20), st.integers())
def test_fused_derive_and_probe_equals_the_python_path(
    batch: tuple[bytes, list[int], list[int]], plants: list[tuple[int, int]], seed: int
) -> None:
    data, starts, periods = batch
    keys = np.frombuffer(data, np.uint8).reshape(-1, 16)
    start_array, period_array = np.array(starts, np.int64), np.array(periods, np.int64)
    rpis = _python_rpis(keys, start_array).reshape(-1, 16)
    rng = np.random.default_rng(seed % 2**32)
    observed = [rng.integers(0, 256, (50, 16), dtype=np.uint8)]
    observed += [rpis[(k % len(keys)) * 144 + j][None] for k, j in plants]  # some beyond the period
    index = ObservedIdIndex.build(np.concatenate(observed))
    positions, unique = index.find(rpis, backend="python")
    exists = positions % 144 < period_array[positions // 144]
    got = native.gaen_probe(index, keys, start_array, period_array)
    assert got[0].tolist() == positions[exists].tolist()
    assert got[1].tolist() == unique[exists].tolist()


@needs_c
@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([12, 16]),
    st.lists(st.binary(min_size=16, max_size=16), max_size=60),
    st.lists(st.binary(min_size=16, max_size=16), max_size=30),
    st.integers(0, 255),
)
def test_probe_equals_the_python_find(
    length: int, observed: list[bytes], others: list[bytes], b: int
) -> None:
    # shared first 8 bytes make prefix buckets and exact-compare collisions common
    observed = [(bytes([b]) * 8 + o[8:] if i % 3 == 0 else o)[:length] for i, o in enumerate(observed)]
    probes = observed + [o[:length] for o in others] + [bytes([b]) * length]
    index = ObservedIdIndex.build(np.frombuffer(b"".join(observed), np.uint8).reshape(-1, length))
    candidates = np.frombuffer(b"".join(probes), np.uint8).reshape(-1, length)
    python = index.find(candidates, backend="python")
    c = index.find(candidates, backend="c")
    assert c[0].tolist() == python[0].tolist() and c[1].tolist() == python[1].tolist()


@needs_c
@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=4),
    st.integers(0, 300),
    st.integers(1, 100),
)
def test_bluezone_chains_equal_the_python_path(keys: list[bytes], count: int, ids_per_day: int) -> None:
    assert np.array_equal(
        native.bluezone_ids(keys, count, ids_per_day, SALT), _python_chains(keys, count, ids_per_day)
    )


@needs_c
def test_bluezone_chains_with_the_portable_sha(sha_impl: str) -> None:
    keys = [bytes([i]) * 32 for i in range(3)]
    assert np.array_equal(native.bluezone_ids(keys, 200, 96, SALT), _python_chains(keys, 200, 96))


@needs_c
def test_aes_rows_equal_the_portable_backend() -> None:
    assert C is not None
    key = np.arange(16, dtype=np.uint8)
    out = bytearray(16)
    C.aes128_ecb(key, bytes.fromhex("00112233445566778899aabbccddeeff"), out)
    assert out.hex() == "69c4e0d86a7b0430d8cdb78070b4c55a"  # FIPS-197 appendix C.1
    rng = np.random.default_rng(4)
    keys, blocks = rng.integers(0, 256, (7, 16), np.uint8), rng.integers(0, 256, (7, 5, 16), np.uint8)
    got = np.empty_like(blocks)
    C.aes128_ecb(keys, blocks, got)
    assert np.array_equal(got, PortableEcb().encrypt_rows(keys, blocks))


@needs_c
def test_buffers_of_the_wrong_size_are_refused() -> None:
    assert C is not None
    with pytest.raises(ValueError, match="16"):
        C.hkdf16(bytes(15), b"EN-RPIK", bytearray(15))
    with pytest.raises(ValueError, match="144"):
        C.gaen_rpis(bytes(16), np.zeros(1, np.uint32), bytearray(16))
    with pytest.raises(ValueError, match="12"):
        C.bluezone_ids(bytes(32), 32, SALT, 2, 96, bytearray(12))
    with pytest.raises(TypeError):
        C.hkdf16(bytes(16), b"EN-RPIK", b"read-only output!")


# --- selection -----------------------------------------------------------------------------------


def test_env_var_and_argument_choose_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native.ENV_VAR, "python")
    assert native.resolve_backend() == "python"
    monkeypatch.setenv(native.ENV_VAR, "auto")
    assert native.resolve_backend() == ("c" if C is not None else "python")
    monkeypatch.setenv(native.ENV_VAR, "portable")
    assert native.resolve_backend() == "python"  # forcing the portable AES forces the Python path
    monkeypatch.setattr(aes_module, "_DEFAULT", None)
    assert aes_module.default_backend().name == "cryptography"  # the same one variable picks the AES
    monkeypatch.setattr(aes_module, "_DEFAULT", None)
    assert native.resolve_backend("PYTHON") == "python"
    with pytest.raises(ValueError, match="one of c, python, libcrypto, portable, auto"):
        native.resolve_backend("fortran")


def test_asking_for_c_where_it_cannot_run_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "_checked", (None, "the C extension is not built (simulated)"))
    monkeypatch.delenv(native.ENV_VAR, raising=False)
    assert native.resolve_backend() == "python"  # automatic: falls back
    with pytest.raises(BackendUnavailableError, match="not built") as caught:
        native.resolve_backend("c")
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
    rpis = _python_rpis(keys.key_data, keys.rolling_start)
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


def _summary(matches: list[Any]) -> list[tuple[bytes, list[int], bytes]]:
    return [(m.key_data, m.row_ids.tolist(), m.ids.tobytes()) for m in matches]


@needs_c
def test_whole_gaen_matcher_identical_with_both_backends() -> None:
    keys, obs = _gaen_case()
    c = match_gaen(keys, obs, workers=1, backend="c", chunk_size=64)
    python = match_gaen(keys, obs, workers=1, backend="python", chunk_size=64)
    assert len(c) > 50 and _summary(c) == _summary(python)
    assert GaenMatcher.build(obs, backend="c").backend_in_use == "c"
    assert GaenMatcher.build(obs, backend="python").backend_in_use.startswith("python:")


def test_the_python_path_runs_when_the_extension_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    keys, obs = _gaen_case()
    expected = match_gaen(keys, obs, workers=1, backend="python")
    monkeypatch.setattr(native, "_checked", (None, "simulated"))
    monkeypatch.delenv(native.ENV_VAR, raising=False)
    matcher = GaenMatcher.build(obs)
    assert matcher.backend_in_use.startswith("python:")
    assert _summary(match_gaen(keys, matcher, workers=1)) == _summary(expected)


@needs_c
def test_whole_bluezone_matcher_identical_with_both_backends() -> None:
    records = [BluezoneBaseKey(bytes([i]) * 32, 1596844800).record(1596844800, 3) for i in range(5)]
    chains = _python_chains([r.daily_key for r in records], 288, 96)
    ids = chains[:, ::7].reshape(-1, 12)
    times = 1596844800.0 + np.tile(np.arange(0, 288, 7) * 900.0, 5)
    m = len(ids)
    obs = Observations(
        "bluezone", ids, times, np.full(m, -60.0), np.zeros((m, 4), np.uint8), np.zeros(m, bool), np.arange(m)
    )
    c = match_bluezone(records, obs, workers=1, backend="c")
    python = match_bluezone(records, obs, workers=1, backend="python")
    assert len(c) == 5 and _summary(c) == _summary(python)


@needs_c
@pytest.mark.parametrize(("records", "count"), [(1, 2**62 + 1), (2, 2**61 + 1), (4, 2**60 + 1)])
def test_bluezone_ids_refuses_sizes_that_overflow(records: int, count: int) -> None:
    # Regression: n*count*12 wrapped around, so a tiny output buffer passed the size check and the
    # chains wrote far past it. Run in a child: the unfixed code crashes the interpreter.
    import subprocess
    import sys

    code = (
        "from proximity.matching import _native\n"
        f"try:\n    _native.bluezone_ids(bytes(32 * {records}), 32, b'salt', {count}, 96, "
        f"bytearray(({records} * {count} * 12) % 2**64))\n"
        "except (OverflowError, ValueError) as e:\n    print(type(e).__name__, e)\n"
        "else:\n    print('accepted')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.startswith("OverflowError"), done.stdout
