"""Matching at scale (issue 3 targets), with the naive baselines measured in the same run.

Targets: GAEN end to end (N = 100,000 keys x M = 100,000 observed RPIs) >= 250,000 keys/s on one
core and >= 1.6x that with 2 workers; lookup <= 10 ns per candidate at M = 100,000; Bluezone >= 1,500
fourteen-day records/s at M = 100,000; 1,000,000 keys streamed from export files in <= 400 MB RSS.
Rates and ratios go into ``extra_info`` (see .benchmarks/report.json after `make bench`), with the
crypto backend that ran (``backend``: "c", or "python:<AES implementation>"; PROXIMITY_MATCH_BACKEND=python
forces the numpy reference backend). The ``*_python_*`` benchmarks measure the reference in the same run.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from proximity.crypto import resolve_backend
from proximity.keyfiles import export_pb2 as pb
from proximity.keyfiles.gaen_export import EXPORT_HEADER, generate_signing_key, signing_key_pem
from proximity.matching import (
    BluezoneMatcher,
    GaenMatcher,
    KeyBatch,
    PreparedKeys,
    match_bluezone,
    match_gaen,
)
from proximity.matching.bluezone import record_ids
from proximity.matching.gaen import DEFAULT_CHUNK
from proximity.schemes.bluezone import BluezoneBaseKey
from proximity.schemes.published import NO_ONSET
from proximity.sightings import Observations

N_KEYS = 100_000
M_OBSERVED = 100_000
START = 2_650_032
DAY = 1596844800
RATES: dict[str, float] = {}


def _keys(n: int, seed: int = 7) -> KeyBatch:
    rng = np.random.default_rng(seed)
    starts = START - 144 * rng.integers(0, 14, n)
    return KeyBatch(
        rng.integers(0, 256, (n, 16), dtype=np.uint8),
        starts.astype(np.int64),
        np.full(n, 144, np.int64),
        np.zeros(n, np.int32),
        np.ones(n, np.int32),
        np.full(n, NO_ONSET, np.int32),
        True,
    )


def _observations(
    scheme: str, m: int, length: int, first: float, last: float, planted: np.ndarray | None = None
) -> Observations:
    """Random IDs heard uniformly over [first, last): every key's window holds sightings, as in a
    14-day log, so skipping keys without any sighting in their window does not flatter the rate."""
    rng = np.random.default_rng(11)
    ids = rng.integers(0, 256, (m, length), dtype=np.uint8)
    if planted is not None:
        ids[: len(planted)] = planted
    return Observations(
        scheme,
        ids,
        rng.uniform(first, last, m),
        rng.uniform(-90, -40, m),
        np.zeros((m, 4), np.uint8),
        np.zeros(m, np.bool_),
        np.arange(m),
    )


@pytest.fixture(scope="module")
def gaen_setup() -> tuple[KeyBatch, GaenMatcher]:
    keys = _keys(N_KEYS)
    # plant real RPIs of 100 keys so the exact evaluation runs too
    planted = _planted_rpis(keys.select(np.arange(100)))
    obs = _observations("gaen", M_OBSERVED, 16, (START - 13 * 144) * 600.0, (START + 144) * 600.0, planted)
    obs.times[:100] = (keys.rolling_start[:100] * 600 + 60).astype(np.float64)
    return keys, GaenMatcher.build(obs)


def _planted_rpis(keys: KeyBatch) -> np.ndarray:
    from proximity.schemes.gaen import derive_rpik, rpis

    return np.stack([rpis(derive_rpik(k.key_data), k.tek.rolling_start_interval_number, 1)[0] for k in keys])


def test_gaen_end_to_end_one_core(benchmark: Any, gaen_setup: tuple[KeyBatch, GaenMatcher]) -> None:
    keys, matcher = gaen_setup
    found = benchmark.pedantic(
        match_gaen, args=([keys], matcher), kwargs={"workers": 1}, rounds=3, iterations=1
    )
    assert len(found) == 100
    RATES["gaen_1"] = N_KEYS / benchmark.stats.stats.min
    benchmark.extra_info.update(
        keys_per_s=round(RATES["gaen_1"]),
        target_keys_per_s=250_000,
        backend=matcher.backend_in_use,
    )


def test_gaen_prepared_keys_one_core(benchmark: Any, gaen_setup: tuple[KeyBatch, GaenMatcher]) -> None:
    """The same keys prepared once (RPIK/AEMK derived outside the timing), as for many logs."""
    keys, matcher = gaen_setup
    prepared = PreparedKeys.prepare(keys)
    found = benchmark.pedantic(
        match_gaen, args=(prepared, matcher), kwargs={"workers": 1}, rounds=3, iterations=1
    )
    assert len(found) == 100
    rate = N_KEYS / benchmark.stats.stats.min
    benchmark.extra_info.update(keys_per_s=round(rate), backend=matcher.backend_in_use)
    if "gaen_1" in RATES:
        benchmark.extra_info["prepared_vs_plain_ratio"] = round(rate / RATES["gaen_1"], 2)


def test_gaen_prepare_keys(benchmark: Any, gaen_setup: tuple[KeyBatch, GaenMatcher]) -> None:
    """What preparing costs, once per key set: two batch HKDF calls and the PaddedData blocks."""
    keys, matcher = gaen_setup
    prepared = benchmark.pedantic(PreparedKeys.prepare, args=(keys,), rounds=3, iterations=1)
    assert len(prepared) == N_KEYS
    benchmark.extra_info.update(
        keys_per_s=round(N_KEYS / benchmark.stats.stats.min), backend=matcher.backend_in_use
    )


@pytest.fixture(scope="module")
def city_chunk() -> tuple[KeyBatch, Observations]:
    """One simulator chunk of the city (issue 17): 30,000 app users' keys of the day, 400,000
    sightings in one minute, every one a real RPI of some key with its AEM: all of them match."""
    from proximity.crypto import crypto_backend
    from proximity.schemes.gaen import Metadata, aem_keystreams, derive_aemks, derive_rpiks, padded_blocks

    n, m = 30_000, 400_000
    rng = np.random.default_rng(17)
    keys = KeyBatch(
        rng.integers(0, 256, (n, 16), dtype=np.uint8),
        np.full(n, START, np.int64),
        np.full(n, 144, np.int64),
        np.zeros(n, np.int32),
        np.ones(n, np.int32),
        np.full(n, NO_ONSET, np.int32),
    )
    interval = START + 100
    crypto = crypto_backend()
    rpis = crypto.aes_ecb(
        derive_rpiks(keys.key_data), padded_blocks(np.array([interval], np.int64), 1), np.zeros(n, np.intp)
    )
    stream = aem_keystreams(derive_aemks(keys.key_data), rpis)[:, 0]
    rpis = rpis[:, 0]
    owner = rng.integers(0, n, m)
    metadata = np.frombuffer(Metadata(-20, 1).to_bytes(), np.uint8)
    obs = Observations(
        "gaen",
        rpis[owner],
        np.sort(rng.uniform(interval * 600.0, interval * 600.0 + 60, m)),
        rng.uniform(-90, -40, m).round(),
        stream[owner] ^ metadata,
        np.ones(m, np.bool_),
        np.arange(m),
    )
    return keys, obs


def _match_chunks(matcher: GaenMatcher, chunks: list[Any]) -> int:
    return sum(len(matcher.match_columns(chunk)) for chunk in chunks)


def test_city_chunk_index(benchmark: Any, city_chunk: tuple[KeyBatch, Observations]) -> None:
    """The observed-ID index of one city chunk (built every chunk)."""
    _, obs = city_chunk
    benchmark.pedantic(GaenMatcher.build, args=(obs,), rounds=5, iterations=1)
    benchmark.extra_info.update(ms_per_chunk=round(benchmark.stats.stats.min * 1e3, 1), rows=len(obs))


@pytest.mark.parametrize("prepared", [False, True], ids=["plain", "prepared"])
def test_city_chunk_match(benchmark: Any, city_chunk: tuple[KeyBatch, Observations], prepared: bool) -> None:
    """Every key against one city chunk in chunks of DEFAULT_CHUNK keys, as the simulator does:
    plain batches (RPIK/AEMK derived each time) or prepared once."""
    keys, obs = city_chunk
    matcher = GaenMatcher.build(obs)
    chunks: list[Any] = [keys.select(slice(i, i + DEFAULT_CHUNK)) for i in range(0, len(keys), DEFAULT_CHUNK)]
    if prepared:
        chunks = [PreparedKeys.prepare(chunk) for chunk in chunks]
    found = benchmark.pedantic(_match_chunks, args=(matcher, chunks), rounds=5, iterations=1)
    assert found == len(obs)
    ms = benchmark.stats.stats.min * 1e3
    RATES[f"city_{prepared}"] = ms
    benchmark.extra_info.update(ms_per_chunk=round(ms, 1), backend=matcher.backend_in_use)
    if prepared and "city_False" in RATES:
        benchmark.extra_info["plain_vs_prepared_ratio"] = round(RATES["city_False"] / ms, 2)


def test_gaen_end_to_end_two_workers(benchmark: Any, gaen_setup: tuple[KeyBatch, GaenMatcher]) -> None:
    keys, matcher = gaen_setup
    found = benchmark.pedantic(
        match_gaen, args=([keys], matcher), kwargs={"workers": 2}, rounds=3, iterations=1
    )
    assert len(found) == 100
    RATES["gaen_2"] = N_KEYS / benchmark.stats.stats.min
    benchmark.extra_info.update(
        keys_per_s=round(RATES["gaen_2"]), target_speedup=1.6, backend=matcher.backend_in_use
    )
    if "gaen_1" in RATES:
        benchmark.extra_info["speedup_vs_one_core"] = round(RATES["gaen_2"] / RATES["gaen_1"], 2)


def test_gaen_portable_aes_one_core(benchmark: Any, gaen_setup: tuple[KeyBatch, GaenMatcher]) -> None:
    keys, matcher = gaen_setup
    subset = keys.select(np.arange(20_000))
    portable = matcher.with_backend("portable")
    benchmark.pedantic(match_gaen, args=([subset], portable), kwargs={"workers": 1}, rounds=1, iterations=1)
    benchmark.extra_info.update(
        keys_per_s=round(len(subset) / benchmark.stats.stats.min), backend=portable.backend_in_use
    )


def test_gaen_python_backend_one_core(benchmark: Any, gaen_setup: tuple[KeyBatch, GaenMatcher]) -> None:
    """The pure Python path with the fastest AES backend: the fallback where the C extension is absent."""
    keys, matcher = gaen_setup
    subset = keys.select(np.arange(20_000))
    python = matcher.with_backend("python")
    benchmark.pedantic(match_gaen, args=([subset], python), kwargs={"workers": 1}, rounds=2, iterations=1)
    rate = len(subset) / benchmark.stats.stats.min
    benchmark.extra_info.update(keys_per_s=round(rate), backend=python.backend_in_use)
    if "gaen_1" in RATES:
        benchmark.extra_info["default_vs_python_ratio"] = round(RATES["gaen_1"] / rate, 2)


def test_lookup_per_candidate(benchmark: Any, gaen_setup: tuple[KeyBatch, GaenMatcher]) -> None:
    _, matcher = gaen_setup
    candidates = np.random.default_rng(3).integers(0, 256, (144 * DEFAULT_CHUNK, 16), dtype=np.uint8)
    benchmark.pedantic(matcher.index.find, args=(candidates,), rounds=5, iterations=1)
    ns = benchmark.stats.stats.min / len(candidates) * 1e9
    benchmark.extra_info.update(
        ns_per_candidate=round(ns, 2),
        target_ns=10,
        observed_unique=len(matcher.index),
        backend=resolve_backend(),
    )


def test_lookup_per_candidate_python(benchmark: Any, gaen_setup: tuple[KeyBatch, GaenMatcher]) -> None:
    _, matcher = gaen_setup
    candidates = np.random.default_rng(3).integers(0, 256, (144 * DEFAULT_CHUNK, 16), dtype=np.uint8)
    benchmark.pedantic(
        matcher.index.find, args=(candidates,), kwargs={"backend": "python"}, rounds=5, iterations=1
    )
    ns = benchmark.stats.stats.min / len(candidates) * 1e9
    benchmark.extra_info.update(ns_per_candidate=round(ns, 2), backend="python")


def _naive_gaen(keys: KeyBatch, observed: set[bytes]) -> int:
    """What typical open Python tools do: HKDF object per key, a cipher per RPI, a Python set."""
    hits = 0
    for i in range(len(keys)):
        rpik = HKDF(hashes.SHA256(), 16, None, b"EN-RPIK").derive(keys.key_data[i].tobytes())
        start = int(keys.rolling_start[i])
        for j in range(144):
            block = b"EN-RPI" + bytes(6) + (start + j).to_bytes(4, "little")
            rpi = Cipher(algorithms.AES(rpik), modes.ECB()).encryptor().update(block)
            hits += rpi in observed
    return hits


def test_naive_gaen_baseline(benchmark: Any, gaen_setup: tuple[KeyBatch, GaenMatcher]) -> None:
    keys, matcher = gaen_setup
    subset = keys.select(np.arange(500))
    observed = {row.tobytes() for row in matcher.observations.ids}
    hits = benchmark.pedantic(_naive_gaen, args=(subset, observed), rounds=1, iterations=1)
    assert hits == 100  # one planted RPI for each of the first 100 keys
    naive_rate = len(subset) / benchmark.stats.stats.min
    benchmark.extra_info["keys_per_s"] = round(naive_rate)
    if "gaen_1" in RATES:
        benchmark.extra_info["ours_vs_naive_ratio"] = round(RATES["gaen_1"] / naive_rate, 1)


@pytest.fixture(scope="module")
def bluezone_setup() -> tuple[list[Any], BluezoneMatcher]:
    records = [
        BluezoneBaseKey(hashlib.sha256(bytes([i % 256, i // 256])).digest(), DAY).record(DAY, 14)
        for i in range(300)
    ]
    planted = np.concatenate([record_ids(r)[0][[5]] for r in records[:20]])
    obs = _observations("bluezone", M_OBSERVED, 12, DAY, DAY + 14 * 86400.0, planted)
    obs.times[:20] = DAY + 5 * 900 + 1
    return records, BluezoneMatcher.build(obs)


def test_bluezone_records_one_core(benchmark: Any, bluezone_setup: tuple[list[Any], BluezoneMatcher]) -> None:
    records, matcher = bluezone_setup
    found = benchmark.pedantic(
        match_bluezone, args=(records, matcher), kwargs={"workers": 1}, rounds=3, iterations=1
    )
    assert len(found) == 20
    RATES["bluezone"] = len(records) / benchmark.stats.stats.min
    benchmark.extra_info.update(
        records_per_s=round(RATES["bluezone"]), target_records_per_s=1500, backend=matcher.backend_in_use
    )


def test_bluezone_python_backend_one_core(
    benchmark: Any, bluezone_setup: tuple[list[Any], BluezoneMatcher]
) -> None:
    records, matcher = bluezone_setup
    python = matcher.with_backend("python")
    found = benchmark.pedantic(
        match_bluezone, args=(records, python), kwargs={"workers": 1}, rounds=1, iterations=1
    )
    assert len(found) == 20
    rate = len(records) / benchmark.stats.stats.min
    benchmark.extra_info.update(records_per_s=round(rate), backend="python")


def test_bluezone_app_baseline(benchmark: Any, bluezone_setup: tuple[list[Any], BluezoneMatcher]) -> None:
    """The app's approach: one SQL query per slot per key on an unindexed column (one day of one key)."""
    records, matcher = bluezone_setup
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE trace_info (contact_id BLOB, rssi INTEGER, timestamp INTEGER)")
    obs = matcher.observations
    db.executemany(
        "INSERT INTO trace_info VALUES (?, ?, ?)",
        [(obs.ids[i].tobytes(), -60, int(obs.times[i])) for i in range(len(obs))],
    )
    ids, starts = record_ids(records[100])

    def one_day() -> int:
        hits = 0
        for slot in range(96):
            row = db.execute(
                "SELECT 1 FROM trace_info WHERE contact_id = ? AND timestamp BETWEEN ? AND ? LIMIT 1",
                (ids[slot].tobytes(), int(starts[slot]), int(starts[slot]) + 900),
            ).fetchone()
            hits += row is not None
        return hits

    benchmark.pedantic(one_day, rounds=1, iterations=1)
    app_rate = 1 / (benchmark.stats.stats.min * 14)  # a 14-day record is 14 such days
    benchmark.extra_info["records_per_s"] = round(app_rate, 3)
    if "bluezone" in RATES:
        benchmark.extra_info["ours_vs_app_ratio"] = round(RATES["bluezone"] / app_rate)


