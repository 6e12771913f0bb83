"""Estimation core: calibration, attenuation, GAEN v2 windows, presets, the probabilistic model, scoring."""

from __future__ import annotations

import csv
import gzip
import itertools
import math
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from proximity.errors import CalibrationError, EstimationParameterError, RecordingFormatError
from proximity.estimation.calibration import (
    FLEET_RSSI_CORRECTION_DB,
    FLEET_TX_POWER_DBM,
    CalibrationLevel,
    CalibrationTable,
    attenuation,
    default_aliases,
    default_calibration,
    parse_aliases,
    resolve_model,
)
from proximity.estimation.constants import ESTIMATOR_NAMES
from proximity.estimation.estimators import (
    DEFAULT_ESTIMATOR,
    EstimationSettings,
    estimate,
    estimator_names,
    get_estimator,
    verdict,
)
from proximity.estimation.evaluation import (
    cross_validate,
    evaluate,
    evaluation_names,
    parse_recordings,
    split_by_config,
)
from proximity.estimation.presets import PRESETS, cwa_trl_factor
from proximity.estimation.probabilistic import (
    ChannelModel,
    _tail_at_least,
    estimate_contact,
    fading_loglik,
    fit_channel_model,
)
from proximity.estimation.scoring import (
    bootstrap_ndcf,
    fit_threshold,
    ndcf,
    ndcf_difference,
    ndcf_interval,
    operating_point,
    roc_auc,
)
from proximity.estimation.windows import ScanInstances, exposure_windows, scan_instances
from proximity.keyring import DEFAULT_TX_POWER

REPO = Path(__file__).resolve().parent.parent
T0 = 1_596_844_800.0  # a UTC midnight


# -- calibration --------------------------------------------------------------------------------------


def test_default_table_holds_the_published_rows() -> None:
    """Google's 2020-08-12 list, each row replaced whole by its 2020-12-14 confidence-3 row where that
    list has one (one date per row), plus iPhones as the reference (correction 0)."""
    table = default_calibration()
    assert len(table.rows) == 11_809 + 87 + 25
    pixel4 = table.lookup("Google", "flame", "Pixel 4")
    assert (pixel4.rssi_correction, pixel4.tx, pixel4.confidence) == (8, -30, 3)
    assert pixel4.level is CalibrationLevel.EXACT
    assert table.lookup(device="sunfish").rssi_correction == 1
    s10 = table.lookup("samsung", model="SM-G973F")  # 2020-08-12: +5 / -24 / 1; 2020-12-14: +2 / -29 / 3
    assert (s10.rssi_correction, s10.tx, s10.confidence) == (2, -29, 3)
    sources = {r.source for r in table.rows}
    assert sources == {"2020-08-12", "2020-12-14", "tousanticovid-v2"}
    # iPhones: GAEN's reference (correction 0); TX = TousAntiCovid's factor + 2 dB (Google's tx is
    # TousAntiCovid's + 2 dB, the median over the Android models both hold)
    iphones = {r.model: r for r in table.rows if r.oem == "apple"}
    assert all(r.rssi_correction == 0 for r in iphones.values())
    assert (iphones["iPhone 11"].tx, iphones["iPhone 8"].tx, iphones["iPhone X"].tx) == (-8, -13, -18)


