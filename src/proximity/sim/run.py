"""One run end to end: world -> the real log -> the real matcher -> real estimators -> tidy result rows.

Streamed a chunk at a time: the chunk's sightings go into the shared encounter log (devices.py) and
are read back as stored; ONE real matcher call matches every confirmed agent's published keys against
all phones' observations of the chunk (results are per sighting, so this is what each phone's own call
would find); each (phone, counterpart) pair's logged sightings wait in the ledger (ledger.py) until the
pair is settled, then the real estimators judge them with the phone's own calibration (its model's
row of the table) and the matched keys' verdicts say whether the phone reports an exposure.

Definitions (docs/simulation.md):

- true_contacts: unordered pairs of agents (app or not) within ``contact_distance`` for at least
  ``contact_minutes`` on one UTC day, from positions.
- detected: true contacts where both carry the app and the estimator, run on the pair's logged
  sightings (either phone's log of the other), says close contact.
- flagged / false_positives: app-user pairs the estimator says close / of those, not true contacts.
- notified: true contacts (i, j) of a confirmed agent i whose phone j, after matching i's published
  keys against its own log with the real matcher, reports the exposure (estimator on the KeyMatch).
- fraction_traced = detected / true_contacts (expected ~ adoption^2 x the estimator's sensitivity).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.estimation import EstimationSettings, estimate, roc_auc, verdict
from proximity.matching import KeyMatch
from proximity.schemes import BluezoneDailyKey
from proximity.schemes.published import DiagnosisKey
from proximity.schemes.registry import scheme_record
from proximity.sightings import Observations
from proximity.sim.devicemodels import DeviceModels
from proximity.sim.devices import AppDedup, SharedLog
from proximity.sim.ledger import CloseTime, Heard, HeardPairs
from proximity.sim.phones import Phones
from proximity.sim.scenario import Scenario
from proximity.sim.world import World

__all__ = ["ResultRow", "RunResult", "run_simulation"]


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One tidy row: (scenario, adoption, estimator, seed) and what came out."""

    scenario: str
    scheme: str
    adoption: float
    estimator: str
    seed: int
    agents: int
    app_users: int
    diagnosed: int
    true_contacts: int
    app_contacts: int
    detected: int
    flagged: int
    false_positives: int
    notifiable: int
    notified: int
    fraction_traced: float
    sensitivity: float
    auc: float
    sightings: int
    logged: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True, eq=False)
class RunResult:
    rows: list[ResultRow]
    # per estimator: (scores, labels) of every app-user pair that heard each other (for ROC plots)
    scores: dict[str, tuple[NDArray[np.float64], NDArray[np.bool_]]] = field(default_factory=dict)
    # how much the run held at its peak (pairs, rows) and did (chunks, matcher calls)
    stats: dict[str, int] = field(default_factory=dict)


Pair = tuple[int, int]


