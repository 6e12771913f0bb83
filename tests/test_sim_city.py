"""City scale: one shared log, one matcher call per chunk, per-pair state streamed; named device models."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from conftest import REPO
from proximity.estimation import FLEET_TX_POWER_DBM, default_calibration
from proximity.log import EncounterLog
from proximity.matching import match_bluezone, match_gaen
from proximity.sightings import Observations
from proximity.sim import CrowdParams, Scenario, World, load_scenario, run_simulation
from proximity.sim.devices import AppDedup, SharedLog
from proximity.sim.ledger import CloseTime, HeardPairs
from proximity.sim.phones import Phones
from proximity.sim.run import _Matching, _publish, split_by_phone

CITY = REPO / "simulations" / "city.toml"


def _room(scheme: str) -> Scenario:
    crowd = CrowdParams(agents=24, width=8, height=6, stationary=0.5, waypoint=0.5, pause=(0, 300))
    return Scenario(name="room", crowd=crowd, duration=1800, chunk=600, scheme=scheme)


def _phone_rows(obs: Observations, mask: np.ndarray) -> Observations:
    return Observations(
        obs.scheme, obs.ids[mask], obs.times[mask], obs.rssi[mask], obs.aem[mask], obs.has_aem[mask],
        obs.row_ids[mask],
    )  # fmt: skip


@pytest.mark.parametrize("scheme", ["gaen", "bluezone"])
def test_one_matcher_call_finds_what_each_phones_own_call_finds(scheme: str, tmp_path: object) -> None:
    scenario = _room(scheme)
    world = World(scenario, 1.0, 0)
    users = np.flatnonzero(world.app).astype(np.int64)
    end = scenario.start + scenario.duration
    phones = Phones(scheme, users, world.n, scenario.start, end, world.streams("keys"))
    published, owners = _publish(phones, users[::3])  # a third of the phones are index cases
    matching = _Matching(scheme, published, owners)  # what the run reads (GAEN: the matcher's columns)
    owner_of = dict(zip((key.key_data for key in published), owners.tolist(), strict=True))
    one: list[tuple[int, bytes, tuple[int, ...], tuple[float, ...]]] = []
    each: list[tuple[int, bytes, tuple[int, ...], tuple[float, ...]]] = []

    def summary(phone: int, m: object) -> tuple[int, bytes, tuple[int, ...], tuple[float, ...]]:
        assert hasattr(m, "row_ids") and hasattr(m, "tx_power") and hasattr(m, "key_data")
        return phone, m.key_data, tuple(m.row_ids.tolist()), tuple(np.nan_to_num(m.tx_power).tolist())

    match = match_gaen if scheme == "gaen" else match_bluezone
    with SharedLog(scheme) as log:
        for chunk in world.chunks():
            ids, aem = phones.broadcast(chunk.advertiser, chunk.times)
            own, _ = phones.broadcast(chunk.scanner, chunk.times)
            obs, by = log.write(
                chunk.scanner, own, ids, chunk.times, chunk.rssi, aem if scheme == "gaen" else None,
                chunk.start, chunk.end,
            )  # fmt: skip
            found = match(published, obs, workers=1)
            one += [summary(j, m) for j, m in split_by_phone(found, obs, by)]
            rows, owners = matching.rows(obs)
            expected = [(r, owner_of[m.key_data]) for m in found for r in m.row_ids.tolist()]
            assert sorted(zip(rows.tolist(), owners.tolist(), strict=True)) == sorted(expected)
            for phone in np.unique(by).tolist():
                mine = match(published, _phone_rows(obs, by == phone), workers=1)
                each += [summary(phone, m) for m in mine]
    assert len(one) > 5  # confirmed agents' keys were found in several phones' logs
    assert sorted(one) == sorted(each)


def test_shared_log_rows_carry_the_phone_that_logged_them(monkeypatch: pytest.MonkeyPatch) -> None:
    import proximity.sim.devices as devices_module

    monkeypatch.setattr(devices_module, "READ_ROWS", 7)  # read back in many time slices
    scenario = _room("gaen")
    world = World(scenario, 1.0, 1)
    users = np.flatnonzero(world.app).astype(np.int64)
    phones = Phones("gaen", users, world.n, scenario.start, scenario.start + 1800, world.streams("keys"))
    chunk = next(iter(world.chunks()))
    ids, aem = phones.broadcast(chunk.advertiser, chunk.times)
    own, _ = phones.broadcast(chunk.scanner, chunk.times)
    with SharedLog("gaen") as log:
        obs, by = log.write(chunk.scanner, own, ids, chunk.times, chunk.rssi, aem, chunk.start, chunk.end)
        assert len(obs) == len(chunk) == log.written
        assert set(phones.owners(obs.ids).tolist()).isdisjoint({-1})
        # the log itself says who logged each row: own_id is the phone's broadcast ID at that time
        with EncounterLog(log.path) as reader:
            stored = {s.time: s.own_id or b"" for s in reader.iter_sightings()}
        logged_by = [phones.owners(np.frombuffer(stored[t], np.uint8)[None])[0] for t in obs.times]
        assert logged_by == by.tolist()
        assert np.array_equal(obs.rssi, np.clip(np.round(chunk.rssi), -126, 20)[np.argsort(chunk.times)])


def test_app_dedup_keeps_exactly_what_each_phones_own_log_keeps(tmp_path: object) -> None:
    rng = np.random.default_rng(3)
    dedup = AppDedup(5.0)
    ids_pool = rng.integers(0, 256, (6, 12), dtype=np.uint8)  # Bluezone IDs
    kept_rows: list[tuple[int, bytes, float]] = []
    logs: dict[int, EncounterLog] = {}
    expected: list[tuple[int, bytes, float]] = []
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as directory:
        for c in range(3):  # three chunks of 60 s: the rule holds across chunk boundaries
            times = np.sort(c * 60.0 + rng.random(400) * 60.0)
            scanner = rng.integers(0, 4, times.size).astype(np.int64)
            ids = ids_pool[rng.integers(0, 6, times.size)]
            keep = dedup.keep(scanner, ids, times)
            kept_rows += [
                (int(s), i.tobytes(), float(t))
                for s, i, t in zip(scanner[keep], ids[keep], times[keep], strict=True)
            ]
            for phone in range(4):
                log = logs.setdefault(phone, EncounterLog(Path(directory) / f"{phone}.sqlite3"))
                mine = scanner == phone
                log.add_columns(
                    "bluezone", ids[mine], times[mine], np.full(mine.sum(), -70.0), dedup_seconds=5.0
                )
        for phone, log in logs.items():
            obs = log.observations("bluezone")
            expected += [(phone, i.tobytes(), float(t)) for i, t in zip(obs.ids, obs.times, strict=True)]
            log.close()
    assert 100 < len(kept_rows) < 1200
    assert sorted(kept_rows) == sorted(expected)


def test_ledger_settles_per_day_exactly_and_forgets_pairs_apart() -> None:
    truth = CloseTime(10, threshold=900.0, forget=0.0)
    day = 86400.0 * 18479
    key = np.array([(18479 * 10 + 1) * 10 + 2], np.int64)
    truth.add(key, np.array([600.0]), day + 1000)
    assert truth.settle(day + 2000) == set()
    truth.add(key, np.array([600.0]), day + 40000)  # same pair, same day, later: sums to 20 minutes
    assert truth.settle(day + 50000) == set()
    assert truth.settle(day + 86400) == {(1, 2)}
    forgetful = CloseTime(10, threshold=900.0, forget=3600.0)
    forgetful.add(key, np.array([600.0]), day + 1000)
    assert forgetful.settle(day + 5000) == set() and forgetful.settle(day + 86400, final=True) == set()
    heard = HeardPairs(10, forget=3600.0)
    heard.add(np.array([1, 1, 2]), np.array([2, 2, 1]), day + np.array([10.0, 5.0, 7.0]), np.zeros(3))
    assert list(heard.settle(day + 100)) == []
    settled = list(heard.settle(day + 5000))
    assert [(a, b, t.tolist()) for a, b, t, _ in settled] == [(1, 2, [day + 5, day + 10]), (2, 1, [day + 7])]
    assert heard.rows == 0
    held = HeardPairs(10, forget=0.0, hold=1800.0)  # together all day: judged in 30-minute pieces
    pieces = []
    for minute in range(0, 80, 5):
        held.add(np.array([3]), np.array([4]), np.array([day + 60.0 * minute]), np.zeros(1))
        pieces += [(minute, t.tolist()) for _, _, t, _ in held.settle(day + 60.0 * minute + 1)]
    assert pieces == [
        (30, [day + 60.0 * m for m in range(0, 35, 5)]),
        (65, [day + 60.0 * m for m in range(35, 70, 5)]),
    ]
    assert held.rows == 2 and len(list(held.settle(day + 86400))) == 1


def test_heard_pairs_keep_unknown_counterparts_apart() -> None:
    """Rows whose counterpart is -1 (an ID nobody broadcast) stay (scanner, -1): they are neither
    merged into another pair's sightings nor decoded as another scanner's."""
    day = 86400.0 * 18479
    heard = HeardPairs(5, forget=0.0)
    heard.add(
        np.array([0, 2, 1, 1, 4]),
        np.array([-1, -1, 4, 0, -1]),
        day + np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
        np.array([-60.0, -61.0, -62.0, -63.0, -64.0]),
    )
    settled = [(a, b, t.tolist(), r.tolist()) for a, b, t, r in heard.settle(day + 100, final=True)]
    assert settled == [
        (0, -1, [day + 1], [-60.0]),
        (1, 0, [day + 4], [-63.0]),
        (1, 4, [day + 3], [-62.0]),
        (2, -1, [day + 2], [-61.0]),
        (4, -1, [day + 5], [-64.0]),
    ]
    assert heard.rows == 0
    with pytest.raises(ValueError, match="counterparts"):
        heard.add(np.array([0]), np.array([-2]), np.array([day]), np.zeros(1))


def _reference_ledger(
    batches: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], settles: list[float],
    forget: float, hold: float,
) -> list[list[tuple[int, int, list[float], list[float]]]]:  # fmt: skip
    """HeardPairs' rules one pair at a time, in plain Python: what each settle returns."""
    rows: dict[tuple[int, int], list[tuple[float, int, float]]] = {}
    count, out = 0, []
    for (scanner, other, times, rssi), now in zip(batches, settles, strict=True):
        for a, b, t, r in zip(scanner.tolist(), other.tolist(), times.tolist(), rssi.tolist(), strict=True):
            rows.setdefault((a, b), []).append((t, count, float(np.float32(r))))
            count += 1
        midnight = math.floor(now / 86400.0) * 86400.0
        done = []
        for pair, held in rows.items():
            last, first = max(t for t, _, _ in held), min(t for t, _, _ in held)
            if last < midnight or (forget > 0 and last < now - forget) or (hold > 0 and first < now - hold):
                done.append(pair)
        out.append([(a, b, [t for t, _, _ in sorted(rows[a, b])], [r for _, _, r in sorted(rows[a, b])])
                    for a, b in sorted(done)])  # fmt: skip
        for pair in done:
            del rows[pair]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_heard_pairs_settle_what_a_pair_by_pair_ledger_settles(seed: int) -> None:
    """Batches in any order (a pair's rows out of time order, within a batch and across batches),
    unknown counterparts, midnight, forget and hold: the columnar ledger returns the rows a plain
    per-pair ledger returns, each pair's in (time, arrival) order. A twin that copies the ledger
    (:meth:`HeardPairs.mirror`) on some batches and adds the others itself settles the same."""
    rng = np.random.default_rng(seed)
    day = 86400.0 * 18479
    forget, hold = [(0.0, 0.0), (300.0, 0.0), (0.0, 900.0), (600.0, 1200.0)][seed % 4]
    ledger, twin = HeardPairs(6, forget, hold), HeardPairs(6, forget, hold)
    batches, settles, got = [], [], []
    now = day + 86400.0 - 3000.0  # crosses midnight
    for step in range(12):
        k = int(rng.integers(0, 40))
        times = now + rng.uniform(-400.0 if seed % 2 else 0.0, 300.0, k)
        if seed % 3 == 0:
            times = np.round(times / 50.0) * 50.0  # ties in time
        rssi = (rng.integers(-100, -40, k) + 0.5).astype(np.float64)
        batch = (rng.integers(0, 6, k), rng.integers(-1, 6, k), times, rssi)
        ledger.add(*batch)
        if step % 3 == 1:
            twin.add(*batch)
        else:
            twin.mirror(ledger)
        now += 300.0
        settled = [(a, b, t.tolist(), r.tolist()) for a, b, t, r in ledger.settle(now)]
        assert [(a, b, t.tolist(), r.tolist()) for a, b, t, r in twin.settle(now)] == settled
        batches.append(batch)
        settles.append(now)
        got.append(settled)
    assert got == _reference_ledger(batches, settles, forget, hold)


