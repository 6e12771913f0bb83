"""One attenuation scale (GAEN's) from the node to the simulator, the default estimator's verdicts on it,
and the batch API."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from proximity import KeyRing, KeyRingSettings
from proximity.ble.recording import RecordedAdvert, from_ad_bytes
from proximity.ble.replay import Replay
from proximity.ble.scanner import Scanner
from proximity.estimation import (
    DEFAULT_ESTIMATOR,
    EstimationSettings,
    estimate_batch,
    estimator_names,
    resolve_model,
    verdict,
)
from proximity.estimation.attenuation_mean import daily_means
from proximity.estimation.evaluation import parse_recordings
from proximity.estimation.presets import PRESETS
from proximity.keyring import DEFAULT_TX_POWER
from proximity.log import EncounterLog
from proximity.matching import DiagnosisKey, KeyMatch, ReportType, match_gaen
from proximity.sightings import Sighting
from proximity.sim import Scenario, World
from proximity.sim.mobility import CrowdParams

T0 = 1_596_844_800.0  # a UTC midnight
SENDER, RECEIVER = "Pixel 4", "Samsung A20"  # table rows: tx -30 dBm; correction +3 dB (2020-12-14)


def _replayed(ring: KeyRing, at: float, rssi: int, seconds: int, every: int = 4) -> list[Sighting]:
    """The ring's GAEN adverts heard at ``rssi`` through the bleak replay backend and the scanner."""
    adverts: list[RecordedAdvert] = []
    for k, second in enumerate(range(0, seconds, every)):
        raw = ring.broadcast_at("gaen", at + second).ad_bytes
        advert = from_ad_bytes(at + second, f"2A:00:00:00:{k // 256:02X}:{k % 256:02X}", rssi, raw)
        assert advert is not None
        adverts.append(advert)
    found: list[Sighting] = []

    async def run() -> None:
        async with Scanner(found.append, replay=Replay(adverts)) as scanner:
            await scanner.run(30)

    asyncio.run(run())
    return found


def _matched(tmp_path: Path, ring: KeyRing, sightings: list[Sighting]) -> KeyMatch:
    with EncounterLog(tmp_path / "log.db") as log:
        log.add(sightings)
        observations = log.observations("gaen")
    keys = [DiagnosisKey(tek, 0, ReportType.CONFIRMED_TEST) for tek in ring.gaen_keys]
    (match,) = match_gaen(keys, observations, workers=1)
    return match


def test_one_packet_has_one_attenuation_from_node_to_simulator(tmp_path: Path) -> None:
    sender, receiver = resolve_model(SENDER), resolve_model(RECEIVER)
    expected = sender.tx - (-70 + receiver.rssi_correction)  # the table's arithmetic
    assert (sender.tx, receiver.rssi_correction, expected) == (-30, 3, 37)

    # replay -> log -> match: the sender's key ring broadcasts its model's TX power in the AEM
    ring = KeyRing.create(
        T0, KeyRingSettings(tx_power=round(sender.tx), calibration_confidence=sender.confidence)
    )
    match = _matched(tmp_path, ring, _replayed(ring, T0 + 3600, -70, 60))
    settings = EstimationSettings(rssi_correction=receiver.rssi_correction)
    for name in estimator_names():
        assert verdict(match, name, settings)["attenuation_median_db"] == expected

    # evaluate: a recording names the two phones; the table gives the same two numbers
    text = "config,session,receiver_model,beacon_model,distance_m,t_s,rssi,tx_power\n"
    text += "".join(f"c,s,{RECEIVER},Google Pixel 4,1.0,{t},-70,8\n" for t in range(5))
    (session,) = parse_recordings(text, "one")
    assert session.attenuation().tolist() == [expected] * 5  # the advert's own TX Power Level (8) unused

    # simulator: its phones are table rows; what a phone advertises and corrects is its row's
    world = World(Scenario(name="scale", crowd=CrowdParams(agents=400, width=20, height=20)), 1.0, 0)
    devices, rows = world.devices, world.devices.table.rows
    for agent in range(50):
        row = rows[int(devices.model[agent])]
        assert devices.tx_power[agent] == round(row.tx)
        assert devices.rssi_correction[agent] == row.rssi_correction
    a, b = 0, 1
    heard_att = devices.tx_power[b] - (-70 + devices.rssi_correction[a])
    row_a, row_b = rows[int(devices.model[a])], rows[int(devices.model[b])]
    assert heard_att == round(row_b.tx) - (-70 + row_a.rssi_correction)


@pytest.mark.parametrize(("rssi", "close"), [(-88, False), (-55, True)])
def test_two_default_key_rings_for_thirty_minutes(tmp_path: Path, rssi: int, close: bool) -> None:
    """Default key rings broadcast the fleet TX (-24 dBm); a receiver with no model applies the fleet
    correction (+3 dB): -88 dBm is 61 dB of attenuation (far), -55 dBm 28 dB (near)."""
    ring = KeyRing.create(T0)
    assert ring.settings.gaen_metadata.tx_power == DEFAULT_TX_POWER == -24
    match = _matched(tmp_path, ring, _replayed(ring, T0 + 3600, rssi, 30 * 60, every=10))
    result = verdict(match, DEFAULT_ESTIMATOR)
    assert result["attenuation_median_db"] == -24 - (rssi + 3)
    assert result["close_contact"] is close
    assert result["minutes_observed"] == pytest.approx(30, abs=0.2)