def test_fleet_value_is_the_median_of_googles_list() -> None:
    with (REPO / "data" / "calibration" / "en-calibration-2020-08-12.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 11_809
    assert statistics.median(float(r["tx"]) for r in rows) == FLEET_TX_POWER_DBM
    assert statistics.median(float(r["rssi_correction"]) for r in rows) == FLEET_RSSI_CORRECTION_DB
    fleet = default_calibration().fleet()
    assert (fleet.tx, fleet.rssi_correction) == (FLEET_TX_POWER_DBM, FLEET_RSSI_CORRECTION_DB)
    assert DEFAULT_TX_POWER == FLEET_TX_POWER_DBM  # what a key ring with no model broadcasts


def test_shipped_table_is_what_the_build_script_writes(tmp_path: Path) -> None:
    out = tmp_path / "calibration.csv"
    subprocess.run([sys.executable, str(REPO / "scripts" / "build_calibration.py"), "--out", str(out)],
                   check=True, capture_output=True)  # fmt: skip
    shipped = REPO / "src" / "proximity" / "estimation" / "data" / "calibration.csv"
    assert out.read_bytes() == shipped.read_bytes()


def test_fallbacks_family_then_oem_then_fleet() -> None:
    table = default_calibration()
    similar = table.lookup("samsung", model="SM-G973Z")  # the SM-G973x family
    assert similar.level is CalibrationLevel.SIMILAR and similar.confidence == 2 and similar.how == "family"
    oem = table.lookup("Google", model="Pixel 9 Pro")
    assert oem.level is CalibrationLevel.OEM and oem.confidence == 1
    google = [r for r in table.rows if r.oem == "google"]
    assert oem.rssi_correction == statistics.median(r.rssi_correction for r in google)
    fleet = table.lookup("Acme", model="X1")
    assert fleet.level is CalibrationLevel.FLEET and fleet.confidence == 0
    assert (fleet.rssi_correction, fleet.tx) == (FLEET_RSSI_CORRECTION_DB, FLEET_TX_POWER_DBM)


def test_recording_names_resolve_through_the_alias_file() -> None:
    assert resolve_model("Samsung A20").tx == -26  # SM-A205F, 2020-12-14 row
    iphone = resolve_model("iPhone 11 Pro Max anon4\u2019s iPhone")
    assert (iphone.rssi_correction, iphone.level) == (0, CalibrationLevel.EXACT)
    sniffer = resolve_model("nRF52 sniffer")
    assert (
        sniffer.sniffer and sniffer.how == "sniffer" and sniffer.rssi_correction == FLEET_RSSI_CORRECTION_DB
    )
    assert resolve_model("Google Pixel 5").level is CalibrationLevel.EXACT  # OEM + model, no alias needed
    assert resolve_model("TestPhone1").how == "fleet"
    # every phone name in the shipped recordings is an alias (only blank and MIT's TestPhones are unknown;
    # blank names in MIT Matrix and range_angle follow those files' rules, tested below)
    names = set()
    for path in (REPO / "data").glob("*.csv.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                names |= {row["receiver_model"], row["beacon_model"]}
    unknown = {n for n in names if resolve_model(n).how == "fleet"}
    assert unknown == {"", "TestPhone1", "TestPhone2", "TestPhone3", "TestPhone4"}


def test_blank_model_names_follow_their_files_documented_rule() -> None:
    """data/README.md: MIT Matrix is "between two iPhones", range_angle's beacon is BlueProx's iOS
    transmitter; mit_static's TestPhones are undocumented. A blank name there is an iPhone of unknown
    model (Apple's median row); in any other file it stays fleet."""
    apple = default_calibration().lookup("apple")
    assert (apple.tx, apple.rssi_correction, apple.how) == (-8.0, 0.0, "oem")
    for dataset in ("mit-matrix-rssi", "range_angle"):
        assert resolve_model("", dataset=dataset) == apple
        assert resolve_model("  ", dataset=dataset) == apple
        assert default_aliases()["\x00" + dataset].why.startswith("data/README.md")
    for dataset in ("mit_static", "kri_anechoic", "herald_edison", ""):
        assert resolve_model("", dataset=dataset).how == "fleet"
    assert resolve_model("TestPhone1", dataset="mit-matrix-rssi").how == "fleet"  # only blank names
    assert resolve_model("iPhone 8", dataset="mit-matrix-rssi").tx == -13  # named phones unchanged
    # the recordings reader passes its file name as the dataset
    row = "C,s,,,{r},{b},1.0,0,-60,-999\n"
    for source, receiver, beacon in (("mit-matrix-rssi", "oem", "oem"), ("mit_static", "fleet", "fleet"),
                                     ("range_angle", "exact", "oem")):  # fmt: skip
        names = {"r": "iPhone 8" if receiver == "exact" else "", "b": ""}
        (session,) = parse_recordings(HEADER + row.format(**names), source)
        assert (session.receiver.how, session.beacon.how) == (receiver, beacon)
    assert parse_recordings(HEADER + row.format(r="", b=""), "mit-matrix-rssi")[0].beacon.tx == -8
    assert parse_recordings(HEADER + row.format(r="", b=""), "mit_static")[0].beacon.tx == -24


@pytest.mark.parametrize(
    "text",
    [
        "name,oem,model,kind,dataset,why\n,apple,,phone,f,\n",  # a rule without its reason
        "name,oem,model,kind,dataset,why\n,apple,,phone,,because\n",  # blank name, no file
        "name,oem,model,kind,dataset,why\nX,apple,,phone,f,because\n",  # a named row scoped to a file
        "name,oem,model,kind\nX,apple,,radio\n",
    ],
)
def test_bad_alias_rows_are_refused(text: str) -> None:
    with pytest.raises(CalibrationError, match="aliases line 2"):
        parse_aliases(text)


def test_legacy_calibration_columns_are_read() -> None:
    table = CalibrationTable.parse(
        "oem,device,model,rssi_correction,tx_power_correction,confidence\nA,b,c,4,-30,3\n"
    )
    assert (table.rows[0].tx, table.rows[0].confidence) == (-30, 3)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("oem,device,model,rssi_correction,calibration_confidence\n", "row 1, column tx: missing"),
        ("oem,device,model,rssi_correction,tx,calibration_confidence\nA,b,c,x,1,3\n", "row 2, column rssi_c"),
        ("oem,device,model,rssi_correction,tx,calibration_confidence\nA,b,c,1,1,7\n", "confidence"),
        ("oem,device,model,rssi_correction,tx,calibration_confidence\n", "at least one row"),
    ],
)
def test_malformed_calibration_is_refused(text: str, match: str) -> None:
    with pytest.raises(CalibrationError, match=match):
        CalibrationTable.parse(text)


def test_attenuation_formula() -> None:
    rssi = np.array([-60.0, -90.0, np.nan, -10.0])
    tx = np.array([-20.0, np.nan, -20.0, -20.0])
    out = attenuation(rssi, tx, rssi_correction=5.0, default_tx_power=8.0)
    assert out[0] == -20 - (-60 + 5)  # 35
    assert out[1] == 8 - (-90 + 5)  # default TX where unknown
    assert np.isnan(out[2])
    assert out[3] == 0.0  # floored at 0 dB like GAEN


# -- scan instances and windows ---------------------------------------------------------------------


def test_scan_instances_group_25_seconds_and_cap_gaps() -> None:
    times = T0 + np.array([0.0, 3.0, 24.0, 30.0, 31.0, 1000.0])
    att = np.array([50.0, 51.0, 52.0, 60.0, 61.0, 70.0])
    scans = scan_instances(times, att)
    assert scans.start.tolist() == [T0, T0 + 30, T0 + 1000]
    assert scans.typical_attenuation.tolist() == [51.0, 60.0, 70.0]  # round(60.5) = 60 (half to even)
    assert scans.min_attenuation.tolist() == [50.0, 60.0, 70.0]
    assert scans.packets.tolist() == [3, 2, 1]
    assert scans.seconds_since_last_scan.tolist() == [120.0, 30.0, 300.0]
    own = scan_instances(times, att, first_scan_seconds=None)
    assert own.seconds_since_last_scan[0] == 165.0  # median of the other gaps


def test_windows_split_at_30_minutes_and_at_midnight() -> None:
    starts = T0 - 600 + np.arange(0, 3600, 60.0)  # one scan a minute from 23:50 for an hour
    scans = scan_instances(starts, np.full(starts.size, 55.0))
    windows = exposure_windows(scans)
    assert [w.day for w in windows] == [T0 - 86_400, T0, T0]
    assert [len(w.scans) for w in windows] == [10, 30, 20]


# -- presets ------------------------------------------------------------------------------------------


def _scans(
    typical: Sequence[float], seconds: float = 60.0, rssi: Sequence[float] | None = None
) -> ScanInstances:
    n = len(typical)
    a = np.asarray(typical, np.float64)
    r = np.full(n, np.nan) if rssi is None else np.asarray(rssi, np.float64)
    start = T0 + 60.0 * np.arange(n, dtype=np.float64)
    return ScanInstances(start, a, a, a, r, np.ones(n, np.int64), np.full(n, seconds))