_STREAM_SCRIPT = """
import resource, sys
from proximity.keyfiles import TrustedKey, stream_exports
from proximity.matching import match_gaen
from proximity.sightings import Observations
import numpy as np
paths = sys.argv[2:]
trusted = [TrustedKey.from_pem(open(sys.argv[1], "rb").read())]
rng = np.random.default_rng(1)
m = 100_000
times = rng.uniform((2650032 - 13 * 144) * 600.0, (2650032 + 144) * 600.0, m)
obs = Observations("gaen", rng.integers(0, 256, (m, 16), dtype=np.uint8), times,
                   np.full(m, np.nan), np.zeros((m, 4), np.uint8), np.zeros(m, np.bool_), np.arange(m))
stream = stream_exports(paths, trusted)
match_gaen(stream.keys(), obs, workers=1)
# VmHWM is this process's own peak; ru_maxrss also counts what the forking parent (pytest) held
try:
    peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(stream.total_keys, peak)
"""


def _write_files(folder: Path, files: int, per_file: int) -> tuple[Path, list[Path]]:
    signer = generate_signing_key()
    _, public = signing_key_pem(signer)
    pem = folder / "public.pem"
    pem.write_bytes(public)
    rng = np.random.default_rng(2)
    info = pb.SignatureInfo(
        verification_key_id="bench", verification_key_version="v1", signature_algorithm="1.2.840.10045.4.3.2"
    )
    paths = []
    from cryptography.hazmat.primitives.asymmetric import ec

    for f in range(files):
        data = rng.integers(0, 256, (per_file, 16), dtype=np.uint8).tobytes()
        message = pb.TemporaryExposureKeyExport(
            batch_num=1,
            batch_size=1,
            signature_infos=[info],
            keys=[
                pb.TemporaryExposureKey(
                    key_data=data[16 * i : 16 * i + 16],
                    rolling_start_interval_number=START - 144 * (i % 14),
                    transmission_risk_level=1,
                )
                for i in range(per_file)
            ],
        )
        body = EXPORT_HEADER + message.SerializeToString()
        sig = pb.TEKSignatureList(
            signatures=[
                pb.TEKSignature(signature_info=info, signature=signer.sign(body, ec.ECDSA(hashes.SHA256())))
            ]
        )
        import zipfile

        path = folder / f"export-{f}.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("export.bin", body)
            archive.writestr("export.sig", sig.SerializeToString())
        paths.append(path)
    return pem, paths


