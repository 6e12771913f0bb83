"""One run end to end: world -> the real log -> the real matcher -> real estimators -> tidy result rows.

Streamed a chunk at a time: the chunk's sightings go into the shared encounter log (devices.py) and
are read back as stored; ONE real matcher call matches every app user's keys (each one a potential
index case) against all phones' observations of the chunk (results are per sighting, so this is what
each phone's own call would find); each (phone, counterpart) pair's logged and matched sightings wait
in ledgers (ledger.py) until the pair is settled, then the real estimators judge ALL settled pairs in
one batch call per estimator (``estimate_batch``) with each phone's own calibration (its model's row
of the table, applied to its RSSIs) and the counterpart's advertised TX power.

Definitions (docs/simulation.md):

- true_contacts: unordered pairs of agents (app or not) within ``contact_distance`` for at least
  ``contact_minutes`` on one UTC day, from positions.
- detected: true contacts where both carry the app and the estimator, run on the pair's logged
  sightings (either phone's log of the other), says close contact.
- flagged / false_positives: app-user pairs the estimator says close / of those, not true contacts.
- notified (directional): ordered app-user pairs (i, j), every app user i a potential index case,
  where j's phone, matching i's keys against its own log, reports the exposure, and (i, j) is a true
  contact; notifiable = 2 x app_contacts; false_notifications: reported but not a true contact.
- companions: true contacts between members of one group (who walk together; manual tracing finds
  them); strangers: the rest. Each gets its own fraction traced.
- fraction_traced = detected / true_contacts (expected ~ adoption^2 x the estimator's sensitivity).
  Every fraction carries its exact (Clopper-Pearson) 95 % interval over contacts of this run.
"""

from __future__ import annotations

import functools
import math
import resource
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.arrays import distinct
from proximity.estimation import BatchVerdicts, EstimationSettings, estimate_batch, roc_auc
from proximity.estimation.estimators import READS_CALIBRATION_CONFIDENCE
from proximity.matching import KeyMatch, PreparedKeys
from proximity.schemes.published import KeyBatch, batches_of
from proximity.schemes.registry import scheme_record
from proximity.sightings import Observations
from proximity.sim.contacts import contact_table
from proximity.sim.devicemodels import DeviceModels
from proximity.sim.devices import AppDedup, MemoryLog, SharedLog
from proximity.sim.intervals import clopper_pearson
from proximity.sim.ledger import CloseTime, HeardPairs
from proximity.sim.mobility import GROUP
from proximity.sim.phones import Phones
from proximity.sim.scenario import Scenario
from proximity.sim.world import World

__all__ = ["ResultRow", "RunResult", "ShardResult", "combine", "run_shard", "run_simulation", "shard_owner"]


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One tidy row: (scenario, adoption, estimator, seed) and what came out; ``*_low``/``*_high``
    are exact 95 % intervals over this run's contacts (Clopper-Pearson)."""

    scenario: str
    scheme: str
    adoption: float
    estimator: str
    seed: int
    agents: int
    app_users: int
    true_contacts: int
    companion_contacts: int
    stranger_contacts: int
    app_contacts: int
    detected: int
    detected_companions: int
    detected_strangers: int
    flagged: int
    false_positives: int
    notifiable: int
    notified: int
    false_notifications: int
    fraction_traced: float
    fraction_traced_low: float
    fraction_traced_high: float
    traced_companions: float
    traced_strangers: float
    traced_strangers_low: float
    traced_strangers_high: float
    sensitivity: float
    sensitivity_low: float
    sensitivity_high: float
    pooled_pair_auc: float
    sightings: int
    logged: int
    hearing_radius_m: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True, eq=False)
class RunResult:
    rows: list[ResultRow]
    # per estimator: (scores, labels) of every app-user pair that heard each other (for ROC plots)
    scores: dict[str, tuple[NDArray[np.float64], NDArray[np.bool_]]] = field(default_factory=dict)
    # how much the run held at its peak (pairs, rows) and did (chunks, matcher calls)
    stats: dict[str, int] = field(default_factory=dict)
    # the contact-level table, column by column (sim/contacts.py); empty with contact_table = false
    contacts: dict[str, NDArray[Any]] = field(default_factory=dict)


