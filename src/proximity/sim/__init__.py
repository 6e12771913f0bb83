"""Crowd simulation on the real core (optional shell; ``pip install proximity-tracing[sim]``).

Movers in a venue, phones with real key rings, a channel with no distance cut-off, real
encounter logs, the real matcher and the real estimators: who gets traced, at what adoption.
Never imports :mod:`proximity.ble`.
"""

from proximity.sim.channel import (
    CARRIAGES,
    ChannelParams,
    heard_chance,
    heard_fading,
    hearing_radius,
    link_level,
)
from proximity.sim.devicemodels import DeviceModels
from proximity.sim.devices import AppDedup, SharedLog
from proximity.sim.duty import DUTY_CYCLES, DutyCycle
from proximity.sim.mobility import CrowdParams, Movers
from proximity.sim.neighbours import close_pairs, cross_pairs
from proximity.sim.run import ResultRow, RunResult, run_simulation
from proximity.sim.scenario import Scenario, ScenarioError, load_scenario, scenario_from_dict
from proximity.sim.streams import Streams
from proximity.sim.summary import SummaryRow, summarise
from proximity.sim.world import SightingChunk, World

__all__ = [
    "CARRIAGES",
    "DUTY_CYCLES",
    "AppDedup",
    "ChannelParams",
    "CrowdParams",
    "DeviceModels",
    "DutyCycle",
    "Movers",
    "ResultRow",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SharedLog",
    "SightingChunk",
    "Streams",
    "SummaryRow",
    "World",
    "close_pairs",
    "cross_pairs",
    "heard_chance",
    "heard_fading",
    "hearing_radius",
    "link_level",
    "load_scenario",
    "run_simulation",
    "scenario_from_dict",
    "summarise",
]
