"""Fixed-distance sessions through the whole sightings path, to compare with recordings (MIT data).

Pairs of stationary phones are placed at the given distances, far enough apart that pairs cannot
hear each other, with always-on scanning like a recording rig; each pair is one session.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from proximity.estimation import CalibrationTable
from proximity.sim.channel import ChannelParams, hearing_radius
from proximity.sim.mobility import CrowdParams
from proximity.sim.scenario import Scenario
from proximity.sim.world import World

__all__ = ["fixed_distance_sessions"]


def fixed_distance_sessions(
    distances: Sequence[float],
    *,
    seconds: float = 120.0,
    seed: int = 0,
    channel: ChannelParams | None = None,
    calibration: CalibrationTable | None = None,
) -> list[tuple[float, NDArray[np.float64]]]:
    """One session per entry of ``distances``: (distance, RSSIs the first phone heard from the second).

    Phones are drawn from ``calibration`` (default: the estimator's table), as in every run."""
    channel = channel or ChannelParams()
    # out of earshot: the hearing radius of devices 40 dB better than the reference, three times over
    spacing = 3.0 * hearing_radius(channel, np.array([40.0])) + max(distances, default=0.0)
    pairs = len(distances)
    crowd = CrowdParams(agents=2 * pairs, width=spacing * pairs, height=1.0, stationary=1.0, waypoint=0.0)
    scenario = Scenario(
        name="fixed-distance",
        crowd=crowd,
        channel=channel,
        duration=seconds,
        duty="continuous",
        chunk=seconds,
        # the venue is one long line of far-apart pairs: the neighbour search covers only the occupied
        # cells, so the whole-venue estimate of estimated_memory() does not apply
        memory_cap=1e18,
    )
    world = World(scenario, 1.0, seed, truth=False, calibration=calibration)  # sightings only
    x = np.repeat(np.arange(pairs) * spacing, 2) + np.tile([0.0, 1.0], pairs) * np.repeat(distances, 2)
    world.movers.pos[:] = np.stack((x, np.zeros(2 * pairs)), axis=1)
    heard: list[list[NDArray[np.float64]]] = [[] for _ in range(pairs)]
    for chunk in world.chunks():
        mine = (chunk.scanner % 2 == 0) & (chunk.advertiser == chunk.scanner + 1)
        session = chunk.scanner[mine] // 2
        rssi = chunk.rssi[mine]
        for k in np.unique(session):
            heard[int(k)].append(rssi[session == k])
    return [
        (float(d), np.concatenate(h) if h else np.zeros(0)) for d, h in zip(distances, heard, strict=True)
    ]
