"""A city's crowd moved one step at a time (``Movers.step``): city.toml's 100,000 agents (30,000 walkers,
10,000 followers), half an hour after they start, so about a third of the walkers are on the move and a
few arrive each step. The C step (sim/_walk.c) against its numpy reference, which cost a city shard
~1.4 s CPU a 10 chunks before (issue 17). Reported as milliseconds a step in extra_info."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from proximity.sim import CrowdParams, mobility
from proximity.sim.native import walk

CITY = CrowdParams(
    agents=100_000, width=2500.0, height=2000.0, stationary=0.6, waypoint=0.25, group=0.15, group_size=3,
    speed=(0.5, 1.5), pause=(300.0, 3600.0),
)  # fmt: skip
START = 1596645000.0  # 16:30 UTC
STEPS = 120


@pytest.mark.parametrize("path", ["c", "numpy"])
def test_city_step(benchmark: Any, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    if path == "numpy":
        monkeypatch.setattr(mobility, "_native", None)
    elif walk is None:  # pragma: no cover - no compiler at install time
        pytest.skip("sim/_walk.c was not built")
    movers = mobility.Movers(CITY, np.random.default_rng(5), START, 7200.0)
    clock = [0]
    for _ in range(1800):  # half an hour: walkers on the move, pausing and arriving
        movers.step(START + clock[0], 1.0)
        clock[0] += 1

    def steps() -> None:
        for _ in range(STEPS):
            movers.step(START + clock[0], 1.0)
            clock[0] += 1

    benchmark.pedantic(steps, rounds=5, iterations=1)
    assert movers._legs is not None and (movers.pause_until[movers._legs.walkers] <= START + clock[0]).any()
    benchmark.extra_info["ms_per_step"] = benchmark.stats.stats.min / STEPS * 1e3