def test_one_million_keys_streamed_from_files_peak_rss(benchmark: Any, tmp_path: Path) -> None:
    pem, paths = _write_files(tmp_path, 100, 10_000)

    def run() -> tuple[int, int]:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", _STREAM_SCRIPT, str(pem), *map(str, paths)],
            capture_output=True,
            text=True,
            check=True,
        )
        total, rss_kb = map(int, result.stdout.split())
        benchmark.extra_info["seconds"] = round(time.perf_counter() - started, 1)
        return total, rss_kb

    total, rss_kb = benchmark.pedantic(run, rounds=1, iterations=1)
    assert total == 1_000_000
    benchmark.extra_info.update(peak_rss_mb=round(rss_kb / 1024), target_mb=400, keys=total)


@pytest.fixture(scope="module")
def dp3t_setup() -> tuple[list[Any], Any, int]:
    """20,000 published DP-3T keys whose days are spread over 14 days, each chained forward to the last
    observed day; 100,000 observed EphIDs over those 14 days, 20 of them a planted key's."""
    from proximity.matching.dp3t import Dp3tMatcher
    from proximity.schemes.dp3t import Dp3tDayKey, ephids_of

    rng = np.random.default_rng(5)
    keys = [Dp3tDayKey(rng.bytes(32), DAY + 86400 * int(day)) for day in rng.integers(0, 14, 20_000).tolist()]
    planted = Dp3tDayKey(keys[0].key, DAY)
    keys[0] = planted
    third_day = planted.on_day(DAY + 3 * 86400)
    planted_ids = ephids_of(np.frombuffer(third_day.key, np.uint8).reshape(1, 32))[0][:20]
    obs = _observations("dp3t", M_OBSERVED, 16, DAY, DAY + 14 * 86400.0, planted_ids)
    obs.times[:20] = DAY + 3 * 86400 + 100 + np.arange(20)
    matcher = Dp3tMatcher.build(obs)
    day_keys = len(matcher._day_keys(keys)[0])
    return keys, matcher, day_keys


