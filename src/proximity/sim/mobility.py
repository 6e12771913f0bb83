"""Where everyone is, one vectorised step at a time: stationary, random-waypoint and group movers.

Positions live in one (n, 2) array. Stationary agents sit (on a seat grid or anywhere); waypoint
agents walk to a random target at their own speed, pause, pick another; group members keep a fixed
offset from their group's leader (a waypoint mover). Agents enter and leave at drawn times; a group's
members enter and leave with its leader. With ``household_size`` h, agents 0..h-1, h..2h-1, ... are
households: they arrive and leave together (with their first member) but move on their own inside;
members of one household or one walking group are companions (manual tracing finds them anyway).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["MOVER_KINDS", "CrowdParams", "Movers"]

MOVER_KINDS = ("stationary", "waypoint", "group")
STATIONARY, WAYPOINT, GROUP = range(3)


@dataclass(frozen=True, slots=True)
class CrowdParams:
    """A venue (``width`` x ``height`` m) and how its ``agents`` move, arrive and stay (seconds).

    ``layout`` "seats" puts stationary agents on a grid ``seat_spacing`` apart (bus, classroom);
    "open" anywhere. Arrivals are uniform over ``arrival_spread``; each stays ``dwell`` (exponential
    mean; 0 = until the end). A group arrives and leaves together, when its leader does; so does a
    household (``household_size`` consecutive agents; 0 = no households).
    """

    agents: int
    width: float
    height: float
    stationary: float = 0.0
    waypoint: float = 1.0
    group: float = 0.0
    group_size: int = 3
    layout: str = "open"
    seat_spacing: float = 1.0
    speed: tuple[float, float] = (0.5, 1.5)
    pause: tuple[float, float] = (0.0, 300.0)
    arrival_spread: float = 0.0
    dwell: float = 0.0
    household_size: int = 0

    def __post_init__(self) -> None:
        for name in ("agents", "group_size", "household_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
        if self.agents < 1:
            raise ValueError(f"agents must be at least 1, got {self.agents}")
        if not (self.width > 0 and self.height > 0):
            raise ValueError("venue width and height must be positive")
        shares = (self.stationary, self.waypoint, self.group)
        if min(shares) < 0 or sum(shares) <= 0:
            raise ValueError("mover fractions (stationary, waypoint, group) must be >= 0 and not all 0")
        if self.layout not in ("open", "seats"):
            raise ValueError(f"layout must be 'open' or 'seats', got {self.layout!r}")
        if self.group_size < 2:
            raise ValueError("group_size must be at least 2")
        if self.household_size == 1 or self.household_size < 0:
            raise ValueError(
                f"household_size must be 0 (no households) or at least 2, got {self.household_size}"
            )
        for name in ("speed", "pause"):
            value = getattr(self, name)
            if not (isinstance(value, tuple) and len(value) == 2):
                raise ValueError(f"{name} must be a [low, high] pair, got {value!r}")
        if not (0 <= self.speed[0] <= self.speed[1] and 0 <= self.pause[0] <= self.pause[1]):
            raise ValueError("speed and pause must be (low, high) ranges with 0 <= low <= high")
        if not (self.seat_spacing > 0 and self.arrival_spread >= 0 and self.dwell >= 0):  # NaN fails
            raise ValueError("seat_spacing must be positive; arrival_spread and dwell >= 0")


class Movers:
    """Mobility state of every agent; :meth:`step` advances it by ``dt`` seconds."""

    def __init__(self, params: CrowdParams, rng: np.random.Generator, start: float, duration: float) -> None:
        self.params = params
        self.rng = rng
        n = params.agents
        shares = np.array([params.stationary, params.waypoint, params.group], np.float64)
        counts = np.floor(shares / shares.sum() * n).astype(np.int64)
        counts[int(np.argmax(shares))] += n - int(counts.sum())
        self.kind = np.repeat(np.arange(3, dtype=np.int8), counts)
        self.size = np.array([params.width, params.height], np.float64)
        self.pos = rng.random((n, 2)) * self.size
        stationary = np.flatnonzero(self.kind == STATIONARY)
        if params.layout == "seats" and stationary.size:
            self.pos[stationary] = self._seats(stationary.size)
        self.target = rng.random((n, 2)) * self.size
        self.speed = rng.uniform(params.speed[0], params.speed[1], n)
        self.pause_until = start + rng.uniform(params.pause[0], params.pause[1], n)
        # group members follow the first member of their group (who walks like a waypoint mover)
        self.leader = np.arange(n, dtype=np.int64)
        self.offset = np.zeros((n, 2))
        members = np.flatnonzero(self.kind == GROUP)
        if members.size:
            first = members[:: params.group_size]
            leaders = np.repeat(first, params.group_size)[: members.size]
            self.leader[members] = leaders
            follower = members[members != leaders]
            self.offset[follower] = rng.normal(0.0, 0.6, (follower.size, 2))
        self.walks = (self.kind == WAYPOINT) | ((self.kind == GROUP) & (self.leader == np.arange(n)))
        self.follows = (self.kind == GROUP) & ~self.walks
        arrive = start + rng.random(n) * params.arrival_spread
        stay = rng.exponential(params.dwell, n) if params.dwell > 0 else np.full(n, np.inf)
        self.enter = arrive
        self.leave = np.minimum(arrive + stay, start + duration)
        # households: blocks of consecutive agents, who come and go with their first member; a walking
        # group belongs to its leader's household (so it still arrives and leaves as one)
        size = params.household_size
        block = (np.arange(n, dtype=np.int64) // size) * size if size else np.arange(n, dtype=np.int64)
        self.household_head = block[self.leader]
        self.enter = self.enter[self.household_head]
        self.leave = self.leave[self.household_head]
        # a group arrives and leaves together: followers take their leader's window (every agent's
        # own times are still drawn, so the draws of everyone else do not depend on who follows)
        followers = np.flatnonzero(self.follows)
        self.enter[followers] = self.enter[self.leader[followers]]
        self.leave[followers] = self.leave[self.leader[followers]]
        self._follow()

    def _seats(self, count: int) -> NDArray[np.float64]:
        spacing = self.params.seat_spacing
        xs = np.arange(spacing / 2, self.params.width, spacing)
        ys = np.arange(spacing / 2, self.params.height, spacing)
        grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        if grid.shape[0] < count:
            raise ValueError(f"{count} seated agents do not fit on {grid.shape[0]} seats; enlarge the venue")
        return grid[self.rng.permutation(grid.shape[0])[:count]]

    def _follow(self) -> None:
        f = self.follows
        if f.any():
            self.pos[f] = np.clip(self.pos[self.leader[f]] + self.offset[f], 0.0, self.size)

    def present(self, t: float) -> NDArray[np.bool_]:
        return (self.enter <= t) & (t < self.leave)

    def step(self, t: float, dt: float) -> None:
        moving = self.walks & (t >= self.pause_until)
        if moving.any():
            idx = np.flatnonzero(moving)
            vec = self.target[idx] - self.pos[idx]
            dist = np.sqrt(vec[:, 0] ** 2 + vec[:, 1] ** 2)
            reach = self.speed[idx] * dt
            arrived = dist <= reach
            go = ~arrived
            self.pos[idx[go]] += vec[go] * (reach[go] / dist[go])[:, None]
            done = idx[arrived]
            if done.size:
                self.pos[done] = self.target[done]
                self.target[done] = self.rng.random((done.size, 2)) * self.size
                low, high = self.params.pause
                self.pause_until[done] = t + self.rng.uniform(low, high, done.size)
        self._follow()
