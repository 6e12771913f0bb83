"""Prepared keys (each key's RPIK/AEMK derived once): the same matches as the plain batch, any log."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import load_vectors
from proximity import PreparedKeys as TopLevelPreparedKeys
from proximity.crypto import crypto_backend, native
from proximity.matching import DiagnosisKey, GaenMatcher, KeyBatch, PreparedKeys, ReportType, match_gaen
from proximity.matching.results import KeyMatch, MatchColumns
from proximity.schemes.gaen import (
    Metadata,
    TemporaryExposureKey,
)
from proximity.sightings import Observations, Sighting
from test_matching_gaen import _seen, scenario

BACKENDS = [
    "portable",
    pytest.param(
        "c",
        marks=pytest.mark.skipif(
            native.native_module() is None, reason=f"C backend unavailable: {native.unavailable_reason()}"
        ),
    ),
]
OFFICIAL: dict[str, Any] = load_vectors("gaen-test-vectors.json")["sets"][0]
START = 2_650_032  # a UTC-midnight interval
T0 = START * 600


def _columns(found: MatchColumns) -> tuple[Any, ...]:
    """Every column as bytes, and the key each sighting names: equal means the same matches."""
    arrays = (found.key, found.row_ids, found.ids, found.times, found.rssi, found.tx_power)
    keys = [found.key_of(int(k)) for k in found.key.tolist()]
    return (*(a.tobytes() for a in arrays), found.calibration_confidence.tobytes(), keys, found.verified)


def _matches(found: list[KeyMatch]) -> list[tuple[Any, ...]]:
    return [
        (m.key, m.verified, m.row_ids.tobytes(), m.ids.tobytes(), m.tx_power.tobytes(), m.times.tobytes())
        for m in found
    ]


# --- the published vectors through the prepared path -------------------------------------------------


def test_prepared_keys_hold_the_published_rpik_and_aemk() -> None:
    key = TemporaryExposureKey(bytes.fromhex(OFFICIAL["tek_hex"]), OFFICIAL["en_interval_number_of_key"])
    prepared = PreparedKeys.prepare(KeyBatch.from_keys([DiagnosisKey(key)]))
    assert prepared.rpiks[0].tobytes().hex() == OFFICIAL["rpik_hex"]
    assert prepared.aemks[0].tobytes().hex() == OFFICIAL["aemk_hex"]
    start = OFFICIAL["key_generation_unix_seconds"]
    assert (prepared.low[0], prepared.high[0]) == (start - 7200, start + 144 * 600 + 7200)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_published_rpi_and_aem_matches_through_prepared_keys(backend: str) -> None:
    """Google's 144 (RPI, AEM) pairs heard once each: every one matches, its metadata decrypted."""
    key = DiagnosisKey(
        TemporaryExposureKey(bytes.fromhex(OFFICIAL["tek_hex"]), OFFICIAL["en_interval_number_of_key"]), 3
    )
    start = OFFICIAL["key_generation_unix_seconds"]
    pairs = OFFICIAL["advertised_data"]
    sightings = [
        Sighting(
            "gaen",
            bytes.fromhex(p["rpi_hex"]),
            start + 600 * p["index"] + 30,
            -70,
            bytes.fromhex(p["aem_hex"]),
        )
        for p in pairs
    ]
    obs = Observations.from_sightings("gaen", sightings)
    matcher = GaenMatcher.build(obs, backend=backend)
    batch = KeyBatch.from_keys([key])
    prepared = PreparedKeys.prepare(batch, backend=backend)
    found = matcher.match_columns(prepared)
    metadata = Metadata.from_bytes(bytes.fromhex(OFFICIAL["ble_metadata_hex"]))
    assert len(found) == 144
    assert [row.tobytes().hex() for row in found.ids] == [p["rpi_hex"] for p in pairs]
    assert np.all(found.tx_power == metadata.tx_power)
    assert np.all(found.calibration_confidence == metadata.calibration_confidence)
    assert _columns(found) == _columns(matcher.match_columns(batch))
    [match] = match_gaen(prepared, obs, workers=1, backend=backend)
    assert match.key == key and len(match) == 144


# --- prepared and plain agree -------------------------------------------------------------------------


@st.composite
def case(draw: st.DrawFn) -> tuple[KeyBatch, list[Sighting]]:
    """The naive-matcher property's keys and sightings (in and out of the keys' windows, with and
    without metadata, TX inside and outside the accepted range, strangers), some keys REVOKED."""
    keys, sightings = draw(scenario())
    revoked = [draw(st.integers(0, 5)) == 0 for _ in keys]
    keys = [
        replace(k, report_type=ReportType.REVOKED) if r else k for k, r in zip(keys, revoked, strict=True)
    ]
    return KeyBatch.from_keys(keys, verified=draw(st.booleans())), sightings


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case())
def test_prepared_and_plain_keys_give_identical_columns(
    backend: str, drawn: tuple[KeyBatch, list[Sighting]]
) -> None:
    batch, sightings = drawn
    matcher = GaenMatcher.build(Observations.from_sightings("gaen", sightings), backend=backend)
    prepared = PreparedKeys.prepare(batch, backend=backend)
    assert _columns(matcher.match_columns(prepared)) == _columns(matcher.match_columns(batch))
    rows = np.arange(0, len(batch), 2)  # a selection of prepared keys: the same as that of the batch
    assert _columns(matcher.match_columns(prepared.select(rows))) == _columns(
        matcher.match_columns(batch.select(rows))
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case(), st.integers(1, 4))
def test_match_gaen_gives_the_same_matches_for_prepared_keys(
    drawn: tuple[KeyBatch, list[Sighting]], chunk: int
) -> None:
    batch, sightings = drawn
    obs = Observations.from_sightings("gaen", sightings)
    half = len(batch) // 2
    first, second = batch.select(slice(0, half)), batch.select(slice(half, len(batch)))
    plain = match_gaen([first, second], obs, workers=1, chunk_size=chunk)
    prepared = [PreparedKeys.prepare(first), PreparedKeys.prepare(second)]
    assert _matches(match_gaen(prepared, obs, workers=1, chunk_size=chunk)) == _matches(plain)
    # mixed with plain keys, and as revisions: the same as all plain
    mixed = [prepared[0], *second]
    assert _matches(match_gaen(mixed, obs, workers=1, chunk_size=chunk, verified=batch.verified)) == _matches(
        match_gaen([first, *second], obs, workers=1, chunk_size=chunk, verified=batch.verified)
    )
    assert _matches(match_gaen([], obs, revised_keys=prepared, workers=1)) == _matches(
        match_gaen([], obs, revised_keys=[first, second], workers=1)
    )


