"""Properties of both schemes: distinct keys give distinct IDs, any start works, bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from proximity import (
    BLUEZONE,
    GAEN,
    BluezoneBaseKey,
    BluezoneDailyKey,
    InvalidKeyError,
    InvalidLengthError,
    Metadata,
    NoKeyForTimeError,
    ProximityError,
    TemporaryExposureKey,
)
from proximity.errors import InvalidMetadataError
from proximity.schemes.gaen import decrypt_aem, derive_aemk, encrypt_aem, padded_blocks, rpi_inputs

teks = st.binary(min_size=16, max_size=16)
intervals = st.integers(min_value=0, max_value=2**32 - 145)
periods = st.integers(min_value=1, max_value=144)
days = st.integers(min_value=0, max_value=30_000).map(lambda d: d * 86_400)


@given(teks, teks, intervals)
def test_distinct_teks_give_distinct_rpis(a: bytes, b: bytes, start: int) -> None:
    if a == b:
        return
    ids_a = {row.tobytes() for row in GAEN.ids_of_key(TemporaryExposureKey(a, start)).ids}
    ids_b = {row.tobytes() for row in GAEN.ids_of_key(TemporaryExposureKey(b, start)).ids}
    assert len(ids_a) == 144 and not ids_a & ids_b


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32), days)
def test_distinct_bluezone_keys_give_distinct_ids(a: bytes, b: bytes, day: int) -> None:
    if a == b:
        return
    ids_a = {r.tobytes() for r in BLUEZONE.ids_of_key(BluezoneDailyKey(a, day, day + 86_400)).ids}
    ids_b = {r.tobytes() for r in BLUEZONE.ids_of_key(BluezoneDailyKey(b, day, day + 86_400)).ids}
    assert len(ids_a) == 96 and not ids_a & ids_b


@given(teks, intervals, periods, st.data())
def test_unaligned_keys_batch_and_id_at_agree(
    tek: bytes, start: int, period: int, data: st.DataObject
) -> None:
    key = TemporaryExposureKey(tek, start, period)
    batch = GAEN.ids_of_key(key)
    assert len(batch) == period
    index = data.draw(st.integers(0, period - 1))
    at = key.start + index * 600 + data.draw(st.integers(0, 599))
    assert GAEN.id_at(key, at) == batch[index]
    assert batch.index_at(at) == index
    with pytest.raises(NoKeyForTimeError):
        GAEN.id_at(key, key.end)


@given(teks, st.binary(min_size=16, max_size=16), st.integers(-128, 127), st.integers(0, 3))
def test_aem_round_trip(tek: bytes, rpi: bytes, tx_power: int, confidence: int) -> None:
    metadata = Metadata(tx_power, confidence)
    aemk = derive_aemk(tek)
    aem = encrypt_aem(aemk, rpi, metadata.to_bytes())
    assert Metadata.from_bytes(decrypt_aem(aemk, rpi, aem)) == metadata


@given(st.binary(max_size=40).filter(lambda b: len(b) != 16))
def test_wrong_tek_length_is_refused_with_the_sizes(data: bytes) -> None:
    with pytest.raises(InvalidLengthError, match=f"TEK must be 16 bytes, got {len(data)}") as caught:
        TemporaryExposureKey(data, 0)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, ProximityError)
    assert (caught.value.expected, caught.value.actual) == (16, len(data))


@given(st.binary(max_size=64).filter(lambda b: len(b) != 32))
def test_wrong_bluezone_key_length_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidLengthError, match="32 bytes"):
        BluezoneBaseKey(data, 0)
    with pytest.raises(InvalidLengthError, match="32 bytes"):
        BluezoneDailyKey(data, 0, 86_400)


def test_key_type_and_range_errors() -> None:
    with pytest.raises(TypeError, match="TEK must be bytes"):
        TemporaryExposureKey("00" * 16, 0)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError, match=r"rolling_period must be 1\.\.144"):
        TemporaryExposureKey(bytes(16), 0, 145)
    with pytest.raises(InvalidKeyError, match="uint32"):
        TemporaryExposureKey(bytes(16), 2**32)
    with pytest.raises(InvalidKeyError, match="UTC midnight"):
        BluezoneBaseKey(bytes(32), 1000)
    with pytest.raises(InvalidKeyError, match="divide 86400"):
        BluezoneDailyKey(bytes(32), 0, 86_400, ids_per_day=97)
    with pytest.raises(NoKeyForTimeError):
        BluezoneBaseKey(bytes(32), 86_400).daily_key(0)
    with pytest.raises(ValueError, match="tx_power"):
        Metadata(200)


def test_generated_key_rolls_at_midnight_and_uses_the_csprng() -> None:
    at = 1_600_000_000 + 3 * 3600  # mid-day
    calls: list[int] = []

    def fake_random(n: int) -> bytes:
        calls.append(n)
        return bytes(range(n))

    key = TemporaryExposureKey.generate(at, random_bytes=fake_random)
    assert calls == [16] and key.key_data == bytes(range(16))
    assert key.start <= at < key.end and key.end % 86_400 == 0
    assert TemporaryExposureKey.generate(at, until_midnight=False).rolling_period == 144
    assert "key_data=<16 bytes>" in repr(key)  # secrets never printed


def test_bluezone_record_from_bad_json() -> None:
    with pytest.raises(InvalidKeyError, match="lacks the field"):
        BluezoneDailyKey.from_record({"daily_key": "00" * 32, "time_start": 0})
    with pytest.raises(InvalidKeyError, match="not hex"):
        BluezoneDailyKey.from_record({"daily_key": "zz", "time_start": 0, "time_end": 86_400})
    with pytest.raises(InvalidKeyError, match="integer"):
        BluezoneDailyKey.from_record({"daily_key": "00" * 32, "time_start": "0", "time_end": 86_400})


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"tx_power": 200}, "tx_power"),
        ({"tx_power": -129}, "tx_power"),
        ({"tx_power": 0, "calibration_confidence": 4}, "calibration_confidence"),
        ({"tx_power": 0, "major_version": -1}, "major_version"),
        ({"tx_power": 0, "minor_version": 9}, "minor_version"),
    ],
)
def test_metadata_errors_are_typed(fields: dict[str, int], name: str) -> None:
    with pytest.raises(InvalidMetadataError, match=name) as caught:
        Metadata(**fields)
    assert isinstance(caught.value, ProximityError) and isinstance(caught.value, ValueError)
    assert caught.value.field == name
    with pytest.raises(TypeError, match=name):
        Metadata(**{**{"tx_power": 0}, name: 1.5})  # type: ignore[arg-type]


@given(st.lists(st.one_of(st.integers(2_650_000, 2_650_400), st.integers(0, 2**32 - 1)), max_size=40))
def test_rpi_inputs_group_keys_by_start_as_np_unique_does(starts: list[int]) -> None:

    array = np.array(starts, dtype=np.int64)
    teks = np.zeros((array.size, 16), np.uint8)
    _, blocks, rows = rpi_inputs(teks, array)
    unique, which = np.unique(array, return_inverse=True)
    assert np.array_equal(blocks, padded_blocks(unique)) and rows.tolist() == which.reshape(-1).tolist()
    assert rows.dtype == np.intp
