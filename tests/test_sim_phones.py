"""The simulator's phones, made all at once (KeyRings and the schemes' batch methods), against each
phone's own KeyRing made one by one from the same stream: the same keys, IDs, AEMs and published keys."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from proximity.keyring import KeyRing, KeyRings, KeyRingSettings
from proximity.schemes.published import KeyBatch
from proximity.sim.phones import Phones
from proximity.times import SECONDS_PER_DAY

NOON = 1596628800.0  # 2020-08-05 12:00 UTC
MIDNIGHT = 1596585600.0

WINDOWS = [
    (NOON + 123.0, 3600.0),  # an hour, starting inside a slot
    (MIDNIGHT + 86000.0, 7200.0),  # across a UTC midnight: a second GAEN key, the next chained day
    (MIDNIGHT + 3000.0, 3 * SECONDS_PER_DAY + 450.0),  # days, rolled twice... and a bit
]


def _one_by_one(
    phones: Phones, users: np.ndarray, tx: np.ndarray, conf: np.ndarray, seed: int
) -> list[KeyRing]:
    """Each phone's ring as the simulator made it before batching: create, then roll, phone by phone."""
    rng = np.random.default_rng(seed)
    rings = []
    for agent in users.tolist():
        settings = KeyRingSettings(tx_power=int(tx[agent]), calibration_confidence=int(conf[agent]))
        ring = KeyRing.create(phones.start, settings, random_bytes=rng.bytes)
        for day in range(1, phones.days):
            ring = ring.rolled(phones.first_day + day * SECONDS_PER_DAY, random_bytes=rng.bytes)
        rings.append(ring)
    return rings


@pytest.mark.parametrize("window", WINDOWS, ids=["hour", "midnight", "days"])
@pytest.mark.parametrize("scheme", ["gaen", "bluezone", "dp3t"])
def test_batched_phones_are_each_phones_own_ring(scheme: str, window: tuple[float, float]) -> None:
    n = 500
    users = np.arange(1, n, 2, dtype=np.int64)  # 250 app users among 500 agents
    tx = np.random.default_rng(1).integers(-30, -10, n)  # many settings: rows grouped by them
    conf = np.random.default_rng(2).integers(0, 4, n)
    start, duration = window
    phones = Phones(scheme, users, n, start, start + duration, np.random.default_rng(7), tx, conf)
    rings = _one_by_one(phones, users, tx, conf, 7)
    table, metadata = phones.ids, phones.aem  # the whole run's (made on each access)
    assert table.shape[1] == phones.slots
    for row, (agent, ring) in enumerate(zip(users.tolist(), rings, strict=True)):
        assert phones.ring(agent) == ring
        ids, aem = ring.id_table(scheme, phones.first_day, phones.days)
        slot = (ids.starts - phones.origin) // phones.slot_seconds
        inside = (slot >= 0) & (slot < table.shape[1])
        assert inside.sum() == table.shape[1]  # every slot of the run has its ID
        assert np.array_equal(table[row, slot[inside]], ids.ids[inside])
        if aem is not None:
            assert np.array_equal(metadata[row, slot[inside]], aem[inside])
        else:
            assert metadata.shape[2] == 0
    for agents in (users, users[::-3]):  # all, and some in another order
        published, owners = phones.published_keys(agents)
        expected = [
            (key, agent)
            for agent in agents.tolist()
            for key in rings[int(phones.row[agent])].published(scheme, phones.first_day, phones.days)
        ]
        assert isinstance(published, KeyBatch) == (scheme == "gaen")
        assert list(published) == [key for key, _ in expected]
        assert owners.tolist() == [agent for _, agent in expected]
        assert [key for a in agents.tolist() for key in phones.published(a)] == [key for key, _ in expected]


def test_one_draw_is_the_same_bytes_as_a_draw_per_key() -> None:
    """What KeyRings relies on: numpy's Generator.bytes of draws that are multiples of 4 bytes concatenate
    (a buffered half of a 64-bit output carries over either way); other sizes do not."""
    for seed in range(20):
        sizes = np.random.default_rng(seed).integers(1, 12, 40) * 4
        one, many = np.random.default_rng(seed), np.random.default_rng(seed)
        if seed % 2:  # leave half a 64-bit output buffered first
            one.integers(0, 2**32, 1, np.uint32), many.integers(0, 2**32, 1, np.uint32)
        assert one.bytes(int(sizes.sum())) == b"".join(many.bytes(int(k)) for k in sizes)
    one, many = np.random.default_rng(0), np.random.default_rng(0)
    assert one.bytes(6) != many.bytes(3) + many.bytes(3)