def run_simulation(
    scenario: Scenario,
    adoption: float,
    seed: int,
    estimators: Sequence[str] | None = None,
    *,
    progress: Callable[[float], None] | None = None,
    log_directory: str | Path | None = None,
) -> RunResult:
    """Simulate ``scenario`` at ``adoption`` with ``seed``; one row per estimator.

    The shared encounter log is a temporary file in ``log_directory`` (default: the system's).
    """
    estimators = list(estimators or scenario.estimators)
    world = World(scenario, adoption, seed)
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
    diagnosed = _diagnose(world, users)
    published, owner_of = _publish(phones, diagnosed)
    forget = scenario.forget
    truth = CloseTime(n, scenario.contact_minutes * 60.0, forget)
    heard = HeardPairs(n, forget, scenario.hold)
    judge = _Judge(scenario, estimators, devices, owner_of)
    dedup = AppDedup(record.dedup_seconds) if record.dedup_seconds is not None else None
    true_pairs: set[Pair] = set()
    sightings = calls = chunks = 0
    with SharedLog(scenario.scheme, log_directory) as log:
        for chunk in world.chunks():
            chunks += 1
            truth.add(chunk.close_keys, chunk.close_seconds, chunk.end)
            sightings += len(chunk)
            rows = np.arange(len(chunk))
            if dedup is not None and len(chunk):
                ids, _ = phones.broadcast(chunk.advertiser, chunk.times)
                rows = rows[dedup.keep(chunk.scanner, ids, chunk.times)]
            scanner, times = chunk.scanner[rows], chunk.times[rows]
            ids, aem = phones.broadcast(chunk.advertiser[rows], times)
            own, _ = phones.broadcast(scanner, times)
            obs, by = log.write(
                scanner, own, ids, times, chunk.rssi[rows], aem if gaen else None, chunk.start, chunk.end
            )
            heard.add(by, phones.owners(obs.ids), obs.times, obs.rssi)
            if len(obs) and published:
                calls += 1
                judge.add_matches(_match(published, obs), obs, by)
            true_pairs |= truth.settle(chunk.end)
            judge.settle(heard.settle(chunk.end))
            if progress is not None:
                progress((chunk.end - scenario.start) / scenario.duration)
        true_pairs |= truth.settle(end, final=True)
        judge.settle(heard.settle(end, final=True))
        logged = log.written
    app_true = {(i, j) for i, j in true_pairs if world.app[i] and world.app[j]}
    notifiable = {p for p in app_true if p[0] in diagnosed or p[1] in diagnosed}
    rows_out = []
    out_scores: dict[str, tuple[NDArray[np.float64], NDArray[np.bool_]]] = {}
    for name in estimators:
        values, labels = judge.scores(name, n, true_pairs)
        if scenario.pair_scores:
            out_scores[name] = (values, labels)
        flagged = judge.flagged[name]
        detected = len(flagged & true_pairs)
        notified = len({(min(i, j), max(i, j)) for i, j in judge.reported[name]} & true_pairs)
        rows_out.append(
            ResultRow(
                scenario=scenario.name,
                scheme=scenario.scheme,
                adoption=adoption,
                estimator=name,
                seed=seed,
                agents=n,
                app_users=int(users.size),
                diagnosed=len(diagnosed),
                true_contacts=len(true_pairs),
                app_contacts=len(app_true),
                detected=detected,
                flagged=len(flagged),
                false_positives=len(flagged - true_pairs),
                notifiable=len(notifiable),
                notified=notified,
                fraction_traced=detected / len(true_pairs) if true_pairs else math.nan,
                sensitivity=detected / len(app_true) if app_true else math.nan,
                auc=roc_auc(values, labels) if values.size and scenario.pair_scores else math.nan,
                sightings=sightings,
                logged=logged,
            )
        )
    stats = {
        "chunks": chunks,
        "matcher_calls": calls,
        "peak_close_pairs": truth.peak,
        "peak_heard_pairs": heard.peak_pairs,
        "peak_heard_rows": heard.peak_rows,
        "estimated_pairs": judge.estimated,
    }
    return RunResult(rows_out, out_scores, stats)


def _diagnose(world: World, users: NDArray[np.int64]) -> set[int]:
    """Confirmed app users: each with probability ``diagnosed``, at least one when anyone has the app."""
    draw = world.streams("diagnosis").random(world.n)
    chosen = {int(a) for a in users if draw[a] < world.scenario.diagnosed}
    if not chosen and users.size:
        chosen = {int(users[np.argmin(draw[users])])}
    return chosen


def _publish(
    phones: Phones, diagnosed: set[int]
) -> tuple[list[DiagnosisKey] | list[BluezoneDailyKey], dict[bytes, int]]:
    """What the confirmed agents upload (the server's export), and who uploaded each key."""
    owner_of: dict[bytes, int] = {}
    gaen_keys: list[DiagnosisKey] = []
    records: list[BluezoneDailyKey] = []
    for agent in sorted(diagnosed):
        for key in phones.published(agent):
            if isinstance(key, DiagnosisKey):
                gaen_keys.append(key)
                owner_of[key.key_data] = agent
            else:
                records.append(key)
                owner_of[key.daily_key] = agent
    return (gaen_keys or records), owner_of  # a run publishes one scheme's keys


def _match(published: list[DiagnosisKey] | list[BluezoneDailyKey], obs: Observations) -> list[KeyMatch]:
    """One real matcher call over every phone's observations (the run is the unit of parallelism)."""
    match: list[KeyMatch] = scheme_record(obs.scheme).load_matcher()(published, obs, workers=1)
    return match


def split_by_phone(
    matches: Iterable[KeyMatch], obs: Observations, by: NDArray[np.int64]
) -> Iterable[tuple[int, KeyMatch]]:
    """Each match split into the part each phone logged (``by[k]`` = the phone of ``obs`` row k)."""
    order = np.argsort(obs.row_ids, kind="stable")
    sorted_ids = obs.row_ids[order]
    for match in matches:
        phone = by[order[np.searchsorted(sorted_ids, match.row_ids)]]
        for j in np.unique(phone).tolist():
            yield j, match.select(phone == j)