Pair = tuple[int, int]
Columns = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]
# (phone, counterpart) of each settled pair and each estimator's verdicts on it
Judged = tuple[NDArray[np.int64], NDArray[np.int64], dict[str, BatchVerdicts]]


def run_simulation(
    scenario: Scenario,
    adoption: float,
    seed: int,
    estimators: Sequence[str] | None = None,
    *,
    progress: Callable[[float], None] | None = None,
    log_directory: str | Path | None = None,
    shards: int = 1,
) -> RunResult:
    """Simulate ``scenario`` at ``adoption`` with ``seed``; one row per estimator.

    ``shards`` > 1 runs the phones in that many shards one after the other in this process (the
    result is identical; :func:`proximity.sim.split.run_split` runs them on Dask workers). With
    ``log = "sqlite"`` the shared encounter log is a temporary file in ``log_directory``.
    """
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards must be a whole number >= 1, got {shards!r}")
    estimators = list(estimators or scenario.estimators)
    parts = []
    for shard in range(shards):
        part_progress = None
        if progress is not None:
            part_progress = _scaled(progress, shard, shards)
        parts.append(
            run_shard(
                scenario,
                adoption,
                seed,
                estimators,
                shard,
                shards,
                progress=part_progress,
                log_directory=log_directory,
            )
        )
    return combine(scenario, adoption, seed, estimators, parts)


def _scaled(progress: Callable[[float], None], shard: int, shards: int) -> Callable[[float], None]:
    return lambda done: progress((shard + done) / shards)


@dataclass(frozen=True, slots=True, eq=False)
class WorldFacts:
    """What combining shards needs of the world (every shard's is the same): who has the app, who
    walks in which group, who lives in which household, the hearing radius; so the combining process
    does not rebuild the world."""

    n: int
    app: NDArray[np.bool_]
    kind: NDArray[np.int8]
    leader: NDArray[np.int64]
    household: NDArray[np.int64]  # each agent's household's first member (its own number without)
    radius: float

    @classmethod
    def of(cls, world: World) -> WorldFacts:
        movers = world.movers
        return cls(world.n, world.app, movers.kind, movers.leader, movers.household_head, world.radius)

    def companions(self, i: int, j: int) -> bool:
        """Whether agents i and j walk in one group or live in one household (as
        :meth:`World.companions`)."""
        same_group = self.kind[i] == GROUP and self.kind[j] == GROUP and self.leader[i] == self.leader[j]
        return bool(same_group or self.household[i] == self.household[j])

    def companion_codes(self, codes: NDArray[np.int64]) -> NDArray[np.bool_]:
        """:meth:`companions` of each pair code ``i * n + j``."""
        i, j = np.divmod(codes, np.int64(self.n))
        group = (self.kind[i] == GROUP) & (self.kind[j] == GROUP) & (self.leader[i] == self.leader[j])
        out: NDArray[np.bool_] = group | (self.household[i] == self.household[j])
        return out


@dataclass(frozen=True, slots=True, eq=False)
class ShardResult:
    """What one shard of a run found: its phones' judgements and the true contacts it owns (pairs
    whose lower agent is its own), to be combined (:func:`combine`) in a fixed order. Sets of pairs
    (i, j) are sorted distinct int64 codes ``i * n + j`` (n agents): a city day's hundreds of
    thousands of pairs as Python tuples cost ~160 bytes each in the worker and again in the client."""

    shard: int
    shards: int
    true_pairs: NDArray[np.int64]  # (i, j), i < j
    settled: list[tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]]
    flagged: dict[str, NDArray[np.int64]]  # (i, j), i < j
    reported: dict[str, NDArray[np.int64]]  # (index case, phone)
    verdicts: dict[str, dict[Pair, tuple[bool, float]]]
    notified_at: dict[str, dict[Pair, float]]
    codes: dict[str, list[NDArray[np.int64]]]
    scores: dict[str, list[NDArray[np.float64]]]
    sightings: int
    logged: int
    stats: dict[str, int]
    world: WorldFacts


def shard_owner(n: int, shards: int) -> NDArray[np.int64]:
    """Which shard owns each agent (as scanner, and as the lower agent of a close pair): agent
    modulo shards, so every shard gets a share of each kind of mover (agents are laid out by kind)."""
    return np.arange(n, dtype=np.int64) % max(1, shards)


