"""The world of one run: movers, phones and the channel, streaming sightings and ground truth in chunks.

Only app users' phones advertise and scan. Each step: move everyone, find who is within the contact
distance of whom (ground truth, all agents present), and which scanning phone may hear which
advertising phone (spatial hash within each pair's own derived hearing radius, sim/reach.py: beyond
it that pair's packets are heard with probability below 1e-4), then draw each packet's RSSI and
whether it is received.
Radio work is done only for phones inside a scan window (the others hear nothing).
A chunk holds ``scenario.chunk`` seconds: memory is bounded by one chunk's sightings, never all pairs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.estimation import CalibrationTable
from proximity.schemes.duty import Phases
from proximity.sim.batching import BATCH_POINTS, BATCH_STEPS
from proximity.sim.bodies import BodyGrid
from proximity.sim.channel import carriage_schedule, heard_chance, heard_fading, hearing_radius, link_level
from proximity.sim.devicemodels import DeviceModels
from proximity.sim.duty import ADVERTISES_ONLY_IN_FOREGROUND
from proximity.sim.mobility import GROUP, STATIONARY, Movers
from proximity.sim.native import kernel as _kernel
from proximity.sim.native import native_kernel
from proximity.sim.neighbours import StaticGrid, close_pairs
from proximity.sim.reach import PairReach
from proximity.sim.scenario import Scenario
from proximity.sim.streams import Streams, hash_uniform
from proximity.times import SECONDS_PER_DAY

__all__ = ["BATCH_STEPS", "SightingChunk", "World", "native_kernel"]

_F = NDArray[np.float64]
_I = NDArray[np.int64]
_Piece = tuple[_I, _I | None, _F, _F]  # close-pair entries: keys, steps (None: one each), distance sum, min
Heard = tuple[_I, _I, _F, _F, _F, _F, _F]  # (scanner, advertiser) as indices into positions, time, level,
# RSSI, distance and the uniform that decided reception, of the packets heard before bodies are counted

COMPACT_KEYS = 500_000  # close-pair entries gathered before they are merged (bounds a chunk's memory)
CANDIDATES = 2_000_000  # (scanner, advertiser) candidates searched at once (a dense step's memory)
DENSE_KEYS = 1 << 22  # close-pair keys spanning fewer than this are merged by counting, not sorting
WINDOW = 60  # steps of one step at a time (a city) whose standing agents' pairs are found once


@dataclass(frozen=True, slots=True, eq=False)
class SightingChunk:
    """``[start, end)``: packets heard (scanner hears advertiser) and seconds each pair spent close.

    Close pairs are keyed ``(day * n + i) * n + j`` with i < j (``day`` = UTC day number): see
    :meth:`World.split_key`.
    """

    start: float
    end: float
    times: NDArray[np.float64]
    scanner: NDArray[np.int64]
    advertiser: NDArray[np.int64]
    rssi: NDArray[np.float64]
    distance: NDArray[np.float64]
    close_keys: NDArray[np.int64]
    close_seconds: NDArray[np.float64]
    close_distance_sum: NDArray[np.float64]  # per close pair: sum of its distances over close steps
    close_distance_min: NDArray[np.float64]  # ... and the smallest

    def __len__(self) -> int:
        return int(self.times.shape[0])


class World:
    """One run of ``scenario`` at ``adoption`` with ``seed``; iterate :meth:`chunks` once."""

    def __init__(
        self,
        scenario: Scenario,
        adoption: float,
        seed: int,
        *,
        truth: bool = True,
        calibration: CalibrationTable | None = None,
        owned: NDArray[np.bool_] | None = None,
    ) -> None:
        """``owned``: the agents of this shard of a split run (sim/run.py): only they scan, and only
        close pairs whose lower agent is owned are counted (default: everyone)."""
        if not 0.0 <= adoption <= scenario.ownership:
            raise ValueError(
                f"adoption must be in [0, ownership = {scenario.ownership}] (the share of all agents "
                f"carrying a phone running the app), got {adoption}"
            )
        self.scenario = scenario
        self.adoption = adoption
        self.truth = truth  # False: sightings only (close_keys stay empty)
        self.streams = Streams(seed)
        n = scenario.crowd.agents
        self.n = n
        self.owned = np.ones(n, np.bool_) if owned is None else np.asarray(owned, np.bool_)
        if self.owned.shape != (n,):
            raise ValueError(f"owned must hold one flag per agent ({n}), got shape {self.owned.shape}")
        channel = scenario.channel
        # Every per-agent draw happens for all agents (app user or not), each from its own stream,
        # so changing adoption changes who has the app (nested sets) and nothing else.
        self.movers = Movers(scenario.crowd, self.streams("mobility"), scenario.start, scenario.duration)
        self.app = self._adopters(adoption)
        self._users = np.flatnonzero(self.app)
        # where each phone is carried, per hour of the run (a Markov chain; sim/channel.py)
        hours = int(np.ceil(scenario.duration / 3600.0))
        self.carriage_hours = carriage_schedule(channel, self.streams("carriage"), n, hours)
        self.carriage = self.carriage_hours[:, 0]
        self.devices = DeviceModels.draw(self.streams("devices"), n, scenario, calibration)
        self.device_tx = self.devices.true_tx_offset
        self.device_rx = self.devices.true_rx_offset
        self.radius = hearing_radius(channel, self._pair_offsets())  # derived from the model, not chosen
        # ... and each pair's own radius from its fixed offsets, which the neighbour search uses; the
        # carriage changes by the hour, so a batch counts each phone at its loudest carriage of the
        # hours it spans (:meth:`_reach_at`); the table covers the whole run, loudest to quietest
        # (the per-hour losses are looked up from the int8 carriages where needed: n x hours float64s
        # held all run were 19 MB of a city shard)
        self._carriage_loss = np.asarray(channel.carriage_loss, np.float64)
        losses = self._hour_losses(0, hours)
        loss, most = losses.min(axis=1), losses.max(axis=1)
        quietest = float((self.device_tx - most).min() + (self.device_rx - most).min())
        self.reach = PairReach(channel, self.device_tx - loss, self.device_rx - loss, quietest=quietest)
        self._reach_hours: tuple[tuple[int, int], PairReach] | None = None
        # no two agents of one step are farther apart than the venue's diagonal (a margin for rounding)
        self._span = math.hypot(scenario.crowd.width, scenario.crowd.height) * (1 + 1e-9) + 1e-6
        duty = self.streams("duty")
        self.scan_phase = duty.random(n)
        self.advertise_phase = duty.random(n)
        self.duty = scenario.cycle
        # the owned app users scan, all app users advertise: their phases sorted (schemes/duty.py)
        self._scanners = self._users[self.owned[self._users]]
        self._scan_clock = Phases(self.scan_phase[self._scanners], self.duty.scan_on, self.duty.scan_period)
        self._advertise_clock = Phases(
            self.advertise_phase[self._users], self.duty.advertise_on, self.duty.advertise_period
        )
        self._switches: _F | None = None  # every enter and leave time, sorted (:meth:`_presence`)
        self._present_row: tuple[int, NDArray[np.bool_]] | None = None
        self._present_at: tuple[NDArray[np.bool_], _I, _I] | None = None
        self._still = np.flatnonzero(self.movers.kind == STATIONARY).astype(np.int64)
        self._static: tuple[_I, _I, _F, StaticGrid] | None = None
        self._window: tuple[int, NDArray[np.bool_], _I, _I, _F, StaticGrid] | None = None
        self._standing_pairs: tuple[NDArray[np.bool_], _I, _I, _F, _I] | None = None
        self._standing_keys: tuple[_I | None, int, _I] = (None, 0, np.zeros(0, np.int64))  # gi, day, keys
        self._encounter_key = self.streams.key("encounter")
        # per-packet draws hashed from (scanner, advertiser, step): no generator state, so a packet's
        # draws do not depend on the order pairs are found in (search cells, blocks, the radius)
        self._fading_key = self.streams.key("fading")
        self._radio_key = self.streams.key("radio")
        self._offset_key = self.streams.key("packet-time")
        # phones whose app advertises only in the foreground (duty.ADVERTISES_ONLY_IN_FOREGROUND)
        names = [name for name, _ in scenario.os_mix]
        shares = np.asarray([share for _, share in scenario.os_mix], np.float64)
        self.os = self.streams("os").choice(len(names), size=n, p=shares / shares.sum())
        limited = [
            k for k, name in enumerate(names) if (scenario.scheme, name) in ADVERTISES_ONLY_IN_FOREGROUND
        ]
        self._foreground_only = np.isin(self.os, limited)
        self._foreground_key = self.streams.key("foreground")
        # "native": the C packet kernel where it is built; "numpy": the reference (tests compare them)
        self.kernel = "native" if _kernel is not None else "numpy"

    def _adopters(self, adoption: float) -> NDArray[np.bool_]:
        """Who carries a phone running the app: smartphone owners (``ownership``), each adopting with
        probability adoption / ownership, so the share of all agents is ``adoption``; with
        ``adoption_by = "group"`` a group's members take their leader's draw (they adopt together), with
        ``"household"`` a household's members take their first member's.
        Draws do not depend on ``adoption``: higher adoption is a superset of users."""
        sc = self.scenario
        owns = self.streams("ownership").random(self.n) < sc.ownership
        draw = self.streams("adoption").random(self.n)
        if sc.adoption_by == "group":
            draw = draw[self.movers.leader]
        elif sc.adoption_by == "household":
            draw = draw[self.movers.household_head]
        out: NDArray[np.bool_] = owns & (draw < adoption / sc.ownership)
        return out

    def _in_foreground(self, t: float, agents: NDArray[np.int64] | None = None) -> NDArray[np.bool_]:
        """Whether each agent's app (or each of ``agents``') is in the foreground at ``t``: per agent and
        5-minute block, with probability ``foreground_share`` (hashed draws: no state, same for every
        chunking)."""
        who = np.arange(self.n, dtype=np.int64) if agents is None else agents
        block = np.full(who.size, int(t // 300.0), np.int64)
        return hash_uniform(self._foreground_key, who, block) < self.scenario.foreground_share

    def _presence(self, times: NDArray[np.float64]) -> NDArray[np.bool_]:
        """:meth:`Movers.present` at ``times`` (a column); one time's row is the same array until someone
        enters or leaves (it changes only as a time passes an ``enter`` or ``leave``)."""
        if times.shape[0] != 1:
            return self.movers.present(times)
        if self._switches is None:
            self._switches = np.unique(np.concatenate((self.movers.enter, self.movers.leave)))
        k = int(np.searchsorted(self._switches, times[0, 0], side="right"))
        if self._present_row is None or self._present_row[0] != k:
            self._present_row = (k, self.movers.present(times))
        return self._present_row[1]

    def _pair_offsets(self) -> NDArray[np.float64]:
        """Fixed dB offsets of sample (transmitter, receiver) pairs of this run's phones: devices and
        carriages (each agent with the next one; at most 65,536 pairs: the radius needs the mix)."""
        loss = np.asarray(self.scenario.channel.carriage_loss, np.float64)[self.carriage]
        tx = (self.device_tx - loss)[:65_536]
        rx = np.roll(self.device_rx - loss, -1)[:65_536]
        return tx + rx if tx.size else np.zeros(1)

    def _close_one_step(self, presence: NDArray[np.bool_], step: int) -> list[tuple[_I, _I, _F]]:
        """This step's close pairs (i < j, i owned) among those present (``presence``: one row) and their
        distances, without searching again agents who stand: pairs of agents who never move are found
        once; pairs of walkers who pause through a whole window of WINDOW steps (with each other and
        with the still) once per window; those who may move are searched against a grid of everyone
        standing and among themselves, in one call (:meth:`StaticGrid.movers`: the same pairs, and
        distances, as one search over everyone). In
        two parts: the standing's pairs (the same arrays while the window and the presence last), and
        the movers'."""
        radius = self.scenario.contact_distance
        pos = self.movers.pos
        if self._static is None:  # built at the first step: positions may be set after __init__
            still = self._still
            i, j, d = close_pairs(pos[still], radius)
            ours = self.owned[still[i]]  # still is ascending, so still[i] < still[j]
            self._static = (
                still[i[ours]],
                still[j[ours]],
                d[ours],
                StaticGrid(pos[still].copy(), radius, np.zeros(2), self.movers.size),
            )
        if self._window is None or step >= self._window[0]:
            self._window, self._standing_pairs = self._stand(step), None
        _, standing, wi, wj, wd, grid = self._window
        present = presence[0]  # one row, the same array while nobody enters or leaves (:meth:`_presence`)
        if self._standing_pairs is None or self._standing_pairs[0] is not presence:
            # the pairs of the still and the standing present, and who may move: the same all window
            # long while the presence is
            si, sj, sd, _ = self._static
            both, pair = present[si] & present[sj], present[wi] & present[wj]
            self._standing_pairs = (
                presence,
                np.concatenate((si[both], wi[pair])),
                np.concatenate((sj[both], wj[pair])),
                np.concatenate((sd[both], wd[pair])),
                np.flatnonzero(present & ~standing),
            )
        _, pi, pj, pd, movers = self._standing_pairs
        return [(pi, pj, pd), grid.movers(pos[movers], movers, present, self.owned)]

    def _stand(self, step: int) -> tuple[int, NDArray[np.bool_], _I, _I, _F, StaticGrid]:
        """Who stands from ``step`` through the window's last step (the still, walkers whose pause
        outlasts it, and their followers), their close pairs other than still-still ones whose lower agent
        is owned (at any step of the window, present or not), and a grid of them all."""
        sc, m = self.scenario, self.movers
        end = step + WINDOW
        last = sc.start + (end - 1) * sc.step  # a walker moves at a step at or after its pause ends
        walker = m.walks & (m.pause_until > last)
        standing = (m.kind == STATIONARY) | walker | (m.follows & walker[m.leader])
        idle = np.flatnonzero(standing & (m.kind != STATIONARY))
        radius, pos = sc.contact_distance, m.pos
        assert self._static is not None
        a, b, ad = self._static[3].query(pos[idle])
        i, j, d = close_pairs(pos[idle], radius)
        pa, pb = idle[a], self._still[b]
        wi = np.concatenate((np.minimum(pa, pb), idle[i]))  # idle is ascending: idle[i] < idle[j]
        wj = np.concatenate((np.maximum(pa, pb), idle[j]))
        mine = self.owned[wi]
        grid = StaticGrid(pos[standing].copy(), radius, np.zeros(2), m.size, ids=np.flatnonzero(standing))
        return end, standing, wi[mine], wj[mine], np.concatenate((ad, d))[mine], grid

    def _truth(self, moved: _F, presence: NDArray[np.bool_], step: int) -> list[tuple[_I, _I, _F]]:
        """The batch's close pairs as indices into its step-major positions (step * n + agent), i < j,
        with their distances, in parts; a shard keeps those whose lower agent it owns."""
        if not self.truth:
            return []
        if presence.shape[0] == 1 and self._still.size:
            return self._close_one_step(presence, step)  # its lower agents are owned already
        here = np.flatnonzero(presence.ravel())
        i, j, d = close_pairs(moved.reshape(-1, 2)[here], self.scenario.contact_distance, here // self.n)
        gi, gj = here[i], here[j]
        if not self.owned.all():  # a shard counts the close pairs whose lower agent it owns
            mine = self.owned[gi % self.n]
            gi, gj, d = gi[mine], gj[mine], d[mine]
        return [(gi, gj, d)]

    def companions(self, i: int, j: int) -> bool:
        """Whether agents i and j walk in one group or live in one household (companions, whom manual
        tracing finds anyway)."""
        kind, leader, home = self.movers.kind, self.movers.leader, self.movers.household_head
        return bool((kind[i] == GROUP and kind[j] == GROUP and leader[i] == leader[j]) or home[i] == home[j])

    def split_key(self, keys: NDArray[np.int64]) -> tuple[NDArray[np.int64], ...]:
        """(day, i, j) of close-pair keys."""
        n = np.int64(self.n)
        return keys // (n * n), (keys // n) % n, keys % n

    def chunks(self) -> Iterator[SightingChunk]:
        sc = self.scenario
        steps = int(np.floor(sc.duration / sc.step + 1e-9))
        per_chunk = max(1, round(sc.chunk / sc.step))
        for first in range(0, steps, per_chunk):
            yield self._chunk(first, min(first + per_chunk, steps))

    def _chunk(self, first: int, last: int) -> SightingChunk:
        sc = self.scenario
        parts: list[tuple[NDArray[Any], ...]] = []
        merged: tuple[_I, _I, _F, _F] = (
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0),
            np.zeros(0),
        )
        pieces: list[_Piece] = []
        pending = 0
        batch = max(1, min(BATCH_STEPS, BATCH_POINTS // self.n))
        for lo in range(first, last, batch):
            heard, close = self._batch(lo, min(lo + batch, last))
            parts.append(heard)
            pieces += [(keys, None, d, d) for keys, d in close]
            pending += sum(keys.size for keys, _ in close)
            if pending > COMPACT_KEYS or lo + batch >= last:  # a pair close for many steps: one entry
                merged = _merge_close([merged, *pieces])
                pieces, pending = [], 0
        close_keys, counts, dist_sum, dist_min = merged
        times, scanner, advertiser, rssi, distance = (np.concatenate([p[c] for p in parts]) for c in range(5))
        return SightingChunk(
            start=sc.start + first * sc.step,
            end=sc.start + last * sc.step,
            times=times,
            scanner=scanner,
            advertiser=advertiser,
            rssi=rssi,
            distance=distance,
            close_keys=close_keys.astype(np.int64),
            close_seconds=counts.astype(np.float64) * sc.step,
            close_distance_sum=dist_sum * sc.step,
            close_distance_min=dist_min,
        )

    def _batch(self, first: int, last: int) -> tuple[tuple[NDArray[Any], ...], list[tuple[_I, _F]]]:
        """Steps [first, last) at once: each step's positions are laid side by side along x, far enough
        apart that no pair spans two steps, so one neighbour search serves them all. Returns the packets
        and the close pairs' keys and distances in parts (a part the same arrays as a step before: the
        same pairs)."""
        sc = self.scenario
        dt = sc.step
        n = np.int64(self.n)
        corridor = sc.channel.body_corridor  # a whole number of body cells (sim/bodies.py)
        gap = np.ceil((sc.crowd.width + 3.0 * min(self.reach.max_radius, self._span)) / corridor) * corridor
        steps = last - first
        times = sc.start + np.arange(first, last, dtype=np.float64)[:, None] * dt
        if steps == 1:  # a city: the walkers on the move are moved in place
            moved = self.movers.step(float(times[0, 0]), dt)[None]
        else:
            moved = self.movers.advance(times[:, 0], dt)  # (steps, n, 2)
        presence = self._presence(times)
        days = ((sc.start + np.arange(first, last) * dt) // SECONDS_PER_DAY).astype(np.int64)
        close = []
        for gi, gj, close_d in self._truth(moved, presence, first):
            if self._standing_keys[0] is gi and self._standing_keys[1] == days[0]:
                keys = self._standing_keys[2]  # a step's standing pairs again: their keys again
            else:
                keys = (days[gi // n] * n + gi % n) * n + gj % n
                if self._standing_pairs is not None and gi is self._standing_pairs[1]:
                    self._standing_keys = (gi, int(days[0]), keys)
            close.append((keys, close_d))
        if steps > 1:
            moved[:, :, 0] += np.arange(steps, dtype=np.float64)[:, None] * gap  # steps side by side along x
        positions = moved.reshape(-1, 2)
        if steps == 1:  # a city: one step a batch, its phones on found from their phases
            scan, adv, here = self._phones(float(times[0, 0]), presence)
        else:
            scan, adv, here = self._phones_of_batch(times, presence)
        # the numpy path: scanners in blocks, so one block's candidate pairs stay near CANDIDATES (a dense
        # city); the C kernel holds no candidates, only heard packets: one call
        area = max(sc.crowd.width * sc.crowd.height, 1e-9)
        per_scanner = adv.size / max(last - first, 1) * min(1.0, np.pi * self.radius**2 / area) + 1.0
        native = self.kernel == "native" and _kernel is not None
        block = max(1, scan.size if native else int(CANDIDATES // per_scanner))  # scan, adv: ascending
        # other people's bodies (the kernel counts them on its own; the numpy path bins them only if
        # some heard link is short enough to be blocked, once per batch)
        bodies = (
            functools.cache(lambda: BodyGrid(positions[here], corridor)) if sc.channel.body_loss > 0 else None
        )
        reach = self._reach_at(first, last)
        parts = [
            self._packets(scan[k : k + block], adv, positions, first, here, reach, bodies)
            for k in range(0, max(scan.size, 1), block)
        ]
        if len(parts) == 1:  # the kernel's one call: no copy
            return parts[0], close
        return tuple(np.concatenate([p[c] for p in parts]) for c in range(5)), close

    def _phones_of_batch(self, times: NDArray[np.float64], presence: NDArray[np.bool_]) -> tuple[_I, _I, _I]:
        """Scanning and advertising phones, and everyone present, of all the batch's steps at once (one
        row per step), flattened like positions (step * n + agent)."""
        steps = times.shape[0]
        users = self._users
        scanning, advertising = np.zeros((2, steps, self.n), np.bool_)
        phones = presence[:, users]
        scanning[:, users] = phones & self.owned[users] & self.duty.scanning(times, self.scan_phase[users])
        advertising[:, users] = phones & self.duty.advertising(times, self.advertise_phase[users])
        if self._foreground_only.any():
            foreground = np.stack([self._in_foreground(float(t)) for t in times[:, 0]])
            advertising = advertising & (~self._foreground_only | foreground)
        return (
            np.flatnonzero(scanning.ravel()),
            np.flatnonzero(advertising.ravel()),
            np.flatnonzero(presence.ravel()),
        )

    def _phones(self, t: float, presence: NDArray[np.bool_]) -> tuple[_I, _I, _I]:
        """:meth:`_phones_of_batch` of one step (``presence``: one row): the phones on at ``t`` from their
        sorted phases (only they are tested); who is present and the app users among them are kept
        while the presence is (:meth:`_presence`)."""
        present = presence[0]
        if self._present_at is None or self._present_at[0] is not presence:
            here = np.flatnonzero(present)
            self._present_at = (presence, here, self._users[present[self._users]])
        _, here, users = self._present_at
        scan = self._scanners[self._scan_clock.at(t)]
        scan = scan[present[scan]]
        if self._advertise_clock.on >= self._advertise_clock.period:
            adv = users
        else:
            adv = self._users[self._advertise_clock.at(t)]
            adv = adv[present[adv]]
        if self._foreground_only.any():
            adv = adv[~self._foreground_only[adv] | self._in_foreground(t, adv)]
        return scan, adv, here

    def _packets(
        self,
        scan: NDArray[np.int64],
        adv: NDArray[np.int64],
        positions: NDArray[np.float64],
        first: int,
        present: NDArray[np.int64],
        reach: PairReach,
        bodies: Callable[[], BodyGrid] | None = None,
    ) -> tuple[NDArray[Any], ...]:
        """(time, scanner, advertiser, RSSI, distance) of the packets ``scan`` receive from ``adv``, in
        a fixed order (step, scanner, advertiser) whichever path finds them: the C kernel where it is
        built (sim/_kernel.c, bodies counted inside it on ``present``), else the numpy reference
        (:meth:`_heard_numpy`, then :meth:`_bodies`); they agree."""
        if self.kernel != "native" or _kernel is None:
            return self._bodies(*self._heard_numpy(scan, adv, positions, first, reach), positions, bodies)
        # the C kernel: one pass over the candidate pairs, without candidate arrays; its packets are final
        tx, rx, enter, carriage, loss, params, keys = self._kernel_arrays()
        raw = _kernel.packets(
            np.ascontiguousarray(positions, np.float64),
            np.ascontiguousarray(scan, np.int64),
            np.ascontiguousarray(adv, np.int64),
            self.n,
            first,
            reach.tx,
            reach.rx,
            reach.grid,
            reach.table,
            tx,
            rx,
            enter,
            carriage,
            carriage.shape[1],
            loss,
            params,
            keys,
            np.ascontiguousarray(present, np.int64),
        )
        a, b = (np.frombuffer(x, np.int64) for x in raw[:2])
        at, _, rssi, d, _ = (np.frombuffer(x, np.float64) for x in raw[2:])
        # in the order of scan, then adv (both ascending): the fixed order (step, scanner, advertiser)
        return at, scan[a] % self.n, adv[b] % self.n, rssi, d

    def _reach_at(self, first: int, last: int) -> PairReach:
        """Pair radii for steps [first, last): each phone at its loudest carriage of the hours their packets
        fall in (a whole-day run would otherwise search nearly every phone as if held in hand all day)."""
        sc = self.scenario
        hours = self.carriage_hours.shape[1]
        key = (min(int(first * sc.step // 3600.0), hours - 1), min(int(last * sc.step // 3600.0), hours - 1))
        if self._reach_hours is None or self._reach_hours[0] != key:
            loss = self._hour_losses(key[0], key[1] + 1).min(axis=1)
            self._reach_hours = (key, self.reach.at(self.device_tx - loss, self.device_rx - loss))
        return self._reach_hours[1]

    def _hour_losses(self, first: int, last: int) -> _F:
        """Each phone's carriage loss (dB) in hours [first, last) of the run, one column an hour."""
        out: _F = self._carriage_loss[self.carriage_hours[:, first:last]]
        return out

    def _kernel_arrays(self) -> tuple[NDArray[Any], ...]:
        """What the C kernel reads besides positions: per-agent arrays, the channel's numbers, the keys."""
        sc = self.scenario
        ch = sc.channel
        params = np.array(
            [sc.start, sc.step, ch.rssi_at_1m, ch.path_loss_exponent, ch.far_exponent, ch.breakpoint,
             ch.min_distance, ch.encounter_sigma, ch.far_shadow_sigma, ch.encounter_seconds, ch.fading_sigma,
             ch.fading_slope, ch.far_fading_sigma, ch.packet_loss, ch.sensitivity_dbm, ch.sensitivity_width,
             self._span, ch.body_loss, ch.body_corridor],
            np.float64,
        )  # fmt: skip
        keys = np.array([self._offset_key, self._encounter_key, self._radio_key, self._fading_key], np.uint64)
        return (
            np.ascontiguousarray(self.device_tx, np.float64),
            np.ascontiguousarray(self.device_rx, np.float64),
            np.ascontiguousarray(self.movers.enter, np.float64),
            np.ascontiguousarray(self.carriage_hours, np.int8),
            np.asarray(ch.carriage_loss, np.float64),
            params,
            keys,
        )

    def _heard_numpy(
        self,
        scan: NDArray[np.int64],
        adv: NDArray[np.int64],
        positions: NDArray[np.float64],
        first: int,
        reach: PairReach,
    ) -> Heard:
        """The numpy reference of the packet kernel: every candidate pair as arrays, then its draws."""
        sc = self.scenario
        channel = sc.channel
        n = np.int64(self.n)
        a, b, d = reach.pairs(scan, adv, positions, self.n, self._span)
        rx_g, tx_g = scan[a], adv[b]
        keep = rx_g != tx_g
        rx_g, tx_g, d = rx_g[keep], tx_g[keep], d[keep]
        order = np.lexsort((tx_g, rx_g))  # the fixed order (step, scanner, advertiser)
        rx_g, tx_g, d = rx_g[order], tx_g[order], d[order]
        rx, tx = rx_g % n, tx_g % n
        step = first + rx_g // n
        at = sc.start + step * sc.step + hash_uniform(self._offset_key, rx, tx, step) * sc.step
        # at an epoch's 1.6e9 s a uniform within 1.2e-7 of 1 rounds the time up to the next step's
        # start: every packet stays inside its step, [start of step, start of the next)
        at = np.minimum(at, np.nextafter(sc.start + (step + 1) * sc.step, -np.inf))
        # an encounter starts when the later of the two arrives; its offset lasts encounter_seconds
        began = np.maximum(self.movers.enter[tx], self.movers.enter[rx])
        encounter = np.floor((at - began) / channel.encounter_seconds).astype(np.int64)
        hour = np.minimum(((at - sc.start) // 3600.0).astype(np.int64), self.carriage_hours.shape[1] - 1)
        level, depth = link_level(
            channel,
            d,
            tx,
            rx,
            encounter,
            carriage_tx=self.carriage_hours[tx, hour],
            carriage_rx=self.carriage_hours[rx, hour],
            device_tx=self.device_tx,
            device_rx=self.device_rx,
            encounter_key=self._encounter_key,
        )
        u = hash_uniform(self._radio_key, rx, tx, step)
        ok = u < heard_chance(channel, level, depth)
        rx_g, tx_g, rx, tx, step = rx_g[ok], tx_g[ok], rx[ok], tx[ok], step[ok]
        at, level, depth, d, u = at[ok], level[ok], depth[ok], d[ok], u[ok]
        rssi = level + heard_fading(channel, depth, u, hash_uniform(self._fading_key, rx, tx, step))
        return rx_g, tx_g, at, level, rssi, d, u

    def _bodies(
        self,
        rx_g: NDArray[np.int64],
        tx_g: NDArray[np.int64],
        at: NDArray[np.float64],
        level: NDArray[np.float64],
        rssi: NDArray[np.float64],
        d: NDArray[np.float64],
        u: NDArray[np.float64],
        positions: NDArray[np.float64],
        bodies: Callable[[], BodyGrid] | None,
    ) -> tuple[NDArray[Any], ...]:
        """Both paths' last stage, on the packets heard before bodies are counted (``u`` < P(heard) at
        ``level``): other people's bodies on the line of sight lower the level and the RSSI (so a packet
        not heard without them is not heard with them), and a packet with bodies in the way is drawn
        again with its own uniform (its fading given reception does not depend on the level)."""
        channel = self.scenario.channel
        n = np.int64(self.n)
        # only links BodyGrid.count walks (farther than two cells, up to the breakpoint) can be blocked
        walk = np.zeros(0, np.int64)
        if bodies is not None:
            walk = np.flatnonzero((d > 2.0 * channel.body_corridor) & (d <= channel.breakpoint))
        if bodies is not None and walk.size:
            tx_w, rx_w, d_w = tx_g[walk], rx_g[walk], d[walk]
            blocked = bodies().count(positions[tx_w], positions[rx_w], d_w, channel.breakpoint)
            hit = blocked > 0
            hit_at = walk[hit]
            lower = channel.body_loss * blocked[hit]
            ok = np.ones(d.size, np.bool_)
            ok[hit_at] = u[hit_at] < heard_chance(
                channel, level[hit_at] - lower, channel.fading_depth(d_w[hit])
            )
            rssi = rssi.copy()
            rssi[hit_at] -= lower
            rx_g, tx_g, at, rssi, d = rx_g[ok], tx_g[ok], at[ok], rssi[ok], d[ok]
        return at, rx_g % n, tx_g % n, rssi, d


def _merge_close(pieces: list[_Piece]) -> tuple[_I, _I, _F, _F]:
    """One entry per close-pair key (ascending) of the pieces' entries (keys, steps or None for one
    each, distances summed, smallest): steps summed, distances summed (in entry order) and their
    minimum. Keys within a few million of each other (a venue's pairs) are counted into a dense array,
    others (a city's) sorted, the keys of pieces that are the same array (a window's standing pairs,
    step after step) sorted once (np.unique's inverse places them: no lookups); all sum in the same
    order, so give the same numbers."""
    distinct = {id(p[0]): p[0] for p in pieces}
    full = [k for k in distinct.values() if k.size]
    counts = np.concatenate([np.ones(p[0].size, np.int64) if p[1] is None else p[1] for p in pieces])
    dist_sum = np.concatenate([p[2] for p in pieces])
    dist_min = np.concatenate([p[3] for p in pieces])
    if full and max(int(k.max()) for k in full) - min(int(k.min()) for k in full) < DENSE_KEYS:
        keys = np.concatenate([p[0] for p in pieces])
        low = keys.min()
        index = keys - low
        span = int(index.max()) + 1
        steps = np.bincount(index, counts, span)
        pick = np.flatnonzero(steps)
        merged = pick + low
    else:
        merged, inverse = np.unique(np.concatenate(list(distinct.values())), return_inverse=True)
        ends = np.cumsum([k.size for k in distinct.values()])
        found = dict(zip(distinct, np.split(inverse, ends[:-1]), strict=True))
        index = np.concatenate([found[id(p[0])] for p in pieces])
        span = merged.size
        steps = np.bincount(index, counts, span)
        pick = np.arange(span)
    smallest = np.full(span, np.inf)
    np.minimum.at(smallest, index, dist_min)
    total = np.bincount(index, dist_sum, span).astype(np.float64)
    return merged.astype(np.int64), steps[pick].astype(np.int64), total[pick], smallest[pick]


def _cat(parts: list[Any], dtype: type[Any]) -> Any:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)
