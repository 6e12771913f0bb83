"""DP-3T matching: published (SK_t, day) pairs x observed EphIDs -> every matched sighting.

A published SK_t is matched on its own UTC day and, chained forward (SK_{t+1} = SHA-256(SK_t)), on each
later day up to the record's ``chain_days`` (14), but only on days that have sightings at all. Per chunk
of published keys, every step is one batch over all of the chunk's day keys: the SHA-256 chains advance
in lock step (one ``map`` a step), the PRF keys are one ``map`` of HMAC-SHA256, and the 96 EphIDs of
every day key are one AES-256-ECB call over the 96 counter blocks (AES-256-CTR from a zero counter is
ECB of the blocks 0..95), shared by all keys. All EphIDs are probed against the index at once; a sighting
counts when its time falls on the day of the day key that produced its EphID.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from proximity.matching.aes import EcbBackend, default_backend
from proximity.matching.index import ObservedIdIndex
from proximity.matching.native import resolve_backend
from proximity.matching.pool import Progress, resolve_workers, run_chunks, typed_chunks
from proximity.matching.results import KeyMatch
from proximity.schemes.dp3t import DP3T, EPHID_LENGTH, EPHIDS_PER_DAY, MAX_CHAIN_DAYS, Dp3tDayKey
from proximity.sightings import Observations
from proximity.times import SECONDS_PER_DAY

__all__ = ["DEFAULT_KEY_CHUNK", "Dp3tMatcher", "ephids_of", "match_dp3t"]

DEFAULT_KEY_CHUNK = 2048
_COUNTERS = np.zeros((1, EPHIDS_PER_DAY, 16), dtype=np.uint8)
_COUNTERS[0, :, 8:] = (
    np.arange(EPHIDS_PER_DAY, dtype=">u8").view(np.uint8).reshape(EPHIDS_PER_DAY, 8)
)  # the big-endian 128-bit counter blocks 0..95
_BROADCAST_KEY = b"broadcast key"
_SHA = hashlib.sha256
_DIGEST = operator.methodcaller("digest")


@dataclass(frozen=True, slots=True, eq=False)
class Dp3tMatcher:
    """Observations of DP-3T sightings with their index and the days they fall on."""

    observations: Observations
    index: ObservedIdIndex
    aes: EcbBackend | None = None
    backend: str | None = None  # "c" | "python" | None: only how the index is probed
    days: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        if self.days.size == 0 and len(self.observations):
            days = np.floor(self.observations.times / SECONDS_PER_DAY).astype(np.int64) * SECONDS_PER_DAY
            object.__setattr__(self, "days", np.unique(days))

    @classmethod
    def build(cls, observations: Observations, aes: EcbBackend | None = None) -> Dp3tMatcher:
        observations.require_scheme(DP3T.name)
        return cls(observations, ObservedIdIndex.build(observations.ids), aes)

    def with_backend(self, backend: str | None) -> Dp3tMatcher:
        return replace(self, backend=backend)

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
            alive, current = alive[keep], _sha256_rows(current[keep])
        return np.concatenate(out_keys), np.concatenate(out_days), np.concatenate(out_owner)

    def match_batch(self, keys: list[Dp3tDayKey]) -> list[KeyMatch]:
        if not keys or len(self.index) == 0:
            return []
        day_keys, days, owners = self._day_keys(keys)
        if day_keys.shape[0] == 0:
            return []
        ephids = ephids_of(day_keys, self.aes).reshape(-1, EPHID_LENGTH)
        positions, unique = self.index.find(ephids, backend=self.backend)
        which, _ = np.divmod(positions, EPHIDS_PER_DAY)
        obs = self.observations
        by_owner: dict[int, list[tuple[NDArray[np.int64], int]]] = {}
        for k, (w, u) in enumerate(zip(which.tolist(), unique.tolist(), strict=True)):
            rows = self.index.rows_of(u)
            times = obs.times[rows]
            day = int(days[w])
            rows = rows[(times >= day) & (times < day + SECONDS_PER_DAY)]
            if rows.size:
                by_owner.setdefault(int(owners[w]), []).append((rows, int(positions[k])))
        out = []
        for owner, found in by_owner.items():
            rows = np.concatenate([r for r, _ in found])
            ids = np.concatenate([np.repeat(ephids[p][None, :], r.size, axis=0) for r, p in found])
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


def _sha256_rows(rows: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """SHA-256 of each row (one ``map``, no interpreted code per hash)."""
    width = int(rows.shape[1])
    data = np.ascontiguousarray(rows).tobytes()
    chunks = [data[i : i + width] for i in range(0, len(data), width)]
    return np.frombuffer(b"".join(map(_DIGEST, map(_SHA, chunks))), np.uint8).reshape(-1, 32)


def _hmac_rows(keys: NDArray[np.uint8], message: bytes) -> NDArray[np.uint8]:
    """HMAC-SHA256(key, message) for each 32-byte row (RFC 2104 spelt out: the pads XORed in numpy,
    then two SHA-256 maps; ``hmac.digest`` per key costs ~4 µs, most of it looking the digest up)."""
    m = int(keys.shape[0])
    block = np.zeros((m, 64), np.uint8)
    block[:, :32] = keys
    inner_pads = (block ^ 0x36).tobytes()
    outer_pads = (block ^ 0x5C).tobytes()
    inner = map(_DIGEST, map(_SHA, [inner_pads[64 * i : 64 * i + 64] + message for i in range(m)]))
    outer = [outer_pads[64 * i : 64 * i + 64] + digest for i, digest in enumerate(inner)]
    return np.frombuffer(b"".join(map(_DIGEST, map(_SHA, outer))), np.uint8).reshape(m, 32)


def ephids_of(day_keys: NDArray[np.uint8], aes: EcbBackend | None = None) -> NDArray[np.uint8]:
    """The 96 EphIDs (PRG order) of each (m, 32) day key, as (m, 96, 16), one batch per primitive."""
    prf_keys = _hmac_rows(np.asarray(day_keys, np.uint8).reshape(-1, 32), _BROADCAST_KEY)
    rows = np.zeros(prf_keys.shape[0], dtype=np.intp)
    return (aes or default_backend()).encrypt_rows(prf_keys, _COUNTERS, rows)


def match_dp3t(
    keys: Iterable[Dp3tDayKey],
    observations: Observations | Dp3tMatcher,
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
    matcher = observations if isinstance(observations, Dp3tMatcher) else Dp3tMatcher.build(observations)
    matcher = matcher.with_backend(resolve_backend(backend if backend is not None else matcher.backend))
    found = run_chunks(
        matcher, typed_chunks(keys, chunk_size, Dp3tDayKey, "keys"), resolve_workers(workers), progress
    )
    chosen: dict[tuple[bytes, int], KeyMatch] = {}
    for match in found:
        assert isinstance(match.key, Dp3tDayKey)
        chosen.setdefault((match.key.key, match.key.day), match)
    return [chosen[k] for k in sorted(chosen)]
