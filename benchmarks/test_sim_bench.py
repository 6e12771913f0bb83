"""Simulator speed: sightings generation and the whole pipeline, 1,000 agents in 50 m x 50 m, 1 s steps.
The long runs (the city day, the 1,000,000-agent hour, quang-ninh against 99c02a7) are in
benchmarks/scale/ (`make bench-scale`).

Reported as agent-steps per second in each benchmark's extra_info (`make bench`). The target for
sightings generation (mobility + neighbours + channel + duty cycles) is >= 1,000,000 agent-steps/s
on one core; ground truth (every pair within 2 m, every step) is measured separately on top of it.
The pipeline (real keys, SQLite logs, matcher, estimator) runs the venue for 8 hours at a lower
adoption so that it finishes in minutes: its cost grows with phones^2 (each pair is estimated).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from proximity.sim import CrowdParams, Scenario, World, run_simulation

AGENTS = 1000
STEPS = 600


def _venue(duration: float, **changes: object) -> Scenario:
    crowd = CrowdParams(agents=AGENTS, width=50.0, height=50.0, stationary=0.2, waypoint=0.6, group=0.2)
    return Scenario(name="bench", crowd=crowd, duration=duration, chunk=600.0, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("truth", [False, True], ids=["sightings", "sightings+truth"])
def test_sightings_generation(benchmark: Any, truth: bool) -> None:
    scenario = _venue(STEPS)

    def generate() -> int:
        return sum(len(chunk) for chunk in World(scenario, 1.0, 0, truth=truth).chunks())

    heard = benchmark.pedantic(generate, rounds=3, iterations=1)
    assert heard > 0
    benchmark.extra_info["agent_steps_per_s"] = AGENTS * STEPS / benchmark.stats.stats.min
    benchmark.extra_info["sightings_per_run"] = heard


@pytest.mark.parametrize("adoption", [0.1])
def test_pipeline_eight_hours(benchmark: Any, adoption: float) -> None:
    scenario = _venue(8 * 3600.0, estimators=("cwa",))
    started = time.perf_counter()
    result = benchmark.pedantic(run_simulation, args=(scenario, adoption, 0), rounds=1, iterations=1)
    elapsed = time.perf_counter() - started
    row = result.rows[0]
    assert row.sightings > 0
    benchmark.extra_info["agent_steps_per_s"] = AGENTS * 8 * 3600 / elapsed
    benchmark.extra_info["phones"] = row.app_users
    benchmark.extra_info["sightings_logged"] = row.logged


def test_quang_ninh_one_run(benchmark: Any) -> None:
    """One quang-ninh run (its own scenario file, adoption 0.58, seed 0, no Dask): the issue-17 speed
    figure; `make bench-scale` compares it with commit 99c02a7 in the same run (benchmarks/scale/)."""
    from proximity.sim import load_scenario

    scenario = load_scenario(Path(__file__).resolve().parents[1] / "simulations" / "quang-ninh.toml")
    result = benchmark.pedantic(run_simulation, args=(scenario, 0.58, 0), rounds=1, iterations=1)
    row = result.rows[0]
    assert row.true_contacts > 0
    benchmark.extra_info["sightings_logged"] = row.logged
    benchmark.extra_info["pairs_judged"] = result.stats["estimated_pairs"]