def test_key_rings_leave_the_stream_where_rings_one_by_one_do() -> None:
    settings = [KeyRingSettings(), KeyRingSettings(tx_power=-10, calibration_confidence=2)]
    which = np.array([1, 0, 0, 1, 1])
    rolls = [MIDNIGHT + SECONDS_PER_DAY, MIDNIGHT + 2 * SECONDS_PER_DAY]
    batch_rng, own_rng = np.random.default_rng(3), np.random.default_rng(3)
    rings = KeyRings.create(NOON, settings, which, rolls=rolls, rng=batch_rng)
    for i, g in enumerate(which.tolist()):
        ring = KeyRing.create(NOON, settings[g], random_bytes=own_rng.bytes)
        for t in rolls:
            ring = ring.rolled(t, random_bytes=own_rng.bytes)
        assert rings.ring(i) == ring
        assert rings.draws[i].tobytes()[:32] == ring.bluezone_key.key  # made at install, drawn first
    assert batch_rng.bytes(8) == own_rng.bytes(8)  # the stream goes on alike
    assert len(rings) == 5 and rings.keys("gaen").shape == (5, 3, 16)


def test_key_rings_refuse_settings_that_change_the_keys() -> None:
    with pytest.raises(ValueError, match="TX power"):
        KeyRings.create(
            NOON, [KeyRingSettings(), replace(KeyRingSettings(), retention_days=3)], np.array([0, 1])
        )
    with pytest.raises(ValueError, match="index settings"):
        KeyRings.create(NOON, [KeyRingSettings()], np.array([0, 1]))


def test_no_phones() -> None:
    phones = Phones("gaen", np.zeros(0, np.int64), 4, NOON, NOON + 600, np.random.default_rng(0))
    assert phones.ids.shape == (0, 1, 16)
    published, owners = phones.published_keys(np.zeros(0, np.int64))
    assert len(published) == 0 and owners.size == 0


@pytest.mark.parametrize("scheme", ["gaen", "bluezone", "dp3t"])
def test_rings_in_blocks_give_the_same_tables(scheme: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import proximity.keyring.batch as batch

    n, start = 300, NOON + 500.0
    users = np.arange(n, dtype=np.int64)
    tx = np.random.default_rng(1).integers(-30, -10, n)
    whole = Phones(scheme, users, n, start, start + 5400, np.random.default_rng(4), tx)
    monkeypatch.setattr(batch, "RINGS_AT_ONCE", 7)
    blocks = Phones(scheme, users, n, start, start + 5400, np.random.default_rng(4), tx)
    assert np.array_equal(whole.ids, blocks.ids) and np.array_equal(whole.aem, blocks.aem)
    assert whole.ids.any(axis=2).all()  # every phone has an ID in every slot


@pytest.mark.parametrize("scheme", ["gaen", "bluezone", "dp3t"])
def test_broadcasts_made_an_hour_at_a_time_are_the_whole_tables(scheme: str) -> None:
    """Phones make their ID tables for an hour's slots as broadcasts ask (a city day's would be ~85 MB a
    shard): any times, forwards, backwards, across windows and midnight, give the whole run's entries."""
    n, start, duration = 40, NOON + 9 * 3600.0 + 17.0, 5 * 3600.0  # over a midnight
    users = np.arange(0, n, 3, dtype=np.int64)
    phones = Phones(scheme, users, n, start, start + duration, np.random.default_rng(3))
    table, metadata = phones.ids, phones.aem
    rng = np.random.default_rng(5)
    spans = [(0.0, 600.0), (600.0, 7300.0), (100.0, 200.0), (0.0, duration), (duration - 60.0, duration)]
    for lo, hi in spans:
        times = np.sort(start + rng.uniform(lo, hi, 300))
        agents = rng.choice(users, times.size)
        ids, aem = phones.broadcast(agents, times)
        row, slot = phones.row[agents], phones.slot(times)
        assert np.array_equal(ids, table[row, slot]) and np.array_equal(aem, metadata[row, slot])
    ids, aem = phones.broadcast(np.zeros(0, np.int64), np.zeros(0))
    assert ids.shape == (0, table.shape[2]) and aem.shape == (0, metadata.shape[2])
    with pytest.raises(ValueError, match="slots"):
        phones.broadcast(users[:1], np.array([start + duration + 3600.0]))