def test_bucket_boundaries() -> None:
    enx, cwa, bz = PRESETS["enx"], PRESETS["cwa"], PRESETS["bluezone-near"]
    assert enx.bucket_weights(_scans([30, 31, 50, 60, 61])).tolist() == [1.5, 1.0, 1.0, 0.5, 0.0]
    assert cwa.bucket_weights(_scans([62, 63, 73, 78, 79])).tolist() == [0.8, 1.0, 0.1, 0.1, 0.0]
    near = bz.bucket_weights(_scans([0, 0, 0], rssi=[-70, -86, -87]))
    assert near.tolist() == [1.0, 1.0, 0.0]


def test_weighted_minutes_and_cwa_window_rule() -> None:
    swiss = PRESETS["swisscovid"]
    scans = _scans([50] * 10 + [60] * 10 + [70] * 5)  # 25 one-minute scans
    window = exposure_windows(scans)[0]
    assert swiss.window_minutes(window) == pytest.approx(10 * 1.0 + 10 * 0.5)
    assert swiss.rate(scans) == pytest.approx(15 / 25)
    cwa = PRESETS["cwa"]
    short = exposure_windows(_scans([60] * 4))[0]  # 4 minutes below 79 dB: dropped
    assert cwa.window_minutes(short) == 0.0
    long = exposure_windows(_scans([60] * 6))[0]
    assert cwa.window_minutes(long, cwa_trl_factor(1)) == pytest.approx(6 * 0.8 * 7 * 0.2)
    assert cwa_trl_factor(4) == 0.0  # recursive + standard = TRL 1: dropped


# -- probabilistic model ----------------------------------------------------------------------------


def _encounter(att: float, minutes: float, every: float = 60.0, packets: int = 20) -> ScanInstances:
    n = int(minutes * 60 / every)
    a = np.full(n, att)
    return ScanInstances(
        T0 + every * np.arange(n, dtype=np.float64),
        np.round(a),
        a,
        a,
        np.full(n, np.nan),
        np.full(n, packets),
        np.full(n, every),
    )


def test_probability_is_monotone_in_attenuation_and_duration() -> None:
    p_att = [estimate_contact(_encounter(a, 30)).probability for a in (55, 65, 75, 85)]
    assert p_att == sorted(p_att, reverse=True)
    assert 0 <= p_att[-1] < p_att[0] <= 1
    p_dur = [estimate_contact(_encounter(60, m)).probability for m in (10, 16, 30, 60)]
    assert p_dur[0] == 0.0  # 10 minutes observed cannot make 15 minutes within 2 m
    # Past 15 minutes, more time at the same ambiguous signal does not make "close" more likely: the
    # per-encounter offset, not the noise, is what is unknown (an independent-noise model would go to 1).
    assert 0 < p_dur[1] < 0.9
    assert p_dur[3] == pytest.approx(p_dur[1], abs=0.05)


def test_shared_offset_keeps_long_encounters_uncertain() -> None:
    """Independent-noise models grow certain with more packets; a per-encounter offset does not."""
    model = ChannelModel()
    at_two_metres = model.attenuation_at_1m + 10 * model.path_loss_exponent * math.log10(2.0)
    one = estimate_contact(_encounter(at_two_metres, 1), model)
    many = estimate_contact(_encounter(at_two_metres, 25, every=30), model)
    assert abs(one.p_within - many.p_within) < 0.15
    assert 0.2 < many.p_within < 0.8
    assert many.distance_low_m < many.distance_m < many.distance_high_m
    assert many.minutes_within_sd > 1.0


def test_estimate_reports_distance_and_duration() -> None:
    est = estimate_contact(_encounter(19, 40))  # 17 dB below the default model's 1 m (36 dB)
    assert est.probability > 0.8 and est.distance_m < 1.5
    assert est.minutes_observed == pytest.approx(40)
    assert 0 < est.minutes_within <= 40
    assert est.windows == 2 and est.scans == 40
    assert estimate_contact(_encounter(19, 0)).probability == 0.0


@settings(max_examples=60, deadline=None)
@given(
    p=st.lists(st.floats(0, 1), min_size=1, max_size=7),
    seconds=st.lists(st.sampled_from([10.0, 30.0, 60.0, 120.0, 300.0]), min_size=7, max_size=7),
    need=st.sampled_from([60.0, 300.0, 900.0]),
)
def test_duration_tail_matches_brute_force(p: list[float], seconds: list[float], need: float) -> None:
    probs = np.asarray(p)[:, None]
    secs = np.asarray(seconds[: len(p)])
    expected = 0.0
    for outcome in itertools.product([0, 1], repeat=len(p)):
        chance = math.prod(pi if o else 1 - pi for pi, o in zip(p, outcome, strict=True))
        if sum(s for s, o in zip(secs, outcome, strict=True) if o) >= need:
            expected += chance
    assert _tail_at_least(probs, secs, need)[0] == pytest.approx(expected, abs=1e-9)


def test_fit_recovers_the_channel() -> None:
    rng = np.random.default_rng(3)
    truth = ChannelModel(attenuation_at_1m=70, path_loss_exponent=1.5, offset_sigma=6, fading_sigma=5)
    sessions = []
    for _ in range(300):
        d = float(rng.choice([0.9, 1.2, 1.8, 2.4, 3.0, 3.7, 4.6]))
        offset = rng.normal(0, truth.offset_sigma)
        t = np.sort(rng.uniform(0, 120, 600))
        a = truth.attenuation_at_1m + 15 * math.log10(d) + offset + rng.normal(0, truth.fading_sigma, t.size)
        sessions.append((t, a, d))
    fitted = fit_channel_model(sessions)
    assert fitted.path_loss_exponent == pytest.approx(1.5, abs=0.25)
    assert fitted.attenuation_at_1m == pytest.approx(70, abs=1.5)
    assert fitted.offset_sigma == pytest.approx(6, abs=1.0)
    assert fitted.fading_sigma == pytest.approx(5, abs=0.3)
    with pytest.raises(ValueError, match="at least 3"):
        fit_channel_model(sessions[:2])