# -- named device models ---------------------------------------------------------------------------


def test_phones_are_models_from_the_calibration_table_with_its_offsets() -> None:
    crowd = CrowdParams(agents=3000, width=50, height=50)
    scenario = Scenario(name="models", crowd=crowd)
    world = World(scenario, 1.0, 0)
    devices = world.devices
    table = default_calibration()
    assert len(set(devices.model.tolist())) > 2500  # drawn uniformly from the ~12,000 rows
    for agent in range(200):
        row = table.rows[int(devices.model[agent])]
        assert devices.rssi_correction[agent] == row.rssi_correction
        assert devices.tx_power[agent] == round(row.tx)  # its calibrated TX, GAEN's scale
        assert devices.confidence[agent] == row.confidence
        assert devices.name(agent) == f"{row.oem} {row.model}"
    # a model that must add c dB reads c dB low (against the fleet reference), up to a residual; the
    # correction the phone applies cancels its model's part of the offset
    corrected = devices.true_rx_offset + devices.rssi_correction
    assert abs(corrected.mean() - scenario.rssi_correction) < 0.2
    assert corrected.std() == pytest.approx(scenario.channel.device_sigma, abs=0.15)
    assert np.array_equal(world.device_rx, devices.true_rx_offset)
    # it transmits its calibrated TX above the fleet's (the channel's reference), up to a residual
    tx = np.array([table.rows[int(k)].tx for k in devices.model])
    residual = devices.true_tx_offset - (tx - FLEET_TX_POWER_DBM)
    assert abs(residual.mean()) < 0.2 and residual.std() == pytest.approx(
        scenario.channel.device_sigma, abs=0.15
    )