def run_shard(
    scenario: Scenario,
    adoption: float,
    seed: int,
    estimators: Sequence[str],
    shard: int = 0,
    shards: int = 1,
    *,
    progress: Callable[[float], None] | None = None,
    log_directory: str | Path | None = None,
) -> ShardResult:
    """One shard of a run: the whole world moves (cheap), but only this shard's phones scan, log,
    match and judge, and only its close pairs are counted. Every random draw is per agent or hashed
    per (scanner, advertiser, step), so a shard's sightings are exactly the unsplit run's rows of
    its scanners."""
    if not (isinstance(shards, int) and shards >= 1 and isinstance(shard, int) and 0 <= shard < shards):
        raise ValueError(f"shard must be in [0, shards) with shards >= 1, got {shard} of {shards}")
    estimators = list(estimators)
    world = World(scenario, adoption, seed, owned=shard_owner(scenario.crowd.agents, shards) == shard)
    n = world.n
    record = scheme_record(scenario.scheme)
    gaen = record.metadata_length is not None  # the scheme sends metadata (GAEN's AEM)
    users = np.flatnonzero(world.app).astype(np.int64)
    end = scenario.start + scenario.duration
    devices = world.devices
    phones = Phones(
        scenario.scheme,
        users,
        n,
        scenario.start,
        end,
        world.streams("keys"),
        devices.tx_power,
        devices.confidence,
    )
    # every app user is a potential index case: everyone's keys are matched against every log
    published, owners = _publish(phones, users)
    matching = _Matching(scenario.scheme, published, owners)
    forget = scenario.forget
    truth = CloseTime(n, scenario.contact_minutes * 60.0, forget, record=scenario.contact_table)
    heard = HeardPairs(n, forget, scenario.hold)
    matched = HeardPairs(n, forget, scenario.hold)
    same = True  # matched holds what heard holds
    judge = _Judge(scenario, estimators, devices)
    dedup = AppDedup(record.dedup_seconds) if record.dedup_seconds is not None else None
    slots = np.int64(phones.slots)
    true_pairs = PairCodes(n)
    sightings = calls = chunks = 0
    log: SharedLog | MemoryLog = (
        SharedLog(scenario.scheme, log_directory) if scenario.log == "sqlite" else MemoryLog(scenario.scheme)
    )
    with log:
        for chunk in world.chunks():
            chunks += 1
            truth.add(chunk.close_keys, chunk.close_seconds, chunk.end, chunk.close_distance_sum,
                      chunk.close_distance_min)  # fmt: skip
            sightings += len(chunk)
            now = chunk.end
            # every row (no copy), or those the app's rule keeps
            scanner, advertiser, times, rssi = chunk.scanner, chunk.advertiser, chunk.times, chunk.rssi
            if dedup is not None and len(chunk):
                # (scanner, advertiser, ID slot) names the (scanner, ID) the app's rule keys on
                slot = phones.slot(chunk.times)
                code = (chunk.scanner * np.int64(n) + chunk.advertiser) * slots + slot
                keep = dedup.keep_keys(code, chunk.times, time_ordered=True)  # step order
                scanner, advertiser, times, rssi = scanner[keep], advertiser[keep], times[keep], rssi[keep]
            ids, aem = phones.broadcast(advertiser, times)
            own = phones.broadcast(scanner, times)[0] if isinstance(log, SharedLog) else None  # stored there
            obs, _ = log.write(scanner, own, ids, times, rssi, aem if gaen else None, chunk.start, now)
            # the chunk's columns are dropped as soon as they are used (the ledgers keep their own
            # copies), so its ~70 MB of a city's minute are not held through settling nor the next chunk
            del chunk, ids, aem, own, rssi
            # The chunk's row ids are first..written in the order written (step, scanner, advertiser),
            # so each row read back is put back in that order by one scatter (no search), with the
            # RSSI as stored; the ledgers then get each pair's rows in time order and nearly sorted.
            first = np.int64(log.written - len(obs) + 1)
            stored = np.empty(len(obs))
            stored[obs.row_ids - first] = obs.rssi
            written = (scanner, advertiser, times, stored)
            found: Columns | None = None
            if len(obs) and len(published):
                calls += 1
                found = _matched_columns(*matching.rows(obs), written, first)
            del obs
            # While every row so far matched once, by its sender's key, the heard ledger stands for
            # both; the matched one copies it (before this chunk) only once they part.
            if same and not (
                all(np.array_equal(a, b) for a, b in zip(found, written, strict=True))
                if found is not None
                else not times.size
            ):
                matched.mirror(heard)
                same = False
            heard.add(*written)
            if found is not None and not same:
                matched.add(*found)
            del written, found, scanner, advertiser, times, stored
            true_pairs.update(truth.settle(now))
            _settle(judge, heard, matched, now, same)
            if progress is not None:
                progress((now - scenario.start) / scenario.duration)
        true_pairs.update(truth.settle(end, final=True))
        _settle(judge, heard, matched, end, same, final=True)
        logged = log.written
    stats = {
        "chunks": chunks,
        "matcher_calls": calls,
        "peak_close_pairs": truth.peak,
        "peak_heard_pairs": heard.peak_pairs,
        "peak_heard_rows": heard.peak_rows,
        "estimated_pairs": judge.estimated,
        # this process's peak resident memory (the worker's, on Dask), MB
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    return ShardResult(
        shard, shards, true_pairs.codes(), truth.settled, {e: c.codes() for e, c in judge.flagged.items()},
        {e: c.codes() for e, c in judge.reported.items()}, judge.verdicts, judge.notified_at, judge.codes,
        judge.score_parts, sightings, logged, stats, WorldFacts.of(world),
    )  # fmt: skip


class PairCodes:
    """A set of pairs (a, b) of ``n`` agents as int64 codes ``a * n + b``: added an array at a time,
    made distinct (sorted) whenever what waits outgrows what is held, so memory stays about twice the
    distinct pairs (a pair settled again and again, with ``hold``, is added again and again)."""

    def __init__(self, n: int) -> None:
        self.n = np.int64(n)
        self._held = np.zeros(0, np.int64)
        self._waiting: list[NDArray[np.int64]] = []
        self._count = 0

    def add(self, first: NDArray[np.int64], second: NDArray[np.int64]) -> None:
        """Add the pairs (first[k], second[k])."""
        if first.size:
            self._waiting.append(first * self.n + second)
            self._count += int(first.size)
            if self._count > max(PAIRS_WAITING, self._held.size):
                self.codes()

    def update(self, pairs: set[Pair]) -> None:
        """Add a set of pairs (as the ledger settles them)."""
        if pairs:
            a, b = np.array(list(pairs), np.int64).T
            self.add(a, b)

    def codes(self) -> NDArray[np.int64]:
        """The distinct codes, ascending."""
        if self._waiting:
            self._held = np.unique(np.concatenate([self._held, *self._waiting]))
            self._waiting, self._count = [], 0
        return self._held


PAIRS_WAITING = 1 << 16
"""Pair codes a :class:`PairCodes` gathers before making them distinct, at least."""


def _as_pairs(codes: NDArray[np.int64], n: int) -> set[Pair]:
    """Pair codes as the set of (a, b) tuples (what the contact table reads)."""
    a, b = np.divmod(codes, np.int64(n))
    return set(zip(a.tolist(), b.tolist(), strict=True))


class _Combined:
    """The shards' judgements as one (what :func:`contact_table` and the rows read), merged in shard
    order; every merged value is a union of sorted pair codes, a dict with disjoint keys (each phone
    is in one shard) or arrays reduced by pair, so the result does not depend on how the run was split."""

    def __init__(self, estimators: Sequence[str], parts: Sequence[ShardResult]) -> None:
        self.estimators = list(estimators)
        self.flagged_codes = {e: _union(p.flagged[e] for p in parts) for e in estimators}
        self.reported_codes = {e: _union(p.reported[e] for p in parts) for e in estimators}
        self._n = parts[0].world.n if parts else 0
        self.verdicts = {e: {k: v for p in parts for k, v in p.verdicts[e].items()} for e in estimators}
        self.notified_at = {e: {k: v for p in parts for k, v in p.notified_at[e].items()} for e in estimators}
        self._codes = {e: [c for p in parts for c in p.codes[e]] for e in estimators}
        self._scores = {e: [c for p in parts for c in p.scores[e]] for e in estimators}

    @functools.cached_property
    def flagged(self) -> dict[str, set[Pair]]:
        """The flagged pairs as (a, b) tuples, made only if asked (the contact table): a city day's
        would be ~100 MB of the combining process."""
        return {e: _as_pairs(c, self._n) for e, c in self.flagged_codes.items()}

    @functools.cached_property
    def reported(self) -> dict[str, set[Pair]]:
        return {e: _as_pairs(c, self._n) for e, c in self.reported_codes.items()}

    def scores(
        self, name: str, true_pairs: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Each pair's best score (either phone, any day or meeting) and whether it was a true contact."""
        if not self._codes[name]:
            return np.zeros(0), np.zeros(0, np.bool_)
        codes = np.concatenate(self._codes[name])
        values = np.concatenate(self._scores[name])
        if codes.size == 0:
            return np.zeros(0), np.zeros(0, np.bool_)
        unique, inverse = np.unique(codes, return_inverse=True)
        best = np.full(unique.size, -np.inf)
        np.maximum.at(best, inverse.ravel(), values)
        labels = np.isin(unique, true_pairs)  # both coded a * n + b (n agents)
        return best, labels


def _union(parts: Iterable[NDArray[np.int64]]) -> NDArray[np.int64]:
    """The distinct codes of sorted distinct code arrays, ascending."""
    return np.unique(np.concatenate([np.zeros(0, np.int64), *parts]))


def combine(
    scenario: Scenario, adoption: float, seed: int, estimators: Sequence[str], parts: Sequence[ShardResult]
) -> RunResult:
    """The run's result rows from its shards (all of them, any order given: merged in shard order)."""
    parts = sorted(parts, key=lambda p: p.shard)
    shards = parts[0].shards if parts else 0
    if not parts or [p.shard for p in parts] != list(range(shards)) or any(p.shards != shards for p in parts):
        raise ValueError(f"combine needs every shard of one split once, got {[p.shard for p in parts]}")
    world = parts[0].world
    n = world.n
    users = np.flatnonzero(world.app)
    true_pairs = _union(p.true_pairs for p in parts)  # (i, j) coded i * n + j, ascending
    judge = _Combined(estimators, parts)
    low, high = np.divmod(true_pairs, np.int64(n))
    app_true = int(np.count_nonzero(world.app[low] & world.app[high]))
    companions = int(np.count_nonzero(world.companion_codes(true_pairs)))
    strangers = true_pairs.size - companions
    sightings = sum(p.sightings for p in parts)
    logged = sum(p.logged for p in parts)
    rows_out = []
    out_scores: dict[str, tuple[NDArray[np.float64], NDArray[np.bool_]]] = {}
    for name in estimators:
        values, labels = judge.scores(name, true_pairs)
        if scenario.pair_scores:
            out_scores[name] = (values, labels)
        flagged = judge.flagged_codes[name]
        found = flagged[np.isin(flagged, true_pairs, assume_unique=True)]
        found_companions = int(np.count_nonzero(world.companion_codes(found)))
        found_strangers = found.size - found_companions
        reported = judge.reported_codes[name]
        source, phone = np.divmod(reported, np.int64(n))
        either = np.minimum(source, phone) * np.int64(n) + np.maximum(source, phone)
        notified = int(np.count_nonzero(np.isin(either, true_pairs)))
        traced = _fraction(found.size, true_pairs.size)
        strangers_traced = _fraction(found_strangers, strangers)
        sensitivity = _fraction(found.size, app_true)
        rows_out.append(
            ResultRow(
                scenario=scenario.name,
                scheme=scenario.scheme,
                adoption=adoption,
                estimator=name,
                seed=seed,
                agents=n,
                app_users=int(users.size),
                true_contacts=int(true_pairs.size),
                companion_contacts=companions,
                stranger_contacts=strangers,
                app_contacts=app_true,
                detected=int(found.size),
                detected_companions=found_companions,
                detected_strangers=found_strangers,
                flagged=int(flagged.size),
                false_positives=int(flagged.size - found.size),
                notifiable=2 * app_true,
                notified=notified,
                false_notifications=int(reported.size) - notified,
                fraction_traced=traced[0],
                fraction_traced_low=traced[1],
                fraction_traced_high=traced[2],
                traced_companions=_fraction(found_companions, companions)[0],
                traced_strangers=strangers_traced[0],
                traced_strangers_low=strangers_traced[1],
                traced_strangers_high=strangers_traced[2],
                sensitivity=sensitivity[0],
                sensitivity_low=sensitivity[1],
                sensitivity_high=sensitivity[2],
                pooled_pair_auc=roc_auc(values, labels) if values.size and scenario.pair_scores else math.nan,
                sightings=sightings,
                logged=logged,
                hearing_radius_m=world.radius,
            )
        )
    stats = {key: sum(p.stats[key] for p in parts) for key in parts[0].stats if key != "peak_rss_mb"}
    for p in parts:  # memory is per process: each shard's, not a sum
        stats[f"peak_rss_mb_shard{p.shard}"] = p.stats["peak_rss_mb"]
    stats["shards"] = shards
    contacts = {}
    if scenario.contact_table:
        # one canonical order (by pair key, a pair's meetings in time order): the same for any split
        settled = [s for p in parts for s in p.settled]
        if settled:
            keys, secs, dist, low = (np.concatenate([s[k] for s in settled]) for k in range(4))
            order = np.argsort(keys, kind="stable")
            settled = [(keys[order], secs[order], dist[order], low[order])]
        contacts = contact_table(world, settled, _as_pairs(true_pairs, n), judge)
    return RunResult(rows_out, out_scores, stats, contacts)


def _fraction(successes: int, trials: int) -> tuple[float, float, float]:
    """(point, low, high): the share and its exact 95 % interval; NaNs without trials."""
    if trials == 0:
        return math.nan, math.nan, math.nan
    low, high = clopper_pearson(successes, trials)
    return successes / trials, low, high


def _settle(
    judge: _Judge, heard: HeardPairs, matched: HeardPairs, now: float, same: bool, final: bool = False
) -> None:
    """Judge the pairs both ledgers settle at ``now``, in pieces of about :data:`JUDGED_ROWS` rows.
    While ``same`` (the heard ledger stands for the matched one too) each piece is judged once, for
    detection and notification."""
    if same:
        for piece in heard.settle_pieces(now, final, JUDGED_ROWS):
            judge.notify(piece, now, judge.detect(piece))
        return
    for piece in heard.settle_pieces(now, final, JUDGED_ROWS):
        judge.detect(piece)
    for piece in matched.settle_pieces(now, final, JUDGED_ROWS):
        judge.notify(piece, now)


JUDGED_ROWS = 1_000_000
"""At most about this many settled rows (whole pairs) are taken out of a ledger and judged at once.
The end of a run settles every pair held, and judging a city's ~20 million held rows in one batch was
most of the run's peak memory (3.5 GB for half an hour from noon). Pieces change no verdict (each is a
function of one pair's rows) nor the order results are kept in."""


def _publish(phones: Phones, index_cases: NDArray[np.int64]) -> tuple[Any, NDArray[np.int64]]:
    """What the index cases upload when confirmed (the server's export: a list, or GAEN's KeyBatch),
    agent by agent in order, and who uploaded each key."""
    return phones.published_keys(np.unique(np.asarray(index_cases, np.int64)))


class _Matching:
    """The real matcher over a chunk's observations, every published key each time; per matched
    sighting its row id and the key's owner. GAEN's matcher hands its columns over as they are (one
    call per key chunk, no per-key objects), the keys prepared once for the whole run (their RPIKs
    and AEMKs derived once, not every chunk); other schemes go through their match function."""

    def __init__(self, scheme: str, published: Any, owners: NDArray[np.int64]) -> None:
        self.scheme, self.published = scheme, published
        self.batches: list[tuple[PreparedKeys, NDArray[np.int64]]] = []
        self._owner_of: dict[bytes, int] = {}
        self._backend: str | None = None
        if scheme_record(scheme).matcher == "proximity.matching.gaen:match_gaen":
            from proximity.crypto import resolve_backend
            from proximity.matching.gaen import DEFAULT_CHUNK

            self._backend = resolve_backend(None)
            done = 0
            for batch in batches_of(
                [published] if isinstance(published, KeyBatch) else published, DEFAULT_CHUNK
            ):
                prepared = PreparedKeys.prepare(batch, backend=self._backend)
                self.batches.append((prepared, owners[done : done + len(batch)]))
                done += len(batch)
        else:  # a match names its key by its bytes (the other schemes: one key an agent)
            self._owner_of = dict(zip((key.key_data for key in published), owners.tolist(), strict=True))

    def rows(self, obs: Observations) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(row id, key owner) of every matched sighting, a sighting once per key it matched."""
        if self.batches:
            from proximity.matching.gaen import GaenMatcher

            matcher = GaenMatcher.build(obs, self._backend)
            found = [matcher.match_columns(batch) for batch, _ in self.batches]
            row_ids = [c.row_ids for c in found]
            owners = [owners[c.key] for c, (_, owners) in zip(found, self.batches, strict=True)]
        else:
            matches: list[KeyMatch] = scheme_record(obs.scheme).load_matcher()(self.published, obs, workers=1)
            row_ids = [m.row_ids for m in matches]
            owners = [np.full(len(m), self._owner_of[m.key_data], np.int64) for m in matches]
        empty = np.zeros(0, np.int64)
        return np.concatenate([empty, *row_ids]), np.concatenate([empty, *owners])


def _matched_columns(
    row_ids: NDArray[np.int64], source: NDArray[np.int64], written: Columns, first: np.int64
) -> Columns:
    """Every matched sighting as (phone that logged it, key owner, time, RSSI as the matcher read it).

    ``row_ids`` and ``source`` are each match's row and key owner; ``written`` is the chunk as
    written (scanner, advertiser, time, RSSI as stored), row id ``first + k`` at k; a match's times
    and RSSIs are those rows' values. A row is one owner's ID, so the matched rows come out in the
    order written, a row matched by several of its owner's keys (Bluezone's records overlap) once per
    match; should two owners' keys derive one ID, in the matches' order."""
    scanner, _, times, rssi = written
    if not row_ids.size:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0), np.zeros(0)
    at = row_ids - first
    owner = np.full(times.size, -1, np.int64)
    owner[at] = source
    if not np.array_equal(owner[at], source):  # one row, two owners
        return scanner[at], source, times[at], rssi[at]
    rows = np.repeat(np.arange(times.size), np.bincount(at, minlength=times.size))
    return scanner[rows], owner[rows], times[rows], rssi[rows]


def split_by_phone(
    matches: Iterable[KeyMatch], obs: Observations, by: NDArray[np.int64]
) -> Iterable[tuple[int, KeyMatch]]:
    """Each match split into the part each phone logged (``by[k]`` = the phone of ``obs`` row k)."""
    order = np.argsort(obs.row_ids, kind="stable")
    sorted_ids = obs.row_ids[order]
    for match in matches:
        phone = by[order[np.searchsorted(sorted_ids, match.row_ids)]]
        for j in distinct(phone).tolist():
            yield j, match.select(phone == j)


class _Judge:
    """The estimators on settled pairs, all of them in one batch call per estimator: detection (each
    phone's log of each counterpart) and notification (each phone's matches of each index case)."""

    def __init__(self, scenario: Scenario, estimators: list[str], devices: DeviceModels) -> None:
        self.scenario = scenario
        self.estimators = estimators
        self.devices = devices
        n = int(devices.model.size)
        self.flagged = {name: PairCodes(n) for name in estimators}
        self.reported = {name: PairCodes(n) for name in estimators}  # (index case, phone)
        # with the contact table: each phone's verdict of each counterpart, and when it was notified
        self.verdicts: dict[str, dict[Pair, tuple[bool, float]]] = {name: {} for name in estimators}
        self.notified_at: dict[str, dict[Pair, float]] = {name: {} for name in estimators}
        self.codes: dict[str, list[NDArray[np.int64]]] = {name: [] for name in estimators}
        self.score_parts: dict[str, list[NDArray[np.float64]]] = {name: [] for name in estimators}
        self.estimated = 0
        self._tx_power = devices.tx_power.astype(np.float64)

    def _judge(self, columns: Columns) -> Judged:
        """(phone, counterpart) of each settled pair and each estimator's verdicts, in that order.

        Each phone's calibration is its model's RSSI correction, added to its own RSSIs (attenuation
        is TX - (RSSI + correction), so this is the same as judging with its own settings); the
        counterpart's TX power is what its GAEN metadata says (Bluezone sends none: the fleet value);
        the estimators that read the calibration confidence are called once per confidence."""
        phone, other, times, rssi = columns
        valid = (other >= 0) & (other != phone)
        if not valid.all():
            phone, other, times, rssi = phone[valid], other[valid], times[valid], rssi[valid]
        stride = np.int64(self.devices.model.size + 1)
        code = phone * stride + other  # ascending: settled rows come sorted by (phone, other, time)
        gaen = scheme_record(self.scenario.scheme).metadata_length is not None  # sends its TX (AEM)
        corrected = rssi + self.devices.rssi_correction[phone]
        tx = self._tx_power[other] if gaen else np.full(times.size, math.nan)
        confidence: NDArray[Any] | None = None  # read only by the estimators that need it
        levels: list[int] | None = None
        out: dict[str, BatchVerdicts] = {}
        for name in self.estimators:
            if name not in READS_CALIBRATION_CONFIDENCE:  # the same verdicts whatever the confidence
                out[name] = estimate_batch(times, corrected, tx, code, name, self._settings(0))
                continue
            if confidence is None or levels is None:
                confidence = self.devices.confidence[other] if gaen else np.zeros(times.size, np.int64)
                levels = np.flatnonzero(np.bincount(confidence)).tolist()  # the levels present, ascending
            parts = []
            for level in levels:
                mine = confidence == level
                settings = self._settings(level)
                chosen = (times[mine], corrected[mine], tx[mine], code[mine])
                parts.append(estimate_batch(*chosen, name, settings))
            out[name] = _combine(parts)
        # the distinct codes, ascending: what every estimator's verdicts are of (found once, there)
        pairs = next(iter(out.values())).encounter if out else distinct(code)
        self.estimated += int(pairs.size)
        return pairs // stride, pairs % stride, out

    def _settings(self, confidence: int) -> EstimationSettings:
        return EstimationSettings(
            rssi_correction=0.0,
            calibration_confidence=int(confidence),
            distance=self.scenario.contact_distance,
            minutes=self.scenario.contact_minutes,
        )

    def detect(self, columns: Columns) -> Judged:
        judged = phone, other, verdicts = self._judge(columns)
        lo, hi = np.minimum(phone, other), np.maximum(phone, other)
        n = np.int64(self.devices.model.size)
        for name, v in verdicts.items():
            if self.scenario.pair_scores:
                self.codes[name].append(lo * n + hi)
                self.score_parts[name].append(np.where(np.isnan(v.score), -np.inf, v.score))
            close = v.close_contact
            self.flagged[name].add(lo[close], hi[close])
            if self.scenario.contact_table:
                mine = self.verdicts[name]
                for a, b, c, s in zip(
                    phone.tolist(), other.tolist(), close.tolist(), v.score.tolist(), strict=True
                ):
                    was = mine.get(
                        (a, b)
                    )  # a pair settled more than once (forget, hold): any close, best score
                    mine[(a, b)] = (c, s) if was is None else (was[0] or c, max(was[1], s))
        return judged

    def notify(self, columns: Columns, now: float, judged: Judged | None = None) -> None:
        """Matched sightings settled at ``now``: the phones that report an exposure to an index case
        (notified when the pair settles, at the end of the chunk). ``judged``: what :meth:`detect`
        returned for the same ``columns``, not judged again."""
        if judged is None:
            judged = self._judge(columns)
        else:
            self.estimated += int(judged[0].size)  # counted as if judged again
        phone, source, verdicts = judged
        for name, v in verdicts.items():
            close = v.close_contact
            self.reported[name].add(source[close], phone[close])
            if self.scenario.contact_table:
                for pair in zip(source[close].tolist(), phone[close].tolist(), strict=True):
                    self.notified_at[name].setdefault(pair, now)


def _combine(parts: list[BatchVerdicts]) -> BatchVerdicts:
    """Batch verdicts of disjoint encounter sets as one, in ascending encounter order."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        empty = np.zeros(0)
        return BatchVerdicts(np.zeros(0, np.int64), np.zeros(0, np.bool_), empty, empty, empty)
    encounter = np.concatenate([p.encounter for p in parts])
    order = np.argsort(encounter, kind="stable")
    return BatchVerdicts(
        encounter[order],
        np.concatenate([p.close_contact for p in parts])[order],
        *(
            np.concatenate([getattr(p, f) for p in parts])[order]
            for f in ("score", "attenuation_db", "minutes")
        ),
    )