def merge_matches(parts: Sequence[KeyMatch]) -> KeyMatch:
    """The parts of one key's match found in successive chunks, as one match (time, row order)."""
    if len(parts) == 1:
        return parts[0]
    columns = {
        name: np.concatenate([getattr(p, name) for p in parts])
        for name in ("row_ids", "ids", "times", "rssi", "tx_power", "calibration_confidence")
    }
    order = np.lexsort((columns["row_ids"], columns["times"]))
    first = parts[0]
    return KeyMatch(first.scheme, first.key, first.verified, **{k: v[order] for k, v in columns.items()})


class _Judge:
    """The estimators on settled pairs (detection) and on each phone's matched keys (notification)."""

    def __init__(
        self, scenario: Scenario, estimators: list[str], devices: DeviceModels, owner_of: dict[bytes, int]
    ) -> None:
        self.scenario = scenario
        self.estimators = estimators
        self.devices = devices
        self.owner_of = owner_of
        self.flagged: dict[str, set[Pair]] = {name: set() for name in estimators}
        self.reported: dict[str, set[Pair]] = {name: set() for name in estimators}
        self._codes: dict[str, list[int]] = {name: [] for name in estimators}
        self._scores: dict[str, list[float]] = {name: [] for name in estimators}
        self._settings: dict[tuple[float, int], EstimationSettings] = {}
        # (phone, source) -> key bytes -> the parts of that key's match, chunk by chunk
        self._matched: dict[Pair, dict[bytes, list[KeyMatch]]] = {}
        self.estimated = 0

    def settings(self, phone: int, confidence: int = 0) -> EstimationSettings:
        """The phone's own calibration: its model's RSSI correction (the table lookup)."""
        key = (float(self.devices.rssi_correction[phone]), confidence)
        found = self._settings.get(key)
        if found is None:
            found = self._settings[key] = EstimationSettings(
                rssi_correction=key[0],
                calibration_confidence=confidence,
                distance=self.scenario.contact_distance,
                minutes=self.scenario.contact_minutes,
            )
        return found

    def add_matches(self, matches: list[KeyMatch], obs: Observations, by: NDArray[np.int64]) -> None:
        for phone, part in split_by_phone(matches, obs, by):
            source = self.owner_of[part.key_data]
            if source == phone or len(part) == 0:
                continue
            keys = self._matched.setdefault((phone, source), {})
            keys.setdefault(part.key_data, []).append(part)

    def settle(self, pairs: Iterable[tuple[int, int, NDArray[np.float64], NDArray[np.float64]]]) -> None:
        gaen = scheme_record(self.scenario.scheme).metadata_length is not None  # sends its TX (AEM)
        for phone, other, times, rssi in pairs:
            if other < 0 or other == phone:
                continue
            self.estimated += 1
            # the counterpart's TX power and confidence: GAEN phones tell them (the AEM); Bluezone not
            tx = float(self.devices.tx_power[other]) if gaen else math.nan
            confidence = int(self.devices.confidence[other]) if gaen else 0
            settings = self.settings(phone, confidence)
            sightings = Heard(times, rssi, np.full(times.size, tx))
            code = min(phone, other) * self.devices.model.size + max(phone, other)
            pair = (min(phone, other), max(phone, other))
            for name in self.estimators:
                days = estimate(sightings, name, settings)  # one Verdict per UTC day
                if self.scenario.pair_scores:
                    self._codes[name].append(code)
                    self._scores[name].append(max((v.score for v in days), default=-math.inf))
                if any(v.close_contact for v in days):
                    self.flagged[name].add(pair)
            for parts in self._matched.pop((phone, other), {}).values():
                match = merge_matches(parts)
                base = self.settings(phone)  # verdict() reads the confidence from the AEM itself
                for name in self.estimators:
                    if verdict(match, name, base)["close_contact"]:
                        self.reported[name].add((other, phone))

    def scores(
        self, name: str, n: int, true_pairs: set[Pair]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Each pair's best score (either phone, any day or meeting) and whether it was a true contact."""
        codes = np.asarray(self._codes[name], np.int64)
        values = np.asarray(self._scores[name], np.float64)
        if codes.size == 0:
            return np.zeros(0), np.zeros(0, np.bool_)
        unique, inverse = np.unique(codes, return_inverse=True)
        best = np.full(unique.size, -np.inf)
        np.maximum.at(best, inverse.ravel(), values)
        labels = np.array([(int(c // n), int(c % n)) in true_pairs for c in unique.tolist()], np.bool_)
        return best, labels