# -- fading depth: evidence the per-encounter offset cannot shift -------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(st.floats(0, 200, allow_nan=False), min_size=1, max_size=60),
    seed=st.integers(0, 2**32 - 1),
    shift=st.floats(-30, 30),
)
def test_scan_fading_sums_consecutive_jumps_and_ignore_a_shared_offset(
    times: list[float], seed: int, shift: float
) -> None:
    t = np.asarray(times)
    a = 80 + np.random.default_rng(seed).normal(0, 6, t.size)
    scans = scan_instances(t, a, first_scan_seconds=None)
    abs_sum, pairs = scans.fading()
    assert list(pairs) == list(scans.packets - 1)
    order = np.argsort(t, kind="stable")
    ts, a_sorted = t[order], a[order]
    scan_of = np.searchsorted(scans.start, ts, side="right") - 1
    expected = np.zeros(len(scans))
    for j in range(1, t.size):
        if scan_of[j] == scan_of[j - 1]:
            expected[scan_of[j]] += abs(a_sorted[j] - a_sorted[j - 1])
    assert abs_sum == pytest.approx(expected)
    moved = scan_instances(t, a + shift, first_scan_seconds=None)
    assert moved.fading()[0] == pytest.approx(abs_sum, abs=1e-9)
    assert moved.mean_attenuation == pytest.approx(scans.mean_attenuation + shift)
    half = scans.select(np.arange(len(scans)) % 2 == 0)
    assert list(half.fading()[1]) == list(pairs[::2])


@settings(max_examples=60, deadline=None)
@given(jumps=st.lists(st.floats(0, 40), min_size=1, max_size=50), scale=st.floats(0.2, 20))
def test_fading_loglik_is_the_laplace_likelihood_and_peaks_at_the_mean_jump(
    jumps: list[float], scale: float
) -> None:
    x = np.asarray(jumps)
    laplace = float(np.sum(-np.log(2 * scale) - x / scale))
    assert float(fading_loglik(x.sum(), x.size, scale)) == pytest.approx(laplace, rel=1e-9, abs=1e-9)
    mle = float(x.mean())
    assume(mle > 1e-3)  # all-zero jumps: the likelihood grows without bound as the scale shrinks
    grid = mle * np.exp(np.linspace(-1, 1, 201))
    assert grid[np.argmax(fading_loglik(x.sum(), x.size, grid))] == pytest.approx(mle, rel=0.02)


def _fading_encounter(
    rng: np.random.Generator, model: ChannelModel, d: float, scans: int = 5, packets: int = 60
) -> ScanInstances:
    """One static encounter drawn from the channel model (offset, scan noise, Laplace jumps)."""
    offset = rng.normal(0, model.offset_sigma)
    scale = model.fade_at_1m * math.exp(model.fade_slope * math.log10(d) + rng.normal(0, model.fade_sigma))
    var = model.fading_sigma**2 / packets + model.floor_sigma**2
    mean = model.attenuation_at_1m + 10 * model.path_loss_exponent * math.log10(d) + offset
    a = mean + rng.normal(0, math.sqrt(var), scans)
    pairs = np.full(scans, packets - 1, np.int64)
    jumps = rng.exponential(scale, (scans, packets - 1)).sum(axis=1)  # |Laplace| = exponential
    return ScanInstances(
        T0 + 20.0 * np.arange(scans, dtype=np.float64), np.round(a), a, a, np.full(scans, np.nan),
        np.full(scans, packets, np.int64), np.full(scans, 20.0), jumps, pairs,
    )  # fmt: skip


FADING = ChannelModel(
    attenuation_at_1m=70, path_loss_exponent=1.2, offset_sigma=9, fading_sigma=5, floor_sigma=3,
    min_distance=0.7, max_distance=6, fade_at_1m=2.2, fade_slope=0.6, fade_sigma=0.1,
)  # fmt: skip


def test_fading_depth_moves_the_distance_and_is_inert_without_pairs_or_slope() -> None:
    rng = np.random.default_rng(5)
    base = _fading_encounter(rng, FADING, 2.0)
    shallow = replace_fading(base, 1.5)
    deep = replace_fading(base, 4.0)
    p_shallow = estimate_contact(shallow, FADING).p_within
    p_deep = estimate_contact(deep, FADING).p_within
    assert p_shallow > p_deep + 0.3  # same mean attenuation: the fading depth alone decides
    assert estimate_contact(shallow, FADING).distance_m < estimate_contact(deep, FADING).distance_m
    # No pairs (one packet per scan, e.g. de-duplicated logs) or no fitted slope: the old model exactly.
    bare = ScanInstances(base.start, base.typical_attenuation, base.min_attenuation, base.mean_attenuation,
                         base.mean_rssi, base.packets, base.seconds_since_last_scan)  # fmt: skip
    without = estimate_contact(bare, FADING)
    assert estimate_contact(replace_fading(base, 3.0, pairs=0), FADING) == without
    assert estimate_contact(deep, replace(FADING, fade_slope=0.0)) == without
    with pytest.raises(ValueError, match="fade_sigma"):
        replace(FADING, fade_sigma=0.0)


def replace_fading(scans: ScanInstances, mean_jump: float, pairs: int = 59) -> ScanInstances:
    n = len(scans)
    return ScanInstances(
        scans.start, scans.typical_attenuation, scans.min_attenuation, scans.mean_attenuation,
        scans.mean_rssi, scans.packets, scans.seconds_since_last_scan,
        np.full(n, mean_jump * pairs), np.full(n, pairs, np.int64),
    )  # fmt: skip


