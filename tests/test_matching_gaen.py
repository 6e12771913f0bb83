"""GAEN matching rules, each on its own; and the matcher against an independent naive one."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import load_vectors
from proximity.crypto import crypto_backend, native
from proximity.matching import DiagnosisKey, GaenMatcher, KeyBatch, ReportType, match_gaen
from proximity.matching.results import KeyMatch, group_by_day
from proximity.schemes.gaen import (
    Metadata,
    TemporaryExposureKey,
    decrypt_aem,
    derive_aemk,
    derive_rpik,
    encrypt_aem,
    rpis,
)
from proximity.sightings import Observations, Sighting

# The naive-matcher property runs the matcher with the C backend (where it is built) and the Python one.
MATCH_BACKENDS = [
    "python",
    pytest.param(
        "c",
        marks=pytest.mark.skipif(
            native.native_module() is None, reason=f"C backend unavailable: {native.unavailable_reason()}"
        ),
    ),
]
START = 2_650_032  # a UTC-midnight interval (144 * 18403)
T0 = START * 600


def _key(seed: int, start: int = START, period: int = 144, **kw: Any) -> DiagnosisKey:
    return DiagnosisKey(TemporaryExposureKey(bytes([seed]) * 16, start, period), **kw)


def _rpi(key: DiagnosisKey, j: int) -> bytes:
    return bytes(rpis(derive_rpik(key.key_data), key.tek.rolling_start_interval_number + j, 1)[0])


def _seen(key: DiagnosisKey, j: int, at: float, tx: int | None = None, rssi: int | None = -60) -> Sighting:
    rpi = _rpi(key, j)
    aem = None if tx is None else encrypt_aem(derive_aemk(key.key_data), rpi, Metadata(tx, 2).to_bytes())
    return Sighting("gaen", rpi, at, rssi, aem)


def _match(keys: Sequence[DiagnosisKey | KeyBatch], sightings: list[Sighting], **kw: Any) -> list[KeyMatch]:
    return match_gaen(keys, Observations.from_sightings("gaen", sightings), workers=1, **kw)


def test_the_internals_round_trip_rpi_is_found() -> None:
    s2 = load_vectors("gaen-test-vectors.json")["sets"][2]
    key = DiagnosisKey(TemporaryExposureKey(bytes.fromhex(s2["tek_hex"]), 2646801, 89), 2)
    rpi = bytes.fromhex(s2["derived_here_not_official"]["rpi_at_2646801_hex"])
    [found] = _match([key], [Sighting("gaen", rpi, 2646801 * 600 + 5)])
    assert found.key == key and found.ids[0].tobytes() == rpi


@pytest.mark.parametrize(
    ("offset", "counts"),
    [
        (-7200, True),  # exactly 2 h before the key's start
        (-7201, False),
        (144 * 600 + 7199, True),  # just inside 2 h after its end (end exclusive)
        (144 * 600 + 7200, False),
    ],
)
def test_validity_window_widened_by_two_hours(offset: int, counts: bool) -> None:
    key = _key(1)
    assert bool(_match([key], [_seen(key, 0, T0 + offset)])) is counts


def test_only_the_first_rolling_period_rpis_exist() -> None:
    key = _key(2, period=10)
    assert _match([key], [_seen(key, 9, T0 + 9 * 600)])
    assert not _match([key], [_seen(key, 10, T0 + 10 * 600)])


def test_replay_guard_drops_sightings_after_twenty_minutes() -> None:
    key = _key(3)
    sightings = [_seen(key, 5, T0 + 3000 + dt) for dt in (0, 600, 1200, 1201, 5000)]
    [found] = _match([key], sightings)
    assert found.times.tolist() == [T0 + 3000, T0 + 3600, T0 + 4200]
    assert found.row_ids.tolist() == [0, 1, 2]


def test_replay_guard_starts_at_the_first_in_window_sighting() -> None:
    key = _key(4)
    early = _seen(key, 0, T0 - 8000)  # outside the window: not a "first sighting"
    [found] = _match([key], [early, _seen(key, 0, T0 + 100), _seen(key, 0, T0 + 1000)])
    assert found.row_ids.tolist() == [1, 2]


@pytest.mark.parametrize(("tx", "counts"), [(-51, False), (-50, True), (8, True), (20, True), (21, False)])
def test_tx_power_outside_range_rejects(tx: int, counts: bool) -> None:
    key = _key(5)
    found = _match([key], [_seen(key, 1, T0 + 700, tx=tx)])
    assert bool(found) is counts
    if counts:
        assert found[0].tx_power.tolist() == [tx]
        assert found[0].calibration_confidence.tolist() == [2]


def test_a_sighting_without_metadata_counts_with_unknown_tx_power() -> None:
    key = _key(6)
    [found] = _match([key], [_seen(key, 1, T0 + 700, tx=None, rssi=None), _seen(key, 2, T0 + 1300, tx=-10)])
    assert math.isnan(found.tx_power[0]) and found.tx_power[1] == -10
    assert math.isnan(found.rssi[0]) and found.rssi[1] == -60
    assert found.calibration_confidence.tolist() == [-1, 2]


def test_revoked_key_is_removed_and_revisions_replace_metadata() -> None:
    kept, revoked = _key(7, report_type=ReportType.SELF_REPORT), _key(8)
    sightings = [_seen(kept, 0, T0 + 10), _seen(revoked, 0, T0 + 20)]
    assert len(_match([kept, revoked], sightings)) == 2
    revision = [
        DiagnosisKey(revoked.tek, report_type=ReportType.REVOKED),
        DiagnosisKey(kept.tek, 5, ReportType.CONFIRMED_TEST, 3),
    ]
    [found] = _match([kept, revoked], sightings, revised_keys=revision)
    assert found.key_data == kept.key_data
    assert found.report_type is ReportType.CONFIRMED_TEST
    assert found.transmission_risk_level == 5 and found.days_since_onset_of_symptoms == 3


def test_a_revised_key_alone_is_matched() -> None:
    key = _key(9)
    [found] = _match([], [_seen(key, 0, T0)], revised_keys=[DiagnosisKey(key.tek, 1, ReportType.RECURSIVE)])
    assert found.report_type is ReportType.RECURSIVE


def test_duplicate_keys_give_one_match() -> None:
    key = _key(10)
    assert len(_match([key, key], [_seen(key, 3, T0 + 1900)])) == 1


def test_old_data_matches_whatever_the_clock_says() -> None:
    # 2020 keys against 2020 observations: nothing compares with "now".
    key = DiagnosisKey(TemporaryExposureKey(os.urandom(16), 2642976))
    assert _match([key], [_seen(key, 0, 2642976 * 600)])


def test_verified_flag_follows_the_caller_or_the_batch() -> None:
    key = _key(11)
    sighting = [_seen(key, 0, T0)]
    assert not _match([key], sighting)[0].verified
    assert _match([key], sighting, verified=True)[0].verified
    batch = KeyBatch.from_keys([key], verified=True)
    assert _match([batch], sighting)[0].verified
    obs = Observations.from_sightings("gaen", sighting)
    assert match_gaen(batch, obs, workers=1)[0].verified  # a bare batch is not iterated key by key


def test_group_by_day_splits_at_utc_midnight() -> None:
    key = _key(12, start=START + 100)
    [found] = _match([key], [_seen(key, 40, T0 + 140 * 600), _seen(key, 44, T0 + 144 * 600 + 30)])
    days = group_by_day([found])
    assert [(d.day, d.sightings) for d in days] == [(T0, 1), (T0 + 86400, 1)]


def test_no_observations_and_no_keys() -> None:
    assert _match([_key(13)], []) == []
    assert _match([], [Sighting("gaen", bytes(16), T0)]) == []


def test_bad_arguments() -> None:
    obs = Observations.from_sightings("gaen", [])
    with pytest.raises(ValueError, match="workers"):
        match_gaen([], obs, workers=0)
    with pytest.raises(TypeError):
        match_gaen([b"not a key"], obs, workers=1)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="GAEN"):
        match_gaen([], Observations.from_sightings("bluezone", []))


# --- an independent naive matcher, straight from the spec, with the reference crypto ---------------


def naive(keys: list[DiagnosisKey], sightings: list[Sighting]) -> dict[bytes, list[tuple[int, float | None]]]:
    out: dict[bytes, list[tuple[int, float | None]]] = {}
    for key in keys:
        tek = key.tek
        all_rpis = rpis(derive_rpik(key.key_data), tek.rolling_start_interval_number, tek.rolling_period)
        aemk = derive_aemk(key.key_data)
        kept: list[tuple[int, float | None]] = []
        for rpi in (row.tobytes() for row in all_rpis):
            seen = [
                (i, s)
                for i, s in enumerate(sightings)
                if s.id == rpi and tek.start - 7200 <= s.time < tek.end + 7200
            ]
            if not seen:
                continue
            first = min(s.time for _, s in seen)
            for i, s in seen:
                if s.time > first + 1200:
                    continue
                tx = None
                if s.metadata is not None:
                    tx = Metadata.from_bytes(decrypt_aem(aemk, rpi, s.metadata)).tx_power
                    if not -50 <= tx <= 20:
                        continue
                kept.append((i, None if tx is None else float(tx)))
        if kept:
            out[key.key_data] = sorted(kept)
    return out


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[DiagnosisKey], list[Sighting]]:
    count = draw(st.integers(1, 4))
    keys = [
        DiagnosisKey(
            TemporaryExposureKey(
                draw(st.binary(min_size=16, max_size=16)),
                START + draw(st.integers(-30, 30)),
                draw(st.integers(1, 144)),
            )
        )
        for _ in range(count)
    ]
    sightings: list[Sighting] = []
    for _ in range(draw(st.integers(0, 25))):
        key = keys[draw(st.integers(0, count - 1))]
        j = draw(st.integers(0, 143))
        at = T0 + draw(st.integers(-12000, 110000))
        tx = draw(st.one_of(st.none(), st.integers(-80, 40)))
        sightings.append(_seen(key, j, at, tx))
    sightings += [
        Sighting("gaen", draw(st.binary(min_size=16, max_size=16)), T0)
        for _ in range(draw(st.integers(0, 3)))
    ]
    return keys, sightings


@pytest.mark.parametrize("backend", MATCH_BACKENDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_matcher_equals_the_naive_matcher(
    backend: str, case: tuple[list[DiagnosisKey], list[Sighting]]
) -> None:
    keys, sightings = case
    if len({k.key_data for k in keys}) < len(keys):
        return  # the naive matcher keys its output by key bytes
    # the reference backend runs with every AES implementation
    runs: list[dict[str, Any]] = [{"backend": backend}]
    if backend == "python":
        runs += [{"backend": "libcrypto"}, {"backend": "portable"}]
    for run in runs:
        found = _match(keys, sightings, **run)
        got = {
            m.key_data: sorted(
                (int(r), None if math.isnan(t) else float(t))
                for r, t in zip(m.row_ids, m.tx_power, strict=True)
            )
            for m in found
        }
        assert got == naive(keys, sightings)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), st.integers(1, 3))
def test_results_identical_whatever_the_workers(
    case: tuple[list[DiagnosisKey], list[Sighting]], chunk: int
) -> None:
    keys, sightings = case
    obs = Observations.from_sightings("gaen", sightings)
    one = match_gaen(keys, obs, workers=1, chunk_size=chunk)
    two = match_gaen(keys, obs, workers=2, chunk_size=chunk)
    assert [(m.key_data, m.row_ids.tolist(), m.tx_power.tobytes()) for m in one] == [
        (m.key_data, m.row_ids.tolist(), m.tx_power.tobytes()) for m in two
    ]


def test_a_match_plugs_into_the_estimator() -> None:
    from proximity.estimation.windows import CounterpartSightings

    key = _key(14)
    [found] = _match([key], [_seen(key, 0, T0, tx=-20), _seen(key, 1, T0 + 600)])
    counterpart: CounterpartSightings = found  # checked by mypy: the estimator's input shape
    for column in (counterpart.times, counterpart.rssi, counterpart.tx_power):
        assert column.dtype == np.float64 and column.shape == (2,)


def test_keys_without_any_sighting_in_their_window_skip_the_crypto(monkeypatch: pytest.MonkeyPatch) -> None:
    near, far = _key(15), _key(16, start=START - 3 * 144)
    reference = crypto_backend("portable")
    derived: list[int] = []
    encrypt_and_probe = reference.aes_ecb_probe

    def counting(keys: Any, *args: Any) -> Any:
        derived.append(len(keys))
        return encrypt_and_probe(keys, *args)

    monkeypatch.setattr(reference, "aes_ecb_probe", counting)
    found = _match([near, far], [_seen(near, 0, T0 + 5), _seen(far, 0, T0 + 10)], backend="portable")
    assert [m.key_data for m in found] == [near.key_data]  # far's sighting is outside its window
    assert derived == [1]  # only near's RPIs were derived


def _many_keys_with_aems(count: int) -> tuple[list[DiagnosisKey], Observations, dict[bytes, float]]:
    rng = np.random.default_rng(21)
    keys = [DiagnosisKey(TemporaryExposureKey(rng.bytes(16), START, 144)) for _ in range(count)]
    tx = {k.key_data: float(rng.integers(-45, 15)) for k in keys}
    sightings = [
        _seen(k, i % 144, T0 + 600 * (i % 144) + 1, tx=int(tx[k.key_data])) for i, k in enumerate(keys)
    ]
    return keys, Observations.from_sightings("gaen", sightings), tx


def _summary(found: Sequence[KeyMatch]) -> list[tuple[bytes, list[int], list[float]]]:
    return [(m.key_data, m.row_ids.tolist(), m.tx_power.tolist()) for m in found]


def test_worker_threads_sharing_one_aes_backend_give_the_single_worker_result() -> None:
    # Regression: the libcrypto backend shared one EVP context between worker threads, so some AEM
    # (and RPI) decrypts came out under another thread's key: missing matches, wrong TX powers.
    from proximity.matching.gaen import GaenMatcher
    from proximity.matching.pool import run_chunks
    from proximity.schemes.published import batches_of

    keys, obs, tx = _many_keys_with_aems(3000)
    for aes in ("libcrypto", "portable"):
        matcher = GaenMatcher.build(obs, backend=aes)
        one = run_chunks(matcher, batches_of(keys, 64), 1)
        two = run_chunks(matcher, batches_of(keys, 64), 3, threads=True)
        key_of = lambda m: m.key_data  # noqa: E731
        assert _summary(sorted(two, key=key_of)) == _summary(sorted(one, key=key_of))
        assert {m.key_data: m.tx_power.tolist() for m in one} == {k: [t] for k, t in tx.items()}
    # and the public entry point with workers (threads when the C path runs)
    assert _summary(match_gaen(keys, obs, workers=2, chunk_size=64)) == _summary(
        match_gaen(keys, obs, workers=1, chunk_size=64)
    )
    assert len(match_gaen(keys, obs, workers=2, chunk_size=64)) == 3000


def _revision(key: DiagnosisKey, report_type: ReportType, risk: int = 0) -> KeyBatch:
    # one batch per revision, as the CLI passes one batch per export file
    return KeyBatch.from_keys([DiagnosisKey(key.tek, risk, report_type)])


def test_a_later_revoked_revision_wins_over_an_earlier_one() -> None:
    key = _key(30, report_type=ReportType.CONFIRMED_TEST)
    sightings = [_seen(key, 0, T0 + 10)]
    later_revoked = [_revision(key, ReportType.SELF_REPORT), _revision(key, ReportType.REVOKED)]
    assert _match([key], sightings, revised_keys=later_revoked) == []
    assert _match([], sightings, revised_keys=later_revoked) == []
    # the other way round the later (non-revoked) revision wins, with its own metadata
    later_kept = [_revision(key, ReportType.REVOKED), _revision(key, ReportType.RECURSIVE, 4)]
    [found] = _match([key], sightings, revised_keys=later_kept)
    assert found.report_type is ReportType.RECURSIVE and found.transmission_risk_level == 4
    # of two non-revoked revisions the later one's metadata is reported
    for first, last in (
        ((ReportType.SELF_REPORT, ReportType.CONFIRMED_TEST), (7, 3)),
        (
            (ReportType.CONFIRMED_TEST, ReportType.SELF_REPORT),
            (3, 7),
        ),
    ):
        (a, b), (risk_a, risk_b) = first, last
        revisions = [_revision(key, a, risk_a), _revision(key, b, risk_b)]
        [found] = _match([key], sightings, revised_keys=revisions)
        assert (found.report_type, found.transmission_risk_level) == (b, risk_b)


def test_keys_reported_revoked_are_never_matches() -> None:
    from proximity.matching.gaen import GaenMatcher

    revoked = _key(31, report_type=ReportType.REVOKED)
    other = _key(32)
    sightings = [_seen(revoked, 0, T0 + 10), _seen(other, 1, T0 + 700)]
    for backend in ["python"] if native.native_module() is None else ["python", "c"]:
        found = _match([revoked, other], sightings, backend=backend)
        assert [m.key_data for m in found] == [other.key_data]
        matcher = GaenMatcher.build(Observations.from_sightings("gaen", sightings), backend=backend)
        assert [m.key_data for m in matcher.match_batch(KeyBatch.from_keys([revoked, other]))] == [
            other.key_data
        ]
    # a REVOKED copy published alongside withdraws the key too
    published = DiagnosisKey(revoked.tek, report_type=ReportType.CONFIRMED_TEST)
    assert [m.key_data for m in _match([published, other, revoked], sightings)] == [other.key_data]


def test_a_revocation_in_a_later_export_file_wins(tmp_path: Any) -> None:
    from proximity.keyfiles.gaen_export import generate_signing_key, stream_exports, write_export

    key = _key(33, report_type=ReportType.CONFIRMED_TEST)
    signer = generate_signing_key()
    paths = []
    for name, revised in (
        ("a.zip", [DiagnosisKey(key.tek, 2, ReportType.SELF_REPORT)]),
        ("b.zip", [DiagnosisKey(key.tek, 0, ReportType.REVOKED)]),
    ):
        path = tmp_path / name
        path.write_bytes(
            write_export(
                [key] if name == "a.zip" else [],
                signer,
                key_id="310",
                start_timestamp=T0,
                end_timestamp=T0 + 86400,
                revised_keys=revised,
            )
        )
        paths.append(path)
    obs = Observations.from_sightings("gaen", [_seen(key, 0, T0 + 10)])
    stream = stream_exports(paths, verify=False)
    assert match_gaen(stream.keys(), obs, revised_keys=stream.revisions(), workers=1) == []
    with pytest.raises(TypeError, match="a value"):
        match_gaen(stream.keys(), obs, revised_keys=iter(stream.revisions()), workers=1)  # type: ignore[arg-type]


def test_match_columns_name_each_sighting_s_key_by_its_row_in_the_batch_given() -> None:
    """The columns the simulator reads are what the per-key API is built from: each sighting's key is
    its row in the batch passed in, also where a REVOKED key and a key with no sighting in its
    window are dropped before the crypto."""
    keys = [
        _key(1, report_type=ReportType.REVOKED),  # never a match
        _key(2),
        _key(3, start=START - 10 * 144),  # its window ends days before any sighting: skipped
        _key(4),
        _key(5),  # published, never seen
        _key(6),
    ]
    sightings = [
        _seen(keys[0], 1, T0 + 700),
        _seen(keys[5], 3, T0 + 3 * 600 + 5, tx=-20),
        _seen(keys[1], 0, T0 + 10),
        _seen(keys[3], 2, T0 + 1300, tx=-30),
        _seen(keys[1], 0, T0 + 20),
        _seen(keys[5], 3, T0 + 3 * 600 + 1),
    ]
    batch = KeyBatch.from_keys(keys)
    matcher = GaenMatcher.build(Observations.from_sightings("gaen", sightings))
    columns = matcher.match_columns(batch)
    assert columns.key.tolist() == [1, 1, 3, 5, 5]
    assert columns.times.tolist() == [T0 + 10, T0 + 20, T0 + 1300, T0 + 3 * 600 + 1, T0 + 3 * 600 + 5]
    assert np.isnan(columns.tx_power[3]) and columns.tx_power[[2, 4]].tolist() == [-30, -20]
    found = matcher.match_batch(batch)
    assert [m.key for m in found] == [keys[1], keys[3], keys[5]]
    for match, rows in zip(found, ([0, 1], [2], [3, 4]), strict=True):
        for name in ("row_ids", "ids", "times", "rssi", "tx_power", "calibration_confidence"):
            np.testing.assert_array_equal(getattr(match, name), getattr(columns, name)[rows])
    assert len(matcher.match_columns(batch.select(np.array([0, 2, 4])))) == 0
