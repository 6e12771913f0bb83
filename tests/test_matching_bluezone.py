"""Bluezone matching: IDs over many days by the hash chain, inclusive slot bounds, every sighting."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import load_vectors
from proximity.crypto import native
from proximity.matching import match_bluezone
from proximity.matching.bluezone import record_ids
from proximity.schemes.bluezone import BLUEZONE, BluezoneBaseKey, BluezoneDailyKey
from proximity.sightings import Observations, Sighting

BASE = BluezoneBaseKey(
    bytes.fromhex("4C5224B397F8AB3896781D5AA0F3119F280513F1B592CA280EBDED6357E21084"), 1596844800
)
DAY = 1596844800
MATCH_BACKENDS = [
    "python",
    pytest.param(
        "c",
        marks=pytest.mark.skipif(
            native.native_module() is None, reason=f"C backend unavailable: {native.unavailable_reason()}"
        ),
    ),
]


def _match(records: list[BluezoneDailyKey], sightings: list[Sighting], **kw: Any) -> list[Any]:
    return match_bluezone(records, Observations.from_sightings("bluezone", sightings), workers=1, **kw)


def test_record_ids_follow_the_captured_vectors_and_the_scheme() -> None:
    record = BASE.record(DAY, 14)
    ids, starts = record_ids(record)
    assert ids[23].tobytes().hex().upper() == "B9A665D754FE65E665D76A45"
    assert ids[96 + 95].tobytes().hex().upper() == "171787F26942039E5161ABB8"
    reference = BLUEZONE.ids_of_key(record)
    assert np.array_equal(ids, reference.ids) and np.array_equal(starts, reference.starts)


def test_the_captured_ids_match_in_their_slots() -> None:
    vectors = load_vectors("bluezone-vectors.json")
    captured = vectors["captured"]
    record = BluezoneBaseKey(bytes.fromhex(vectors["base_key"]), vectors["base_day"]).record(
        vectors["base_day"], 1
    )
    sightings = [
        Sighting(
            "bluezone", bytes.fromhex(c["id"]), vectors["base_day"] + c["day"] * 86400 + c["slot"] * 900 + 450
        )
        for c in captured
    ]
    [found] = _match([record], sightings)
    assert found.row_ids.tolist() == list(range(len(captured))) and not found.verified
    assert [row.tobytes().hex().upper() for row in found.ids] == [c["id"] for c in captured]


@pytest.mark.parametrize(("offset", "counts"), [(-1, False), (0, True), (900, True), (901, False)])
def test_slot_bounds_are_inclusive(offset: int, counts: bool) -> None:
    record = BASE.record(DAY, 1)
    ids, _ = record_ids(record)
    assert (
        bool(_match([record], [Sighting("bluezone", ids[30].tobytes(), DAY + 30 * 900 + offset)])) is counts
    )


def test_every_sighting_is_reported_over_many_days() -> None:
    record = BASE.record(DAY, 14)
    ids, starts = record_ids(record)
    slots = [0, 95, 96, 500, 14 * 96 - 1]
    sightings = [
        Sighting("bluezone", ids[s].tobytes(), float(starts[s]) + dt, -60) for s in slots for dt in (0, 10)
    ]
    [found] = _match([record], sightings)
    assert len(found) == 10
    assert found.times.tolist() == sorted(found.times.tolist())


def test_time_end_is_exclusive_for_the_record() -> None:
    record = BluezoneDailyKey(BASE.daily_key(DAY), DAY, DAY + 10 * 900)
    ids, _ = record_ids(BASE.record(DAY, 1))
    assert _match([record], [Sighting("bluezone", ids[9].tobytes(), DAY + 9 * 900 + 1)])
    assert not _match([record], [Sighting("bluezone", ids[10].tobytes(), DAY + 10 * 900 + 1)])


def test_a_later_daily_key_covers_only_its_days() -> None:
    later = BASE.record(DAY + 86400, 1)
    ids0, _ = record_ids(BASE.record(DAY, 1))
    ids1, _ = record_ids(later)
    assert not _match([later], [Sighting("bluezone", ids0[5].tobytes(), DAY + 5 * 900)])
    assert _match([later], [Sighting("bluezone", ids1[5].tobytes(), DAY + 86400 + 5 * 900)])


def _naive(records: list[BluezoneDailyKey], sightings: list[Sighting]) -> dict[bytes, list[int]]:
    out: dict[bytes, list[int]] = {}
    for record in records:
        batch = BLUEZONE.ids_of_key(record)
        rows = [
            i
            for i, s in enumerate(sightings)
            for k in range(len(batch))
            if s.id == batch.ids[k].tobytes()
            and batch.starts[k] <= s.time <= batch.starts[k] + record.slot_seconds
        ]
        if rows:
            out[record.daily_key] = sorted(rows)
    return out


@pytest.mark.parametrize("backend", MATCH_BACKENDS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3 * 96 - 1), st.integers(-100, 1000)), max_size=20)
)
def test_equals_a_naive_matcher(backend: str, picks: list[tuple[int, int, int]]) -> None:
    bases = [BluezoneBaseKey(bytes([i + 1]) * 32, DAY) for i in range(3)]
    records = [b.record(DAY, 3) for b in bases]
    all_ids = [record_ids(r) for r in records]
    sightings = [
        Sighting("bluezone", all_ids[r][0][slot].tobytes(), float(all_ids[r][1][slot]) + dt)
        for r, slot, dt in picks
    ]
    found = _match(records, sightings, chunk_size=2, backend=backend)
    got = {m.key_data: sorted(m.row_ids.tolist()) for m in found}
    assert got == _naive(records, sightings)


def test_results_identical_whatever_the_workers() -> None:
    records = [BluezoneBaseKey(bytes([i]) * 32, DAY).record(DAY, 2) for i in range(6)]
    sightings = []
    for r in records:
        ids, starts = record_ids(r)
        sightings += [Sighting("bluezone", ids[s].tobytes(), float(starts[s])) for s in (1, 100)]
    obs = Observations.from_sightings("bluezone", sightings)
    one = match_bluezone(records, obs, workers=1, chunk_size=1)
    two = match_bluezone(records, obs, workers=2, chunk_size=1)
    assert [(m.key_data, m.row_ids.tolist()) for m in one] == [(m.key_data, m.row_ids.tolist()) for m in two]
    assert len(one) == 6