def test_posterior_is_calibrated_on_encounters_drawn_from_the_model() -> None:
    """Under the model, E[P(d <= D | data)] = prior P(d <= D), and P separates near from far."""
    rng = np.random.default_rng(11)
    near, p = [], []
    for _ in range(400):
        d = math.exp(rng.uniform(math.log(FADING.min_distance), math.log(FADING.max_distance)))
        est = estimate_contact(_fading_encounter(rng, FADING, d), FADING, distance=1.8)
        near.append(d <= 1.8)
        p.append(est.p_within)
    probs, labels = np.asarray(p), np.asarray(near)
    assert probs.mean() == pytest.approx(FADING.prior_below(1.8), abs=0.04)
    assert probs[labels].mean() > probs[~labels].mean() + 0.15
    for lo, hi in ((0.0, 0.3), (0.7, 1.0)):  # what it says is about what happens
        chosen = (probs >= lo) & (probs < hi)
        assert chosen.sum() > 20
        assert labels[chosen].mean() == pytest.approx(probs[chosen].mean(), abs=0.12)


def test_fit_recovers_the_fading_depth_line() -> None:
    rng = np.random.default_rng(4)
    sessions = []
    for _ in range(400):
        d = float(rng.choice([0.9, 1.2, 1.8, 2.4, 3.0, 3.7, 4.6]))
        scale = 2.0 * math.exp(0.4 * math.log10(d) + rng.normal(0, 0.12))
        t = np.sort(rng.uniform(0, 120, 80))  # few pairs: the scale's own noise must be taken out
        steps = rng.laplace(0, scale, t.size)
        steps[0] = 70 + 12 * math.log10(d) + rng.normal(0, 6)
        sessions.append((t, np.cumsum(steps), d))
    fitted = fit_channel_model(sessions)
    assert fitted.fade_slope == pytest.approx(0.4, abs=0.06)
    assert fitted.fade_at_1m == pytest.approx(2.0, rel=0.05)
    assert fitted.fade_sigma == pytest.approx(0.12, abs=0.03)
    flat = fit_channel_model([(t, a, 2.0) for t, a, _ in sessions])  # one distance: nothing to learn
    assert flat.fade_slope == 0.0


# -- registry and verdicts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeMatch:
    times: NDArray[np.float64]
    rssi: NDArray[np.float64]
    tx_power: NDArray[np.float64]


def _match(rssi: float, minutes: float, start: float = T0 + 3600, tx: float = math.nan) -> FakeMatch:
    times = start + np.arange(0, minutes * 60, 4.0)
    return FakeMatch(times, np.full(times.size, rssi), np.full(times.size, tx))


def test_registry() -> None:
    assert estimator_names()[0] == DEFAULT_ESTIMATOR
    assert set(PRESETS) <= set(estimator_names())
    # the command line's choices (read without loading the estimators) are the registry's, in order
    assert tuple(estimator_names()) == ESTIMATOR_NAMES
    with pytest.raises(ValueError, match="unknown estimator 'nope'; choose from mean-attenuation"):
        get_estimator("nope")


@pytest.mark.parametrize("name", estimator_names())
def test_every_estimator_tells_near_from_far(name: str) -> None:
    near = verdict(_match(-50, 40), name)  # 23 dB with the fleet TX (-24 dBm) and correction (+3 dB)
    far = verdict(_match(-120, 40), name)  # 93 dB: the NHS anchor's model puts 1 m at 69 dB
    assert near["close_contact"] is True
    assert far["close_contact"] is False
    assert near["score"] > far["score"]
    for key in ("attenuation_median_db", "weighted_minutes", "score", "probability", "close_contact"):
        assert key in near


def test_verdict_is_per_day_and_uses_aem_tx_power() -> None:
    two_days = FakeMatch(
        np.concatenate([_match(-50, 20).times, _match(-50, 20, start=T0 + 86_400 + 60).times]),
        np.full(600, -50.0),
        np.full(600, -20.0),
    )
    for name in (DEFAULT_ESTIMATOR, "probabilistic"):
        result = verdict(two_days, name)
        assert [d["day"] for d in result["days"]] == [int(T0), int(T0 + 86_400)]
        # -20 - (-50 + 3): the AEM's TX power and the fleet RSSI correction (the settings' default)
        assert result["attenuation_median_db"] == 27.0
    assert 0 <= result["probability"] <= 1
    assert result["distance_m"] is not None
    assert verdict(FakeMatch(np.zeros(0), np.zeros(0), np.zeros(0)))["days"] == []
    assert estimate(_match(-60, 5), "enx", EstimationSettings(rssi_correction=3))[0].scans > 0


# -- scoring ------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=2, max_size=30))
def test_auc_matches_pairwise_definition(pairs: list[tuple[int, bool]]) -> None:
    scores = np.array([float(s) for s, _ in pairs])
    labels = np.array([y for _, y in pairs])
    pos, neg = scores[labels], scores[~labels]
    if pos.size == 0 or neg.size == 0:
        assert math.isnan(roc_auc(scores, labels))
        return
    expected = np.mean([(p > q) + 0.5 * (p == q) for p in pos for q in neg])
    assert roc_auc(scores, labels) == pytest.approx(expected)


def test_ndcf_and_operating_point() -> None:
    labels = np.array([True, True, False, False])
    assert ndcf(labels, labels) == 0.0
    assert ndcf(np.ones(4, bool), labels) == 1.0
    assert ndcf(np.zeros(4, bool), labels) == 1.0
    point = operating_point(np.array([True, False, True, False]), labels)
    assert (point.tpr, point.fpr, point.ndcf) == (0.5, 0.5, 1.0)
    assert ndcf(np.array([True, False, False, False]), labels, w_miss=1, w_fa=10) == pytest.approx(0.5)
    threshold = fit_threshold([0.9, 0.8, 0.2, 0.1], labels)
    assert 0.2 < threshold < 0.8


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.booleans(), st.booleans(), st.integers(0, 3)), min_size=2, max_size=40
    )
)
def test_bootstrap_draws_are_ndcfs_of_redrawn_data(rows: list[tuple[bool, bool, bool, int]]) -> None:
    labels = np.array([r[0] for r in rows])
    a, b = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    groups = np.array([r[3] for r in rows])
    assume(labels.any() and (~labels).any())
    for g in (None, groups):
        draws = bootstrap_ndcf([a, b], labels, g, rounds=200, seed=1)
        assert draws.shape[1] == 2 and np.all((draws >= 0) & (draws <= 2))
        # Each draw is a redraw of whole units: with one unit holding everything, every draw is the data.
        interval = ndcf_interval(a, labels, g, rounds=200, seed=1)
        assert interval.value == ndcf(a, labels)
        assert interval.low <= interval.high or math.isnan(interval.low)
        same = ndcf_difference(a, a, labels, g, rounds=200, seed=1)
        assert (same.value, same.low, same.high, same.share_below_zero) == (0.0, 0.0, 0.0, 0.0)
    whole = bootstrap_ndcf([a], labels, np.zeros(labels.size), rounds=50)
    assert np.allclose(whole, ndcf(a, labels))


