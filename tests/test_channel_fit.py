"""The simulator's channel: its own fit on the recordings, independent of the estimators' fit, and the
physics added on top (fading that deepens past the breakpoint, bodies on the line of sight, carriage
that changes by the hour, offsets per encounter)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from proximity.estimation import CalibrationTable
from proximity.sim.bodies import BodyGrid
from proximity.sim.calibration import fixed_distance_sessions
from proximity.sim.channel import ChannelParams, carriage_schedule, fitted_channel
from proximity.sim.mobility import CrowdParams
from proximity.sim.scenario import Scenario
from proximity.sim.world import World

DATA = REPO / "data"
FILES = ("herald_edison", "kri_anechoic", "mit-matrix-rssi", "mit_static", "range_angle")
# one phone model at the fleet's calibration: attenuation = -24 - (rssi + 3)
FLEET = CalibrationTable.parse(
    "oem,device,model,rssi_correction,tx_power_correction,confidence\nAcme,a1,A1,3,-24,3\n"
)


def test_committed_channel_fit_is_what_the_script_writes(tmp_path: Path) -> None:
    out = tmp_path / "channel.json"
    files = [str(DATA / f"{name}.csv.gz") for name in FILES]
    script = REPO / "scripts" / "fit_channel.py"
    subprocess.run([sys.executable, str(script), "--out", str(out), *files], check=True, capture_output=True)
    committed = REPO / "src" / "proximity" / "sim" / "data" / "channel.json"
    assert out.read_text() == committed.read_text()


@pytest.mark.parametrize("distance", [1.0, 3.0])
def test_simulated_sessions_match_the_fit_at_each_distance(distance: float) -> None:
    """The generative model reproduces what it was fitted to, per distance: the level of session means,
    their spread between encounters, and the packets' spread within a session."""
    fit = fitted_channel()
    sessions = [r for _, r in fixed_distance_sessions([distance] * 1200, calibration=FLEET, seed=3)]
    kept = [r for r in sessions if r.size >= 5]
    attenuation = -24.0 - 3.0 - np.array([r.mean() for r in kept])
    level = fit["attenuation_at_1m"] + 10 * fit["path_loss_exponent"] * np.log10(distance)
    assert attenuation.mean() == pytest.approx(level, abs=1.0)
    assert attenuation.std() == pytest.approx(fit["between_encounter_sigma"], abs=1.0)
    within = np.median([r.std(ddof=1) for r in kept])
    assert within == pytest.approx(fit["fading_at_1m"] * distance ** fit["fading_slope"], abs=0.3)


def _imports_and_strings(path: Path) -> tuple[set[str], list[str]]:
    tree = ast.parse(path.read_text(), str(path))
    package = (
        ".".join(path.relative_to(REPO / "src").with_suffix("").parts[:-1]) if "src" in path.parts else ""
    )
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base]) if base else ".".join(parts)
            modules.add(base)
            modules.update(f"{base}.{alias.name}" for alias in node.names)
    docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}  # docstrings may name the other
    strings = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]
    return modules, strings


ESTIMATOR_FIT = ("proximity.estimation.fitted", "proximity.estimation.probabilistic",
                 "proximity.estimation.estimators", "proximity.estimation.presets")  # fmt: skip


def test_channel_and_estimator_fits_read_nothing_of_each_other() -> None:
    """The channel's numbers come from scripts/fit_channel.py -> sim/data/channel.json, the estimators'
    from scripts/fit_defaults.py -> estimation/data/fitted.json (and published figures); neither side
    imports or reads the other's (both read the same recordings and the phones' calibration table)."""
    channel_side = [
        REPO / "scripts" / "fit_channel.py",
        *sorted((REPO / "src/proximity/sim").glob("channel.py")),
    ]
    for path in channel_side:
        modules, strings = _imports_and_strings(path)
        assert not [m for m in modules if m.startswith(ESTIMATOR_FIT)], path
        assert not [s for s in strings if "fitted.json" in s or "ChannelModel" in s], path
    estimator_side = [
        REPO / "scripts" / "fit_defaults.py",
        *sorted((REPO / "src/proximity/estimation").rglob("*.py")),
    ]
    for path in estimator_side:
        modules, strings = _imports_and_strings(path)
        assert not [m for m in modules if m.startswith("proximity.sim")], path
        assert not [s for s in strings if "channel.json" in s], path
    # and the numbers do differ: the channel is not the estimator's prior under another name
    from proximity.estimation.probabilistic import ChannelModel

    assert ChannelParams().path_loss_exponent != ChannelModel().path_loss_exponent