def test_prepared_keys_through_an_encounter_log_match_as_plain_ones(tmp_path: Path) -> None:
    """The log's two passes (IDs first, then the sightings of the IDs found) with prepared keys and
    prepared revisions: the plain keys' matches."""
    from proximity.log import EncounterLog
    from proximity.log.matchable import LogSightings

    keys = [DiagnosisKey(TemporaryExposureKey(bytes([i]) * 16, START), 1) for i in range(1, 7)]
    revision = DiagnosisKey(keys[1].tek, 4, ReportType.CONFIRMED_CLINICAL_DIAGNOSIS)
    withdrawn = DiagnosisKey(keys[2].tek, report_type=ReportType.REVOKED)
    heard = [_seen(k, 5 * i, T0 + 900 * i + 7, tx=-12) for i, k in enumerate(keys) if i != 4]
    batch, revised = KeyBatch.from_keys(keys), KeyBatch.from_keys([revision, withdrawn])
    with EncounterLog(tmp_path / "log.db") as log:
        log.add(heard)
        with log.snapshot():
            source = log.matchable("gaen")
            assert isinstance(source, LogSightings)
            plain = match_gaen(batch, source, revised_keys=revised, workers=1)
            prepared = match_gaen(
                PreparedKeys.prepare(batch), source, revised_keys=PreparedKeys.prepare(revised), workers=1
            )
    assert _matches(prepared) == _matches(plain)
    assert len(plain) == 4 and revision in [m.key for m in plain]  # 6 keys, one unheard, one revoked


def test_one_prepared_set_serves_many_logs_without_deriving_again(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [DiagnosisKey(TemporaryExposureKey(bytes([i]) * 16, START), 1) for i in range(1, 5)]
    prepared = PreparedKeys.prepare(KeyBatch.from_keys(keys))
    logs = [
        Observations.from_sightings(
            "gaen", [_seen(keys[i], 3 * i, T0 + 1800 * i + 60, tx=-10 * i) for i in day]
        )
        for day in ([0, 1], [2], [1, 3])
    ]
    expected = [_matches(match_gaen(keys, obs, workers=1)) for obs in logs]
    backend = crypto_backend("portable")

    def no_hkdf(*args: Any) -> Any:
        raise AssertionError("prepared keys derived a key again")

    monkeypatch.setattr(type(backend), "hkdf_sha256", no_hkdf)
    got = [_matches(match_gaen(prepared, obs, workers=1, backend="portable")) for obs in logs]
    assert got == expected
    assert [len(g) for g in got] == [2, 1, 2]
    for array in (prepared.rpiks, prepared.aemks, prepared.blocks, prepared.low):
        assert not array.flags.writeable  # shared safely between threads and calls


def test_the_prepared_set_is_exported_and_says_what_it_holds() -> None:
    assert TopLevelPreparedKeys is PreparedKeys
    prepared = PreparedKeys.prepare([DiagnosisKey(TemporaryExposureKey(bytes(16), START))], verified=True)
    assert len(prepared) == 1 and prepared.verified
    assert repr(prepared) == "PreparedKeys(1 keys, verified=True)"
    assert len(PreparedKeys.prepare(KeyBatch.from_keys([]))) == 0


# --- bad input: the same typed errors ------------------------------------------------------------------


def test_bad_input_gets_clear_typed_errors() -> None:
    batch = KeyBatch.from_keys([DiagnosisKey(TemporaryExposureKey(bytes(16), START))])
    with pytest.raises(TypeError, match="KeyBatch or an iterable of DiagnosisKey"):
        PreparedKeys.prepare(b"not keys")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prepare each batch on its own"):
        PreparedKeys.prepare([batch])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="DiagnosisKey"):
        PreparedKeys.prepare(batch.key(0))  # type: ignore[arg-type]
    matcher = GaenMatcher.build(Observations.from_sightings("gaen", []))
    with pytest.raises(TypeError, match="KeyBatch or PreparedKeys"):
        matcher.match_columns([batch.key(0)])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        match_gaen([b"not a key"], Observations.from_sightings("gaen", []), workers=1)  # type: ignore[list-item]
    prepared = PreparedKeys.prepare(batch)
    with pytest.raises(ValueError, match="rpiks"):
        PreparedKeys(
            batch,
            prepared.rpiks[:, :8],
            *[getattr(prepared, f) for f in ("aemks", "blocks", "block_rows", "low", "high")],
        )
    with pytest.raises(ValueError, match="block_rows"):
        PreparedKeys(
            batch,
            prepared.rpiks,
            prepared.aemks,
            prepared.blocks,
            prepared.block_rows + 1,
            prepared.low,
            prepared.high,
        )