def test_dp3t_day_keys_one_core(benchmark: Any, dp3t_setup: tuple[list[Any], Any, int]) -> None:
    from proximity.matching.dp3t import match_dp3t

    keys, matcher, day_keys = dp3t_setup
    found = benchmark.pedantic(
        match_dp3t, args=(keys, matcher), kwargs={"workers": 1}, rounds=3, iterations=1
    )
    assert len(found) == 1 and len(found[0]) == 20  # the planted key, with its 20 sightings on day 3
    rate = day_keys / benchmark.stats.stats.min
    benchmark.extra_info.update(
        day_keys_per_s=round(rate),
        published_keys_per_s=round(len(keys) / benchmark.stats.stats.min),
        day_keys=day_keys,
        observed=M_OBSERVED,
        backend=matcher.backend_in_use,
    )
    RATES["dp3t_1"] = rate


def test_dp3t_python_backend_one_core(benchmark: Any, dp3t_setup: tuple[list[Any], Any, int]) -> None:
    """The numpy reference backend on the same job: what runs where the C extension is absent."""
    from proximity.matching.dp3t import match_dp3t

    keys, matcher, day_keys = dp3t_setup
    python = matcher.with_backend("python")
    found = benchmark.pedantic(match_dp3t, args=(keys, python), kwargs={"workers": 1}, rounds=2, iterations=1)
    assert len(found) == 1 and len(found[0]) == 20
    rate = day_keys / benchmark.stats.stats.min
    benchmark.extra_info.update(day_keys_per_s=round(rate), backend=python.backend_in_use)
    if "dp3t_1" in RATES:
        benchmark.extra_info["default_vs_python_ratio"] = round(RATES["dp3t_1"] / rate, 2)