def test_gaen_phones_advertise_their_models_tx_power_and_confidence() -> None:
    scenario = _room("gaen")
    world = World(scenario, 1.0, 0)
    users = np.flatnonzero(world.app).astype(np.int64)
    d = world.devices
    phones = Phones("gaen", users, world.n, scenario.start, scenario.start + 1800, world.streams("keys"),
                    d.tx_power, d.confidence)  # fmt: skip
    for agent in users[:5].tolist():
        metadata = phones.ring(agent).settings.gaen_metadata
        assert (
            metadata.tx_power == d.tx_power[agent] and metadata.calibration_confidence == d.confidence[agent]
        )
    rows = d.table.rows
    assert d.confidence.tolist() == [rows[int(k)].confidence for k in d.model]  # each its row's


# -- the city --------------------------------------------------------------------------------------


def _city_slice(agents: int, duration: float) -> Scenario:
    """The city scenario at its density and mix, on a smaller area, for minutes (so a 5-minute rule)."""
    city = load_scenario(CITY)
    scale = math.sqrt(agents / city.crowd.agents)
    crowd = dataclasses.replace(
        city.crowd, agents=agents, width=city.crowd.width * scale, height=city.crowd.height * scale
    )
    return dataclasses.replace(
        city,
        crowd=crowd,
        duration=duration,
        chunk=300.0,
        forget=300.0,
        contact_minutes=5.0,
    )