@dataclass(frozen=True)
class Columns:
    times: NDArray[np.float64]
    rssi: NDArray[np.float64]
    tx_power: NDArray[np.float64]


def _encounters(
    n: int, seed: int = 0, ordered: bool = False, *, one_day: bool = False
) -> tuple[NDArray[np.float64], ...]:
    """n encounters of different lengths, levels, days (some span midnight), TX known or not, a few
    packets without RSSI, in shuffled order (or by encounter and time). ``one_day``: all on one UTC
    day, every packet with an RSSI (as a simulator's chunk)."""
    rng = np.random.default_rng(seed)
    times, rssi, tx, enc = [], [], [], []
    for e in range(n):
        k = int(rng.integers(1, 400))
        start = T0 + rng.uniform(0, 0.6 if one_day else 2) * 86_400
        t = start + np.cumsum(rng.exponential(rng.choice([0.25, 4.0, 60.0]), k))
        r = np.round(rng.normal(rng.uniform(-95, -45), 6, k))
        r[rng.random(k) < (0.0 if one_day else 0.05)] = np.nan
        times.append(t)
        rssi.append(r)
        tx.append(np.full(k, rng.choice([np.nan, -30.0, -18.0])))
        enc.append(np.full(k, 3 * e + 7))  # not 0..n-1
    order = rng.permutation(sum(len(t) for t in times))
    if ordered:
        order = np.sort(order)
    return tuple(np.concatenate(x)[order] for x in (times, rssi, tx, enc))


@pytest.mark.parametrize(
    ("name", "ordered", "one_day"),
    [
        (DEFAULT_ESTIMATOR, False, False),
        (DEFAULT_ESTIMATOR, True, False),
        (DEFAULT_ESTIMATOR, True, True),
        *((preset, ordered, False) for preset in PRESETS for ordered in (False, True)),
        ("nhs", False, False),
    ],
)
def test_batch_is_identical_to_one_by_one(name: str, ordered: bool, one_day: bool) -> None:
    one_by_one = name not in PRESETS and name != DEFAULT_ESTIMATOR
    times, rssi, tx, enc = _encounters(15 if one_by_one else 80, ordered=ordered, one_day=one_day)
    settings = EstimationSettings(rssi_correction=5.0, minutes=10.0)
    batch = estimate_batch(times, rssi, tx, enc, name, settings)
    assert batch.encounter.tolist() == sorted(set(enc.astype(int).tolist()))
    closes = 0
    for i, e in enumerate(batch.encounter):
        mine = enc == e
        one = verdict(Columns(times[mine], rssi[mine], tx[mine]), name, settings)
        assert batch.close_contact[i] == bool(one["close_contact"])
        assert batch.score[i] == pytest.approx(one["score"], rel=1e-12, abs=1e-12)
        assert batch.minutes[i] == pytest.approx(one["minutes_observed"], rel=1e-12, abs=1e-12)
        median = one["attenuation_median_db"]
        assert batch.attenuation_db[i] == pytest.approx(math.nan if median is None else median, nan_ok=True)
        closes += int(batch.close_contact[i])
    assert 0 < closes < len(batch)  # both verdicts occur


@pytest.mark.parametrize("one_day", [False, True])
def test_daily_means_agree_with_a_plain_loop(one_day: bool) -> None:
    times, rssi, tx, enc = _encounters(40, seed=3, one_day=one_day)
    assert (np.unique(np.floor(times / 86_400)).size == 1) is one_day
    means = daily_means(times, rssi, tx, enc, 2.0, -24.0)
    att = np.where(np.isnan(tx), -24.0, tx) - (rssi + 2.0)
    row = 0
    for e in np.unique(enc):
        for day in np.unique(np.floor(times[(enc == e) & np.isfinite(att)] / 86_400)):
            mine = (enc == e) & (np.floor(times / 86_400) == day) & np.isfinite(att)
            t = np.sort(times[mine])
            gaps = np.minimum(np.diff(t), 300.0)
            seconds = gaps.sum() + (gaps[0] if gaps.size else 0.0)
            assert means.encounter[row] == e and means.day[row] == day * 86_400
            assert means.mean_attenuation[row] == pytest.approx(np.maximum(att[mine], 0).mean())
            assert means.minutes[row] == pytest.approx(seconds / 60)
            row += 1
    assert row == means.day.size


def test_batch_refuses_a_mismatched_index() -> None:
    from proximity.errors import EstimationParameterError

    with pytest.raises(EstimationParameterError, match="encounter"):
        estimate_batch(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(2, np.int64))
    assert math.isnan(estimate_batch([0.0], [np.nan], [np.nan], [4]).score[0])