def test_paired_difference_separates_a_real_gain_from_noise() -> None:
    rng = np.random.default_rng(4)
    labels = np.repeat([True, False], 200)
    perfect = labels.copy()
    coin = rng.random(400) < 0.5
    clear = ndcf_difference(perfect, coin, labels)
    assert clear.value < -0.8 and clear.high < 0 and clear.share_below_zero == 1.0
    # Detectors that differ on 2 of 400 sessions: a tiny difference, and never the other way round.
    other = perfect.copy()
    other[[0, 399]] = ~other[[0, 399]]
    tiny = ndcf_difference(perfect, other, labels)
    assert -0.05 < tiny.low <= tiny.value < 0 and tiny.high == 0.0
    noisy = ndcf_difference(coin, rng.random(400) < 0.5, labels)
    assert noisy.low < 0 < noisy.high
    # Redrawing 4 groups of 100 (correlated errors) is far less sure than redrawing 400 sessions.
    groups = np.repeat(np.arange(4), 100)
    grouped_labels = np.tile(np.repeat([True, False], 50), 4)
    skewed = grouped_labels.copy()
    skewed[groups == 0] = True  # one carriage says "close" to everything
    by_session = ndcf_interval(skewed, grouped_labels)
    by_group = ndcf_interval(skewed, grouped_labels, groups)
    assert by_group.high - by_group.low > 2 * (by_session.high - by_session.low)


def test_bootstrap_refuses_bad_input() -> None:
    labels = np.array([True, False])
    with pytest.raises(ValueError, match="one decision per label"):
        bootstrap_ndcf([np.array([True])], labels)
    with pytest.raises(ValueError, match="one entry per label"):
        bootstrap_ndcf([labels], labels, groups=[1, 2, 3])
    with pytest.raises(ValueError, match="rounds"):
        bootstrap_ndcf([labels], labels, rounds=0)
    with pytest.raises(ValueError, match="level"):
        ndcf_interval(labels, labels, level=1.5)
    nothing = ndcf_interval(np.array([True, True]), np.array([True, True]))  # no negative ever drawn
    assert nothing.value == 0.0 and math.isnan(nothing.low)


# -- evaluation ---------------------------------------------------------------------------------------

HEADER = (
    "config,session,receiver_carriage,beacon_carriage,receiver_model,beacon_model,"
    "distance_m,t_s,rssi,tx_power\n"
)


def _recordings(seed: int, configs: int = 4) -> str:
    rng = np.random.default_rng(seed)
    lines = [HEADER]
    for c in range(configs):
        offset = rng.normal(0, 5)
        for d in (0.914, 1.219, 1.829, 2.438, 3.048, 4.572):
            for t in np.arange(0, 60, 0.5):
                rssi = round(-60 - 12 * math.log10(d) + offset + rng.normal(0, 4))
                if rng.random() < 0.02:
                    rssi = 127
                lines.append(f"C{c},s{d},hand,hand,iPhone,iPhone,{d},{t},{rssi},-999\n")
    return "".join(lines)


def test_parse_recordings_drops_unavailable_rssi() -> None:
    sessions = parse_recordings(_recordings(1))
    assert len(sessions) == 24
    assert all(np.all(s.rssi < 100) for s in sessions)
    assert all(np.isnan(s.tx_power).all() for s in sessions)  # -999 = not reported
    with pytest.raises(RecordingFormatError, match="missing from the header"):
        parse_recordings("config,session\nA,b\n")
    with pytest.raises(RecordingFormatError, match="row 2, column distance_m: not a number"):
        parse_recordings(HEADER + "A,b,,,,,x,0,-60,-999\n")


def test_evaluate_fields_and_decisions_never_see_scored_labels() -> None:
    fit, scored = split_by_config(parse_recordings(_recordings(2, configs=6)))
    assert {s.config for s in fit} == {"C0", "C2", "C4"}
    results = evaluate(scored, fit)
    assert [r["name"] for r in results] == evaluation_names()
    for r in results:
        for key in ("auc", "ndcf_1.2", "ndcf_1.8", "ndcf_3.0", "tpr_1.8", "fpr_1.8"):
            assert isinstance(r[key], float)
    # Relabel the scored sessions: thresholds and fitted models must not move.
    shuffled = [type(s)(s.config, s.session, 4.0 - s.distance_m, s.times, s.rssi, s.tx_power) for s in scored]
    again = evaluate(shuffled, fit)
    for a, b in zip(results, again, strict=True):
        assert a["decision_1.8"] == b["decision_1.8"]
    best = min(results, key=lambda r: r["ndcf_1.8"])
    assert best["ndcf_1.8"] < 0.9  # on this clean synthetic channel every estimator beats chance
    for r in results:
        assert r["bootstrap_unit"] == "configuration"
        for d in (1.2, 1.8, 3.0):
            low, high = r[f"ndcf_{d}_ci"]
            assert 0 <= low <= high <= 2
    versus = results[0]["versus"]
    assert results[0]["name"] == DEFAULT_ESTIMATOR and all("versus" not in r for r in results[1:])
    assert {(v["name"], v["distance"]) for v in versus} == {
        (r["name"], d) for r in results[1:] for d in (1.2, 1.8, 3.0)
    }
    for v in versus:
        other = next(r for r in results if r["name"] == v["name"])
        key = f"ndcf_{v['distance']}"
        assert v["difference"] == pytest.approx(results[0][key] - other[key])
        assert v["low"] <= v["high"] and 0 <= v["share_lower"] <= 1


