"""Epidemic sweeps and their summary: paired averted, intervals, half-benefit, Ctrl-C keeps runs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("covasim")

from conftest import REPO
from proximity.epi import sweep as sweep_module
from proximity.epi.report import half_benefit, summarise, write_epidemic
from proximity.epi.run import EpiRow, EpiRun, run_epidemic
from proximity.epi.scenario import load_epidemic
from proximity.epi.sweep import EpiSweep, epidemic_sweep

DISTRICT = REPO / "simulations" / "quang-ninh-district.toml"


def _run(adoption: float, seed: int, infections: float, quarantine: float = 0.0) -> EpiRun:
    row = EpiRow(
        scenario="t", adoption=adoption, seed=seed, beta=0.016, agents=100, population=100, app_users=0,
        cum_infections=infections, peak_infections=infections / 10, peak_day=10, cum_diagnoses=0.0,
        quarantine_person_days=quarantine, app_notified=1.0, app_false_notified=0.5, traced_share_h=0.1,
        traced_share_s=0.1, traced_share_w=0.1, traced_share_c=0.1, wall_seconds=0.0, peak_rss_mb=0.0,
    )  # fmt: skip
    days = np.arange(5, dtype=np.float64)
    return EpiRun(row, {"new_infections": days, "r_eff": days / 5, "n_quarantined": days})


def _sweep(curve: dict[float, float], seeds: int = 4) -> EpiSweep:
    """Seed s at adoption p: curve[p] + 100 s (seeds differ; averted is the same in every seed)."""
    return EpiSweep(
        {
            (p, s, 1.0): _run(p, s, y + 100 * s, quarantine=1000 * p)
            for p, y in curve.items()
            for s in range(seeds)
        }
    )


def test_averted_is_paired_by_seed() -> None:
    rows = {r.adoption: r for r in summarise(_sweep({0.0: 1000, 0.5: 700, 1.0: 400}))}
    # seeds differ by 100 s in infections, but each seed's own difference is exactly 300 / 600
    assert rows[0.5].values["averted"] == (300.0, 300.0, 300.0)
    assert rows[1.0].values["averted"][0] == 600.0
    assert rows[1.0].values["averted_share"][0] == pytest.approx(
        np.mean([600 / (1000 + 100 * s) for s in range(4)])
    )
    assert rows[1.0].values["extra_quarantine_per_averted"][0] == pytest.approx(1000 / 600)
    low, high = rows[0.0].values["cum_infections"][1:]
    assert low < 1150 < high  # the unpaired level does carry the spread over seeds


def test_half_benefit_interpolates_the_averted_curve() -> None:
    curve = {0.0: 1000.0, 0.2: 950.0, 0.4: 800.0, 0.6: 600.0, 0.8: 500.0, 1.0: 400.0}
    point, _, _ = half_benefit(_sweep(curve))
    # half of 600 averted is 300: between 0.4 (200) and 0.6 (400)
    assert point == pytest.approx(0.5)
    assert math.isnan(half_benefit(_sweep({0.0: 10.0, 1.0: 5.0}))[0])  # too few adoptions


def test_write_epidemic_writes_tidy_tables_and_plots(tmp_path: Path) -> None:
    paths = write_epidemic(_sweep({0.0: 1000, 0.5: 700, 1.0: 400}), tmp_path, {"scenario": "t"})
    names = {p.name for p in paths}
    assert {"runs.csv", "series.csv", "summary.csv", "run.json", "averted.png", "r_eff.png"} <= names
    assert (tmp_path / "series.csv").read_text().count("\n") == 1 + 3 * 4 * 5  # one row per run and day


def test_ctrl_c_keeps_the_finished_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    def fake(scenario: Any, adoption: float, seed: int, coupling: Any, factor: float) -> EpiRun:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return _run(adoption, seed, 100.0)

    monkeypatch.setattr(sweep_module, "run_epidemic", fake)
    result = epidemic_sweep(load_epidemic(DISTRICT), [0.0, 0.5], 2, scheduler="inline")
    assert result.interrupted and len(result.runs) == 2 and result.missing == 2


def test_a_small_real_run_reports_what_happened() -> None:
    scenario = load_epidemic(DISTRICT).with_overrides(agents=3000, population=3000, days=30)
    run = run_epidemic(scenario, 0.58, 0)
    row = run.row
    assert row.cum_infections >= scenario.seeded
    assert abs(row.app_users / 3000 - 0.58) < 0.05
    assert row.quarantine_person_days > 0
    assert len(run.series["r_eff"]) == 31
    assert set(run.counts) == {"h", "s", "w", "c"}


def test_outcomes_are_monotone_in_adoption_within_their_intervals() -> None:
    """Paired seeds, nested app users: more adoption averts at least as much (within the intervals),
    and costs more quarantine."""
    scenario = load_epidemic(DISTRICT).with_overrides(
        agents=5000, population=5000, days=60, initial_infections=10
    )
    result = epidemic_sweep(scenario, [0.0, 0.5, 1.0], 3, scheduler="inline")
    rows = {r.adoption: r.values for r in summarise(result)}
    assert rows[1.0]["averted"][0] > 0
    for lower, higher in ((0.0, 0.5), (0.5, 1.0)):
        assert rows[lower]["averted"][1] <= rows[higher]["averted"][2] or math.isnan(
            rows[lower]["averted"][1]
        )
        assert rows[lower]["cum_infections"][0] >= rows[higher]["cum_infections"][0]
        assert rows[lower]["quarantine_person_days"][0] <= rows[higher]["quarantine_person_days"][0]
