"""Where everyone is, a batch of steps at a time: stationary, random-waypoint and group movers.

Positions live in one (n, 2) array. Stationary agents sit (on a seat grid or anywhere); waypoint
agents walk to a random target at their own speed, pause, pick another; group members keep a fixed
offset from their group's leader (a waypoint mover). A walk is piecewise linear: after m moving steps
of a leg a walker is at ``start + (target - start) * (m * reach / length)`` (``reach`` = speed x step)
until the step that would reach or pass the target, where it stands on it. So the positions of a
whole batch of steps are array arithmetic, and a batch's arrivals draw their next targets and pauses
at once (in step order: the same draws whatever the batch). Agents enter and leave at drawn times; a
group's members enter and leave with its leader. With ``household_size`` h, agents 0..h-1, h..2h-1, ... are
households: they arrive and leave together (with their first member) but move on their own inside;
members of one household or one walking group are companions (manual tracing finds them anyway).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.sim.native import walk as _native

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
        self._legs: _Legs | None = None
        self._followers, self._followed = np.zeros(0, np.int64), np.zeros(0, np.int64)  # set with the legs
        self._buffer, self._used = np.zeros(0), 0  # uniforms of rng read ahead (see _uniforms)

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

    def present(self, t: float | NDArray[np.float64]) -> NDArray[np.bool_]:
        """Who is in the venue at ``t`` (a column of times: one row per time)."""
        return np.asarray((self.enter <= t) & (t < self.leave))

    def step(self, t: float, dt: float) -> NDArray[np.float64]:
        """One step of ``dt`` seconds at time ``t``: :meth:`advance` of one time, in place (the same
        positions): only the walkers on the move and their followers are written, in C where sim/_walk.c
        was built (a city step ~6x cheaper than numpy's passes over its 30,000 walkers), else numpy. Returns
        :attr:`pos` (a read-only view: the next step moves it)."""
        legs = self._legs
        if legs is None or dt != legs.dt:  # the first step (it places the followers) or an error
            self.advance(np.array([t], np.float64), dt)
        elif _native is not None:  # sim/_walk.c: the same positions, one pass over the walkers
            ends = _native.step(
                t, legs.walkers, self.pause_until, self.pos, legs.start, legs.target, legs.length, legs.need,
                legs.reach, legs.moved, self._followers, self._followed, self.leader, self.offset,
                float(self.size[0]), float(self.size[1]),
            )  # fmt: skip
            if ends:
                self._arrive(t, np.frombuffer(ends, np.int64))
        else:
            self._step_numpy(t)
        return self._view()

    def _step_numpy(self, t: float) -> None:
        """:meth:`step` in numpy (after the first step): the reference sim/_walk.c is tested against."""
        assert self._legs is not None
        legs = self._legs
        w = legs.walkers
        first = (self.pause_until[w] > t).astype(np.int64)  # searchsorted([t], pause_until) of advance
        go = np.flatnonzero(first == 0)
        out = self.pos[None]
        moves = legs.moved[go] + 1
        at = _along(legs.start[go], legs.target[go], legs.length[go], legs.need[go], legs.reach[go], moves)
        out[0, w[go]] = at
        legs.moved[go] = moves  # those who arrive start a new leg (moved 0) below
        # a walker who stands has moved 0 steps of its next leg (need >= 1): only those who move arrive
        arrival = legs.need[go] - moves
        ends = arrival < 1
        if ends.any():
            self._arrive(t, go[ends])
        if self._followers.size:  # followers of leaders who stood are where they were
            moving = np.zeros(w.size, np.bool_)
            moving[go] = True
            f = self._followers[moving[self._followed]]
            self.pos[f] = np.clip(self.pos[self.leader[f]] + self.offset[f], 0.0, self.size)

    def _view(self) -> NDArray[np.float64]:
        view = self.pos.view()
        view.flags.writeable = False
        return view

    def advance(self, times: NDArray[np.float64], dt: float) -> NDArray[np.float64]:
        """Everyone's positions at ``times`` (ascending, one step of ``dt`` s each), shape (steps, n, 2);
        :attr:`pos` ends at the last. A walker moves at every step at or after its pause ends, by
        ``speed * dt`` toward its target; on the step that would reach the target it stands on it and
        draws the next target and pause (arrivals of one step in agent order, steps in order: the
        draws do not depend on how steps are batched). ``dt`` must be the same at every call."""
        times = np.asarray(times, np.float64).ravel()
        steps = times.size
        out = np.empty((steps, self.params.agents, 2))
        out[:] = self.pos  # the still; walkers and followers are written below
        if self._legs is None:  # the first walk starts where the walkers stand (pos may be set after init)
            self._legs = _Legs(self.pos, self.target, self.speed * dt, np.flatnonzero(self.walks), dt)
            leg = np.full(self.params.agents, -1, np.int64)
            leg[self._legs.walkers] = np.arange(self._legs.walkers.size)
            self._followers = np.flatnonzero(self.follows)
            self._followed = leg[self.leader[self._followers]]  # the leg of each follower's leader
        legs = self._legs
        if dt != legs.dt:
            raise ValueError(f"steps of {dt} s after steps of {legs.dt} s: a walk counts steps of one length")
        if steps == 0:
            return out
        w = legs.walkers
        first = np.searchsorted(times, self.pause_until[w], side="left").astype(np.int64)
        go = np.flatnonzero(first < steps)  # the others pause all batch long, where they stand (pos)
        moves = legs.moved[go] + np.maximum(np.arange(steps, dtype=np.int64)[:, None] - first[go] + 1, 0)
        out[:, w[go]] = _along(
            legs.start[go], legs.target[go], legs.length[go], legs.need[go], legs.reach[go], moves
        )
        arrival = first + legs.need - legs.moved - 1
        due = np.flatnonzero(arrival < steps)
        if due.size:
            self._arrivals(out, times, first, arrival[due], due)
        legs.moved += np.maximum(steps - first, 0)
        f = np.flatnonzero(self.follows)
        if f.size:
            out[:, f] = np.clip(out[:, self.leader[f]] + self.offset[f], 0.0, self.size)
        self.pos[:] = out[-1]
        return out

    def _uniforms(self, count: int) -> NDArray[np.float64]:
        """The next ``count`` uniforms of :attr:`rng` (looked at; :attr:`_used` moves past those taken).
        The generator is read ahead in blocks: ``rng.random((c, 2))`` then ``rng.uniform(low, high, c)``
        are the next 3c of its doubles, the second scaled as numpy does (``low + (high - low) * u``)."""
        if self._buffer.size - self._used < count:
            self._buffer = np.concatenate((self._buffer[self._used :], self.rng.random(max(count, 4096))))
            self._used = 0
        return self._buffer[self._used : self._used + count]

    def _arrive(self, t: float, g: NDArray[np.int64]) -> None:
        """:meth:`_arrivals` of one step: walkers ``g`` (indices into the legs, ascending) stand on their
        targets at ``t`` and draw their next targets, then pauses (the same numbers, the same arithmetic);
        their new legs start after this step, so none ends within it and no position is written."""
        assert self._legs is not None
        legs, m = self._legs, g.size
        low, high = self.params.pause
        u = self._uniforms(3 * m)
        self._used += 3 * m
        if _native is not None:  # sim/_walk.c: the same arithmetic, in one call
            width, height = float(self.size[0]), float(self.size[1])
            _native.arrive(
                t, g, u, float(low), float(high - low), width, height, legs.walkers, self.target,
                self.pause_until, legs.start, legs.target, legs.length, legs.need, legs.reach, legs.moved,
            )  # fmt: skip
            return
        target = u[: 2 * m].reshape(m, 2) * self.size
        until = t + (low + (high - low) * u[2 * m :])
        start = legs.target[g]
        vec = target - start
        length = np.sqrt(vec[:, 0] ** 2 + vec[:, 1] ** 2)
        self.target[legs.walkers[g]], self.pause_until[legs.walkers[g]] = target, until
        legs.start[g], legs.target[g] = start, target
        legs.length[g], legs.need[g], legs.moved[g] = length, _moves_needed(length, legs.reach[g]), 0

    def _arrivals(
        self,
        out: NDArray[np.float64],
        times: NDArray[np.float64],
        first: NDArray[np.int64],
        k: NDArray[np.int64],
        g: NDArray[np.int64],
    ) -> None:
        """Walkers ``g`` (indices into the legs) reaching their targets at batch steps ``k``. In step
        order, each step's arrivals in agent order, each draws its next target and pause (per step: the
        targets, then the pauses) and starts a new leg, which may end within the batch too. Taken in
        rounds: all at once, up to the first step where a new leg ends (usually none), then from there."""
        assert self._legs is not None
        legs, steps = self._legs, times.size
        low, high = self.params.pause
        taken: list[tuple[NDArray[Any], ...]] = []
        while k.size:
            order = np.lexsort((g, k))
            k, g = k[order], g[order]
            _, opens, per_step = np.unique(k, return_index=True, return_counts=True)
            base = np.repeat(3 * opens, per_step)  # 3 draws for each arrival of the steps before
            rank = np.arange(k.size) - np.repeat(opens, per_step)
            u = self._uniforms(3 * k.size)
            target = np.stack((u[base + 2 * rank], u[base + 2 * rank + 1]), axis=1) * self.size
            until = times[k] + (low + (high - low) * u[base + 2 * np.repeat(per_step, per_step) + rank])
            start = legs.target[g]
            vec = target - start
            length = np.sqrt(vec[:, 0] ** 2 + vec[:, 1] ** 2)
            need = _moves_needed(length, legs.reach[g])
            begin = np.maximum(np.searchsorted(times, until, side="left"), k + 1)
            again = begin + need - 1
            ends = again < steps
            take = k < again[ends].min() if ends.any() else np.ones(k.size, np.bool_)  # a prefix
            self._used += 3 * int(take.sum())
            t = g[take]
            self.target[legs.walkers[t]], self.pause_until[legs.walkers[t]] = target[take], until[take]
            legs.start[t], legs.target[t] = start[take], target[take]
            legs.length[t], legs.need[t], legs.moved[t], first[t] = length[take], need[take], 0, begin[take]
            taken.append((t, k[take] + 1, start[take], target[take], length[take], need[take], begin[take]))
            more = take & ends
            k, g = np.concatenate((k[~take], again[more])), np.concatenate((g[~take], g[more]))
        # each new leg's steps: from the step after its arrival to its walker's next new leg (or the end)
        w, lo, a, b, span, moves_to, moving = (np.concatenate([c[i] for c in taken]) for i in range(7))
        order = np.lexsort((lo, w))
        nxt = np.full(w.size, steps, np.int64)
        same = w[order][1:] == w[order][:-1]
        nxt[order[:-1][same]] = lo[order][1:][same]
        count = nxt - lo
        row = np.repeat(np.arange(w.size), count)
        step = lo[row] + np.arange(row.size) - np.repeat(np.cumsum(count) - count, count)
        moves = np.maximum(step - moving[row] + 1, 0)
        at = _along(a[row], b[row], span[row], moves_to[row], legs.reach[w[row]], moves)
        out[step, legs.walkers[w[row]]] = at


_NEVER = 2**62  # moves to arrive for a walker of speed 0 short of its target


def _moves_needed(length: NDArray[np.float64], reach: NDArray[np.float64]) -> NDArray[np.int64]:
    """Moving steps of ``reach`` m to cover ``length`` m: the last one reaches or passes the target."""
    with np.errstate(divide="ignore", invalid="ignore"):
        moves = np.where(reach > 0, np.ceil(length / reach), _NEVER)
    return np.where(length <= reach, 1, moves).astype(np.int64)


def _along(
    start: NDArray[np.float64],
    target: NDArray[np.float64],
    length: NDArray[np.float64],
    need: NDArray[np.int64],
    reach: NDArray[np.float64],
    moves: NDArray[np.int64],
) -> NDArray[np.float64]:
    """Where a walker stands after ``moves`` moving steps of its leg (arrays broadcast; positions
    carry a trailing axis of 2): on the segment, or on the target from the ``need``-th move on."""
    ok = length > 0
    along = np.where(ok, moves * reach, 0.0) / np.where(ok, length, 1.0)
    at = start + (target - start) * along[..., None]
    out: NDArray[np.float64] = np.where((moves >= need)[..., None], target, at)
    return out


class _Legs:
    """The walkers' current legs: from ``start`` to ``target`` (``length`` m apart) by ``reach`` m a
    moving step, ``moved`` steps done, standing on the target from the ``need``-th."""

    def __init__(
        self,
        pos: NDArray[np.float64],
        target: NDArray[np.float64],
        reach: NDArray[np.float64],
        walkers: NDArray[np.int64],
        dt: float,
    ) -> None:
        self.walkers, self.dt = walkers, dt
        self.reach = reach[walkers]
        self.start = pos[walkers].copy()
        self.target = target[walkers].copy()
        self.moved = np.zeros(walkers.size, np.int64)
        vec = self.target - self.start
        self.length = np.sqrt(vec[:, 0] ** 2 + vec[:, 1] ** 2)
        self.need = _moves_needed(self.length, self.reach)
