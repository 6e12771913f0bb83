"""Bluezone IDs against IDs captured from real phones, and the algorithm's derived values."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import load_vectors
from proximity.schemes.bluezone import (
    BLUEZONE,
    BluezoneBaseKey,
    BluezoneDailyKey,
    BluezoneScheme,
    ids_for_day,
)

VECTORS: dict[str, Any] = load_vectors("bluezone-vectors.json")
BASE = BluezoneBaseKey(bytes.fromhex(VECTORS["base_key"]), VECTORS["base_day"])
ALL_IDS = VECTORS["captured"] + VECTORS["derived_not_captured"]["ids"]


@pytest.mark.parametrize("vector", ALL_IDS, ids=lambda v: f"day{v['day']}-slot{v['slot']}")
def test_id_of_slot(vector: dict[str, Any]) -> None:
    day = BASE.base_day + vector["day"] * 86_400
    assert ids_for_day(BASE.daily_key(day))[vector["slot"]].tobytes().hex().upper() == vector["id"]


@pytest.mark.parametrize("vector", ALL_IDS, ids=lambda v: f"day{v['day']}-slot{v['slot']}")
def test_id_at_time_from_record(vector: dict[str, Any]) -> None:
    record = BASE.record(BASE.base_day, days=2)
    at = BASE.base_day + vector["day"] * 86_400 + vector["slot"] * 900 + 450
    assert BLUEZONE.id_at(record, at).value.hex().upper() == vector["id"]


def test_daily_key_chain() -> None:
    for vector in VECTORS["derived_not_captured"]["daily_keys"]:
        assert BASE.daily_key(BASE.base_day + vector["day"] * 86_400).hex().upper() == vector["key"]
    assert BASE.daily_key(BASE.base_day + 3600) == BASE.key


def test_record_spanning_days_rolls_the_chain() -> None:
    record = BASE.record(BASE.base_day, days=3)
    batch = BLUEZONE.ids_of_key(record)
    assert len(batch) == 3 * 96
    day_two = BluezoneDailyKey(
        BASE.daily_key(BASE.base_day + 2 * 86_400), BASE.base_day + 2 * 86_400, BASE.base_day + 3 * 86_400
    )
    assert (BLUEZONE.ids_of_key(day_two).ids == batch.ids[192:]).all()
    assert batch.starts[95] == BASE.base_day + 95 * 900 and batch.ends[95] == BASE.base_day + 86_400


def test_record_json_round_trip_and_partial_day() -> None:
    record = BluezoneDailyKey(BASE.key, BASE.base_day, BASE.base_day + 30 * 900)
    assert BluezoneDailyKey.from_record(record.to_record()) == record
    assert len(BLUEZONE.ids_of_key(record)) == 30


def test_144_ids_per_day() -> None:
    scheme = BluezoneScheme(ids_per_day=144)
    record = BASE.record(BASE.base_day, days=1, ids_per_day=144)
    batch = scheme.ids_of_key(record)
    assert len(batch) == 144 and scheme.slot_seconds == 600
    # The chain of IDs is the same whatever the count per day; only the slots are shorter.
    assert batch[23].hex.upper() == VECTORS["captured"][0]["id"]