def test_cross_validation_pools_every_held_out_decision() -> None:
    sessions = parse_recordings(_recordings(3, configs=4))
    names = ["probabilistic", "enx"]
    pooled = cross_validate(sessions, names)
    assert [r["name"] for r in pooled] == names
    configs = sorted({s.config for s in sessions})
    for row in pooled:
        assert row["sessions"] == len(sessions) and row["folds"] == len(configs)
        hits = false_alarms = positives = negatives = 0.0
        for config in configs:
            held_out = [s for s in sessions if s.config == config]
            (fold,) = evaluate(held_out, [s for s in sessions if s.config != config], [row["name"]])
            pos = fold["positives_1.8"]
            hits += fold["tpr_1.8"] * pos
            false_alarms += fold["fpr_1.8"] * (len(held_out) - pos)
            positives += pos
            negatives += len(held_out) - pos
        assert row["tpr_1.8"] == pytest.approx(hits / positives)
        assert row["ndcf_1.8"] == pytest.approx(1 - hits / positives + false_alarms / negatives)
    with pytest.raises(ValueError, match="at least 2 configurations"):
        cross_validate([s for s in sessions if s.config == "C0"])


def test_estimation_is_pure_core() -> None:
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, proximity.estimation, proximity.estimation.evaluation\n"
        "proximity.estimation.default_calibration()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlite3', '_sqlite3', 'bleak', 'asyncio', 'dbus_fast'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


def test_nhs_smoother_recovers_a_steady_distance() -> None:
    from proximity.estimation.nhs import nhs_distances, nhs_weighted_minutes

    times = T0 + np.arange(0, 900, 0.25)
    for metres in (0.5, 1.0, 3.0):
        att = np.full(times.size, math.exp(0.127 * math.log(metres) + 4.231))
        seconds, distance = nhs_distances(times, att)
        assert seconds.size == 900
        assert np.median(distance) == pytest.approx(metres, rel=0.2)
    weighted, observed = nhs_weighted_minutes(times, np.full(times.size, 60.0))  # ~0.3 m: weight 1
    assert observed == 15.0 and weighted == pytest.approx(15.0, rel=0.05)
    assert nhs_distances(times[:0], times[:0])[0].size == 0


def test_verdict_reads_a_real_key_match() -> None:
    from proximity import KeyRing, Observations, Sighting
    from proximity.matching import DiagnosisKey, ReportType, match_gaen

    at = T0 + 9 * 3600
    rng = np.random.default_rng(9)
    ring = KeyRing.create(T0, random_bytes=rng.bytes)
    sightings = []
    for second in range(0, 40 * 60, 30):
        broadcast = ring.broadcast_at("gaen", at + second)
        sightings.append(Sighting("gaen", broadcast.id.value, at + second, -60, broadcast.payload[16:]))
    keys = [DiagnosisKey(tek, 0, ReportType.CONFIRMED_TEST) for tek in ring.gaen_keys]
    (match,) = match_gaen(keys, Observations.from_sightings("gaen", sightings), workers=1)
    assert np.isfinite(match.tx_power).all()  # the AEM's TX power reached the estimator
    for name in estimator_names():
        result = verdict(match, name)
        assert result["scans"] == 80 and len(result["days"]) == 1
        assert result["attenuation_median_db"] == float(match.tx_power[0]) + 60 - FLEET_RSSI_CORRECTION_DB


# -- review fixes: duration rounding, zero-duration rule, parameter validation, odd input ------------


def test_many_short_windows_add_up_to_the_rule() -> None:
    """Rounding each window to 10-second units on its own let 300 windows of 4 s (20 min) count as 0 s,
    and 15 windows of 56 s (14 min) as 15 min; the units follow the rounded cumulative duration."""
    ones = np.ones((300, 1))
    assert _tail_at_least(ones, np.full(300, 4.0), 900.0)[0] == 1.0  # 1,200 s within: the rule holds
    assert _tail_at_least(ones[:14], np.full(14, 64.4), 900.0)[0] == 1.0  # 901.6 s
    near_15_of_17 = np.array([1.0] * 15 + [0.0] * 2)[:, None]
    assert _tail_at_least(near_15_of_17, np.full(17, 56.0), 900.0)[0] == 0.0  # 840 s < 900 s


def _runs(mask: Sequence[bool]) -> int:
    return sum(1 for i, m in enumerate(mask) if m and (i == 0 or not mask[i - 1]))


@settings(max_examples=200, deadline=None)
@given(
    picks=st.lists(st.tuples(st.floats(0.0, 300.0), st.booleans()), min_size=1, max_size=40),
    need=st.sampled_from([60.0, 305.0, 900.0, 1234.5]),
)
def test_duration_tail_errs_by_at_most_a_unit_per_run_of_windows(
    picks: list[tuple[float, bool]], need: float
) -> None:
    """With each window surely near or surely far, the DP's verdict is exact unless the time within
    is within one unit (<= 10 s) per run of consecutive near windows of the rule; with every window
    near it is always exact."""
    seconds = np.array([s for s, _ in picks])
    near = [n for _, n in picks]
    within = float(seconds[near].sum())
    unit = need / math.ceil(need / 10.0)
    got = _tail_at_least(np.array(near, np.float64)[:, None], seconds, need)[0]
    slack = unit * _runs(near) + 1e-6
    if within >= need + slack:
        assert got == 1.0
    elif within < need - slack:
        assert got == 0.0
    assert _tail_at_least(np.ones((len(picks), 1)), seconds, need)[0] == float(seconds.sum() >= need)


def test_a_zero_minute_rule_is_met_by_any_contact() -> None:
    far = _encounter(90, 3)
    assert estimate_contact(far, minutes=0.0).probability == 1.0  # P(T >= 0) = 1
    assert _tail_at_least(np.zeros((2, 3)), np.array([0.0, 0.0]), 0.0).tolist() == [1.0, 1.0, 1.0]
    assert estimate_contact(_encounter(90, 0), minutes=0.0).probability == 0.0  # no contact at all
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(EstimationParameterError, match="minutes"):
            estimate_contact(far, minutes=bad)
    for bad in (0.0, -2.0, math.nan):
        with pytest.raises(EstimationParameterError, match="distance"):
            estimate_contact(far, distance=bad)


