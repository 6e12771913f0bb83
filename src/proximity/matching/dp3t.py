"""DP-3T matching: published (SK_t, day) pairs x observed EphIDs -> every matched sighting.

A published SK_t is matched on its own UTC day and, chained forward (SK_{t+1} = SHA-256(SK_t)), on each
later day up to the record's ``chain_days`` (14), but only on days that have sightings at all. Per chunk
of published keys, every step is one batch of the crypto backend (:mod:`proximity.crypto`) over all of
the chunk's day keys: the SHA-256 chains advance in lock step, then the scheme's own EphID job
(:func:`proximity.schemes.dp3t.ephid_inputs`: HMAC-SHA256 PRF keys, AES-256 over the counter blocks
0..95) runs fused with the index probe (``aes_ecb_probe``; in C the EphIDs never leave L1). A sighting
counts when its time falls on the day of the day key that produced its EphID.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from proximity.crypto import crypto_backend, resolve_backend
from proximity.matching.index import ObservedIdIndex
from proximity.matching.pool import Progress, resolve_workers, run_chunks, typed_chunks
from proximity.matching.results import KeyMatch
from proximity.matching.source import SightingSource
from proximity.schemes.dp3t import DP3T, EPHIDS_PER_DAY, MAX_CHAIN_DAYS, Dp3tDayKey, ephid_inputs
from proximity.sightings import Observations
from proximity.times import SECONDS_PER_DAY

__all__ = ["DEFAULT_KEY_CHUNK", "Dp3tMatcher", "match_dp3t"]

DEFAULT_KEY_CHUNK = 2048


@dataclass(frozen=True, slots=True, eq=False)
class Dp3tMatcher:
    """Observations of DP-3T sightings with their index and the days they fall on."""

    observations: Observations
    index: ObservedIdIndex
    backend: str | None = None  # a proximity.crypto.CHOICES name; None: PROXIMITY_MATCH_BACKEND
    days: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        if self.days.size == 0 and len(self.observations):
            days = np.floor(self.observations.times / SECONDS_PER_DAY).astype(np.int64) * SECONDS_PER_DAY
            object.__setattr__(self, "days", np.unique(days))

    @classmethod
    def build(cls, observations: Observations, backend: str | None = None) -> Dp3tMatcher:
        observations.require_scheme(DP3T.name)
        return cls(observations, ObservedIdIndex.build(observations.ids), backend=backend)

    def with_backend(self, backend: str | None) -> Dp3tMatcher:
        return replace(self, backend=backend)

    @property
    def backend_in_use(self) -> str:
        """Which crypto backend derives the EphIDs and probes the index ("c", "python:...")."""
        return crypto_backend(self.backend).name

    def _day_keys(
        self, keys: list[Dp3tDayKey]
    ) -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.intp]]:
        """(day keys (m, 32), their days, index of each one's published key) for every day with
        sightings, each published key chained forward in lock step with the others."""
        first_days = np.array([k.day for k in keys], dtype=np.int64)
        last = int(self.days[-1]) if self.days.size else -1
        steps = np.minimum((last - first_days) // SECONDS_PER_DAY, MAX_CHAIN_DAYS)  # < 0: no day to match
        alive = np.flatnonzero(steps >= 0)
        current = np.frombuffer(b"".join([keys[i].key for i in alive.tolist()]), np.uint8).reshape(-1, 32)
        out_keys, out_days, out_owner = [], [], []
        for step in range(MAX_CHAIN_DAYS + 1):
            days = first_days[alive] + step * SECONDS_PER_DAY
            hit = np.isin(days, self.days)
            out_keys.append(current[hit])
            out_days.append(days[hit])
            out_owner.append(alive[hit])
            keep = steps[alive] > step
            if not keep.any():
                break
            alive, current = alive[keep], crypto_backend(self.backend).sha256(current[keep])
        return np.concatenate(out_keys), np.concatenate(out_days), np.concatenate(out_owner)

    def match_batch(self, keys: list[Dp3tDayKey]) -> list[KeyMatch]:
        if not keys or len(self.index) == 0:
            return []
        day_keys, days, owners = self._day_keys(keys)
        if day_keys.shape[0] == 0:
            return []
        crypto = crypto_backend(self.backend)
        prf_keys, blocks, rows = ephid_inputs(day_keys, crypto)
        counts = np.full(prf_keys.shape[0], EPHIDS_PER_DAY, dtype=np.int64)
        positions, unique = crypto.aes_ecb_probe(prf_keys, blocks, rows, counts, self.index)
        which = positions // EPHIDS_PER_DAY
        obs = self.observations
        by_owner: dict[int, list[tuple[NDArray[np.int64], int]]] = {}
        for k, (w, u) in enumerate(zip(which.tolist(), unique.tolist(), strict=True)):
            rows = self.index.rows_of(u)
            times = obs.times[rows]
            day = int(days[w])
            rows = rows[(times >= day) & (times < day + SECONDS_PER_DAY)]
            if rows.size:
                by_owner.setdefault(int(owners[w]), []).append((rows, int(unique[k])))
        out = []
        for owner, found in by_owner.items():
            rows = np.concatenate([r for r, _ in found])
            ids = np.concatenate(
                [np.repeat(self.index.unique_ids[u][None, :], r.size, axis=0) for r, u in found]
            )
            order = np.lexsort((obs.row_ids[rows], obs.times[rows]))
            rows, ids = rows[order], ids[order]
            out.append(
                KeyMatch(
                    scheme=DP3T.name,
                    key=keys[owner],
                    verified=False,
                    row_ids=obs.row_ids[rows].astype(np.int64),
                    ids=np.ascontiguousarray(ids),
                    times=obs.times[rows].astype(np.float64),
                    rssi=obs.rssi[rows].astype(np.float64),
                    tx_power=np.full(rows.size, np.nan),
                    calibration_confidence=np.full(rows.size, -1, dtype=np.int8),
                )
            )
        return out


def match_dp3t(
    keys: Iterable[Dp3tDayKey],
    observations: Observations | Dp3tMatcher | SightingSource,
    *,
    workers: int | None = None,
    chunk_size: int = DEFAULT_KEY_CHUNK,
    backend: str | None = None,
    progress: Progress | None = None,
) -> list[KeyMatch]:
    """Match published DP-3T day keys against observed EphIDs; one :class:`KeyMatch` per distinct key.

    Results are unverified (the exposee list carries no signature), sorted by key then day.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if isinstance(observations, SightingSource):  # no two-pass path here yet: read every sighting
        observations = observations.everything()
    matcher = observations if isinstance(observations, Dp3tMatcher) else Dp3tMatcher.build(observations)
    matcher = matcher.with_backend(resolve_backend(backend if backend is not None else matcher.backend))
    chunks = typed_chunks(keys, chunk_size, Dp3tDayKey, "keys")
    threads = matcher.backend == "c"  # the C backend runs without the GIL: threads share the matcher
    found = run_chunks(matcher, chunks, resolve_workers(workers), progress, threads=threads)
    chosen: dict[tuple[bytes, int], KeyMatch] = {}
    for match in found:
        assert isinstance(match.key, Dp3tDayKey)
        chosen.setdefault((match.key.key, match.key.day), match)
    return [chosen[k] for k in sorted(chosen)]