def test_city_scenario_is_a_bounded_city_day() -> None:
    city = load_scenario(CITY)
    assert city.crowd.agents == 100_000 and city.duration == 86400
    assert 1e6 <= city.crowd.width * city.crowd.height <= 1e7  # a few km^2
    assert city.forget > 0 and not city.pair_scores and city.duty_cycle in ("gaen", "bluezone")
    assert min(city.crowd.stationary, city.crowd.waypoint, city.crowd.group) > 0


def test_a_city_slice_runs_the_whole_pipeline() -> None:
    scenario = _city_slice(1000, 900.0)
    result = run_simulation(scenario, 0.5, 0)
    stats = result.stats
    assert stats["chunks"] == 3 and stats["matcher_calls"] == 3  # one matcher call per chunk
    for row in result.rows:
        assert row.agents == 1000 and row.sightings > 1000 and row.logged == row.sightings
        assert row.true_contacts > 0 and row.detected <= row.app_contacts <= row.true_contacts
        assert row.notified <= row.notifiable == 2 * row.app_contacts
        assert (
            math.isnan(row.pooled_pair_auc) and result.scores == {}
        )  # pair_scores = false: no per-pair state kept
    # pairs apart for `forget` were judged and dropped during the run, not all held to the end
    assert stats["peak_heard_pairs"] < stats["estimated_pairs"]
    assert max(r.flagged for r in result.rows) > 0


def test_forgetting_changes_nothing_when_pairs_never_part() -> None:
    crowd = CrowdParams(agents=20, width=6, height=4, stationary=1.0, waypoint=0.0, layout="seats")
    base = Scenario(name="still", crowd=crowd, duration=2400, chunk=600, estimators=("cwa",))
    exact = run_simulation(base, 0.8, 2)
    forgetful = run_simulation(dataclasses.replace(base, forget=1200.0), 0.8, 2)
    assert exact.rows == forgetful.rows


def test_still_agents_grid_finds_the_same_close_pairs_as_one_search_over_everyone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import proximity.sim.world as world_module

    crowd = CrowdParams(
        agents=60, width=12, height=9, stationary=0.5, waypoint=0.3, group=0.2, pause=(0, 60),
        arrival_spread=300, dwell=600,
    )  # fmt: skip
    scenario = Scenario(name="mixed", crowd=crowd, duration=900, chunk=300)

    def truth() -> list[tuple[list[int], list[float]]]:
        return [(c.close_keys.tolist(), c.close_seconds.tolist()) for c in World(scenario, 0.5, 4).chunks()]

    together = truth()  # 32 steps per search, everyone at once
    monkeypatch.setattr(world_module, "BATCH_POINTS", 1)  # one step per search: the still grid
    assert truth() == together
    assert sum(len(keys) for keys, _ in together) > 50