def test_path_loss_is_continuous_at_the_breakpoint_and_tgn_beyond() -> None:
    p = ChannelParams()
    at = p.breakpoint
    below, above = p.path_loss(np.array([at * (1 - 1e-9)]))[0], p.path_loss(np.array([at * (1 + 1e-9)]))[0]
    assert above == pytest.approx(below, abs=1e-6)
    decade = p.path_loss(np.array([10 * at, 100 * at]))
    assert decade[1] - decade[0] == pytest.approx(10 * p.far_exponent)
    assert p.far_exponent == 3.5 and p.path_loss_exponent == fitted_channel()["path_loss_exponent"]


def test_fading_and_encounter_spread_grow_past_the_breakpoint() -> None:
    p = ChannelParams()
    d = np.array([1.0, 4.0, p.breakpoint, 1.5 * p.breakpoint, 2 * p.breakpoint, 100.0])
    fade, spread = p.fading_depth(d), p.encounter_spread(d)
    assert fade[-1] == pytest.approx(max(p.far_fading_sigma, float(fade[2])))
    assert fade[2] < fade[3] < fade[4]
    assert spread[0] == pytest.approx(p.encounter_sigma)
    assert spread[-1] == pytest.approx(np.hypot(p.encounter_sigma, p.far_shadow_sigma))


def test_body_grid_counts_people_in_the_corridor_only() -> None:
    people = np.array([[5.0, 0.1], [7.0, 3.0], [0.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    grid = BodyGrid(people, 0.5)
    start, end = np.array([[0.0, 0.0]] * 3), np.array([[10.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    got = grid.count(start, end, np.array([10.0, 10.0, 20.0]), max_range=12.0)
    # the body at (5, 0.1) blocks; (7, 3) is off the line; the ends are not counted; 20 m is too far
    assert got.tolist() == [1.0, 1.0, 0.0]


def _three_in_a_row(middle_y: float, body_loss: float) -> np.ndarray:
    crowd = CrowdParams(agents=3, width=10.0, height=10.0, stationary=1.0, waypoint=0.0)
    channel = ChannelParams(body_loss=body_loss, packet_loss=0.0, rssi_at_1m=-30.0)  # far above the floor
    scenario = Scenario(
        name="row", crowd=crowd, channel=channel, duration=30.0, duty="continuous", chunk=30.0
    )
    world = World(scenario, 1.0, 5, truth=False)
    world.movers.pos[:] = [[1.0, 5.0], [3.0, middle_y], [5.0, 5.0]]
    rows = [(c.scanner, c.advertiser, c.times, c.rssi) for c in world.chunks()]
    scanner, advertiser, times, rssi = (np.concatenate([r[k] for r in rows]) for k in range(4))
    mine = (scanner == 0) & (advertiser == 2)
    order = np.argsort(times[mine])
    out: np.ndarray = rssi[mine][order]
    return out


def test_a_body_on_the_line_of_sight_costs_body_loss_per_packet() -> None:
    clear, blocked = _three_in_a_row(9.0, 6.0), _three_in_a_row(5.0, 6.0)
    assert clear.size == blocked.size > 0  # every draw is hashed per (scanner, advertiser, step)
    assert np.allclose(clear - blocked, 6.0)
    assert np.allclose(_three_in_a_row(5.0, 0.0), clear)  # body_loss 0: no shadowing at all


def test_carriage_changes_by_the_hour_and_keeps_its_mix() -> None:
    p = ChannelParams(carriage_stay=0.6)
    hours = carriage_schedule(p, np.random.default_rng(0), 20_000, 12)
    weights = np.asarray(p.carriage_weights) / sum(p.carriage_weights)
    for h in (0, 11):
        share = np.bincount(hours[:, h], minlength=weights.size) / hours.shape[0]
        assert np.allclose(share, weights, atol=0.015)
    changed = (hours[:, 1:] != hours[:, :-1]).mean()
    assert changed == pytest.approx((1 - 0.6) * (1 - float(weights @ weights)), abs=0.01)
    fixed = carriage_schedule(ChannelParams(carriage_stay=1.0), np.random.default_rng(0), 100, 5)
    assert (fixed == fixed[:, :1]).all()
