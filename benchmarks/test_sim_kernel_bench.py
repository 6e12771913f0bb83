"""The packet kernel at the city's density: a 30,000-agent slice of simulations/city.toml (0.02 agents/m²,
60 % still, GAEN's duty cycle at 30 % adoption), sightings only (no ground truth), 20 simulated seconds.

Most of a city step's radio cost is (scanner, advertiser) pairs within their own hearing radius that are
not heard (~98.5 %): the kernel's cheap exact rejection is what this measures. Reported in extra_info as
CPU seconds per simulated second and packets heard (`make bench`); compare before/after in one run.
"""

from __future__ import annotations

import time
from typing import Any

from proximity.sim import CrowdParams, Scenario, World

SECONDS = 20


def test_city_slice_packets(benchmark: Any) -> None:
    crowd = CrowdParams(
        agents=30_000, width=1300.0, height=1150.0, stationary=0.6, waypoint=0.25, group=0.15, group_size=3,
        speed=(0.5, 1.5), pause=(300, 3600),
    )  # fmt: skip
    scenario = Scenario(name="city-slice", crowd=crowd, duration=SECONDS, chunk=SECONDS, scheme="gaen")
    cpu: list[float] = []

    def generate() -> int:
        started = time.process_time()
        heard = sum(len(chunk) for chunk in World(scenario, 0.3, 0, truth=False).chunks())
        cpu.append(time.process_time() - started)
        return heard

    heard = benchmark.pedantic(generate, rounds=2, iterations=1)
    assert heard > 0
    benchmark.extra_info["cpu_seconds_per_simulated_second"] = min(cpu) / SECONDS
    benchmark.extra_info["packets_heard"] = heard