@pytest.mark.parametrize(
    "field",
    ["attenuation_at_1m", "path_loss_exponent", "offset_sigma", "fading_sigma", "floor_sigma",
     "min_distance", "max_distance", "fade_at_1m", "fade_slope", "fade_sigma"],
)  # fmt: skip
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_channel_model_refuses_non_finite_parameters(field: str, bad: float) -> None:
    with pytest.raises(EstimationParameterError, match=field) as caught:
        ChannelModel(**{field: bad})
    assert caught.value.parameter == field and isinstance(caught.value, ValueError)


def test_channel_model_refuses_out_of_range_and_non_numbers() -> None:
    with pytest.raises(EstimationParameterError, match="max_distance"):
        ChannelModel(max_distance=0.2)  # below min_distance 0.3
    with pytest.raises(EstimationParameterError, match="offset_sigma"):
        ChannelModel(offset_sigma=0.0)
    with pytest.raises(TypeError, match="attenuation_at_1m"):
        ChannelModel(attenuation_at_1m="67")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fade_slope"):
        ChannelModel(fade_slope=True)
    assert ChannelModel(attenuation_at_1m=np.float64(60.0)).attenuation_at_1m == 60.0


@pytest.mark.parametrize("bad", [-1.0, 0.0, math.nan, math.inf])
def test_scan_seconds_must_be_positive_and_finite(bad: float) -> None:
    """scan_seconds=-1 used to loop forever (the next scan never started after the current one)."""
    with pytest.raises(EstimationParameterError, match="scan_seconds"):
        scan_instances(T0 + np.arange(5.0), np.full(5, 60.0), scan_seconds=bad)
    with pytest.raises(EstimationParameterError, match="first_scan_seconds"):
        scan_instances(T0 + np.arange(5.0), np.full(5, 60.0), first_scan_seconds=bad if bad else -1.0)


def test_fit_ignores_packets_without_a_finite_time() -> None:
    rng = np.random.default_rng(5)
    sessions = []
    for d in (0.9, 1.2, 1.8, 2.4, 3.0, 3.7, 4.6) * 4:
        t = np.sort(rng.uniform(0, 120, 300))
        a = 67 + 12 * math.log10(d) + rng.normal(0, 4) + rng.normal(0, 6, t.size)
        sessions.append((t, a, d))
    clean = fit_channel_model(sessions)
    dirty = []
    for t, a, d in sessions:
        t2, a2 = t.copy(), a.copy()
        t2[::7] = np.nan  # these packets carry no usable time ...
        t2[3] = np.inf
        a2[::7] = a2[::7] + 40  # ... so their (odd) attenuation must not count either
        dirty.append((t2, a2, d))
    dirty.append((np.array([np.nan, np.nan]), np.array([60.0, 61.0]), 1.0))  # nothing usable: skipped
    dirty.append((t, a, math.inf))  # no usable distance: skipped
    fitted = fit_channel_model(dirty)
    assert fitted.attenuation_at_1m == pytest.approx(clean.attenuation_at_1m, abs=1.0)
    assert fitted.fading_sigma == pytest.approx(clean.fading_sigma, abs=0.5)
    assert math.isfinite(fitted.max_distance)


def test_nhs_keeps_zero_attenuation_readings() -> None:
    """GAEN floors attenuation at 0 dB: those are the nearest readings and must not be dropped."""
    from proximity.estimation.nhs import nhs_distances, nhs_weighted_minutes

    times = T0 + np.arange(0, 600, 1.0)
    seconds, distance = nhs_distances(times, np.zeros(times.size))
    assert seconds.size == 600 and np.all(np.isfinite(distance)) and np.all(distance < 0.1)
    weighted, observed = nhs_weighted_minutes(times, np.zeros(times.size))
    assert observed == 10.0 and weighted == pytest.approx(10.0)
    mixed = np.where(np.arange(times.size) % 2 == 0, 0.0, 60.0)
    assert nhs_distances(times, mixed)[0].size == 600
    assert nhs_distances(times, np.full(times.size, -1.0))[0].size == 0  # not an attenuation


@pytest.mark.parametrize(
    ("rssi", "expected"), [("-60", -60.0), ("-60.0", -60.0), ("-6e1", -60.0), ("127.0", None)]
)
def test_parse_recordings_reads_whole_number_rssi(rssi: str, expected: float | None) -> None:
    text = HEADER + "A,s,hand,hand,x,y,1.0,0,-61,-999\n" + f"A,s,hand,hand,x,y,1.0,1,{rssi},-999\n"
    (session,) = parse_recordings(text)
    assert session.rssi.tolist() == ([-61.0] if expected is None else [-61.0, expected])


@pytest.mark.parametrize("rssi", ["-60.7", "inf", "-inf", "nan", "x", ""])
def test_parse_recordings_refuses_fractional_or_non_finite_rssi(rssi: str) -> None:
    text = HEADER + "A,s,hand,hand,x,y,1.0,0,-61,-999\n" + f"A,s,hand,hand,x,y,1.0,1,{rssi},-999\n"
    with pytest.raises(RecordingFormatError, match="row 3") as caught:
        parse_recordings(text)
    assert "rssi" in str(caught.value)


def test_estimation_settings_refuse_bad_values() -> None:
    for field, bad in [
        ("rssi_correction", math.nan),
        ("default_tx_power", math.inf),
        ("distance", 0.0),
        ("minutes", -1.0),
        ("probability_threshold", 1.5),
        ("calibration_confidence", 4),
    ]:
        with pytest.raises(EstimationParameterError, match=field):
            EstimationSettings(**{field: bad})  # type: ignore[arg-type]
    assert EstimationSettings(minutes=0.0).minutes == 0.0


def test_a_match_without_any_rssi_is_unknown_not_no() -> None:
    """No RSSI: no signal to judge, so the verdict says unknown (None), not "no close contact"."""
    deaf = FakeMatch(T0 + np.arange(0, 1800, 30.0), np.full(60, np.nan), np.full(60, np.nan))
    for name in estimator_names():
        result = verdict(deaf, name)
        assert result["close_contact"] is None and result["score"] is None and result["days"] == []
    assert verdict(_match(-95, 40))["close_contact"] is False
