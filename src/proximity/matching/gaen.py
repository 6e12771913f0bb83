"""GAEN matching: published diagnosis keys x observed RPIs -> matched sightings, as the phones do.

Per chunk of keys, the scheme's own batch crypto (:func:`proximity.schemes.gaen.rpi_inputs`: HKDF for
every key, one AES-ECB pass per key over the 144 padded blocks of its start), probed against the
observed-ID index in the same backend call (``aes_ecb_probe``), then exact evaluation of the few
candidate keys (spec/gaen.md "Matching"):

* a sighting counts only within the key's validity ``[start, end)`` widened by ±2 h of clock drift;
* only the first ``rolling_period`` RPIs of a key exist;
* replay guard: a sighting of an RPI more than 20 min after that RPI's first (in-window) sighting is
  discarded;
* where a sighting carries an AEM it is decrypted, and a TX power outside [-50, +20] dBm rejects the
  sighting; a sighting without metadata counts with TX power unknown (NaN).

With the C backend (:mod:`proximity.crypto`, chosen automatically) HKDF and AES-plus-probe of a whole
chunk are two C calls and only the exact evaluation stays in Python; the reference backend does the same
steps with numpy and an AES library, and gives the same results.

Keys matched against many logs can come prepared (:class:`~proximity.matching.prepared.PreparedKeys`:
HKDF and blocks done once per key); every entry point takes them wherever it takes a batch.

Nothing here reads the clock: what is in range follows from the keys and the observation times.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np
from numpy.typing import NDArray

from proximity.arrays import distinct
from proximity.crypto import CryptoBackend, crypto_backend, resolve_backend
from proximity.matching.index import ObservedIdIndex, in_log_order, take_rows
from proximity.matching.pool import resolve_workers, run_chunks
from proximity.matching.prepared import WINDOW_SLACK_SECONDS, PreparedKeys, key_windows
from proximity.matching.results import KeyMatch, MatchColumns
from proximity.matching.source import SightingSource, overlaps
from proximity.radio import TX_POWER_RANGE
from proximity.schemes.gaen import (
    GAEN,
    TEK_ROLLING_PERIOD,
    aem_keystreams,
    derive_aemks,
    rpi_inputs,
)
from proximity.schemes.published import DiagnosisKey, KeyBatch, ReportType, batches_of
from proximity.sightings import Observations

__all__ = [
    "DEFAULT_CHUNK",
    "MAX_TX_POWER",
    "MIN_TX_POWER",
    "REPLAY_GUARD_SECONDS",
    "WINDOW_SLACK_SECONDS",
    "GaenMatcher",
    "PreparedKeys",
    "match_gaen",
]

REPLAY_GUARD_SECONDS = 20 * 60
MIN_TX_POWER, MAX_TX_POWER = TX_POWER_RANGE
DEFAULT_CHUNK = 2048

Progress = Callable[[int], None]  # told the number of keys done after each chunk
Chunk = KeyBatch | PreparedKeys  # what one matcher call takes


@dataclass(frozen=True, slots=True, eq=False)
class GaenMatcher:
    """Observations of GAEN sightings with their index: match any number of key batches against them."""

    observations: Observations
    index: ObservedIdIndex
    sorted_times: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    backend: str | None = None  # a proximity.crypto.CHOICES name; None: PROXIMITY_MATCH_BACKEND
    # whether the observations are in (time, row id) order, as a log reads them (see _evaluate)
    log_order: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        times = self.observations.times
        object.__setattr__(self, "log_order", in_log_order(times, self.observations.row_ids))
        if self.sorted_times.shape != times.shape:
            object.__setattr__(self, "sorted_times", times if self.log_order else np.sort(times))

    @classmethod
    def build(cls, observations: Observations, backend: str | None = None) -> GaenMatcher:
        observations.require_scheme(GAEN.name)
        return cls(observations, ObservedIdIndex.build(observations.ids), backend=backend)

    def with_backend(self, backend: str | None) -> GaenMatcher:
        return replace(self, backend=backend)

    @property
    def backend_in_use(self) -> str:
        """Which crypto backend derives the RPIs: "c", or "python:" and the AES implementation's name."""
        return crypto_backend(self.backend).name

    def match_batch(self, batch: KeyBatch | PreparedKeys) -> list[KeyMatch]:
        """Every key of ``batch`` that has at least one counted sighting, in batch order."""
        return self.match_columns(batch).matches()

    def match_columns(self, keys: KeyBatch | PreparedKeys) -> MatchColumns:
        """Every counted sighting of the keys as columns (``key``: its row in the batch given).

        ``keys`` may be :class:`PreparedKeys` (their RPIKs and AEMKs derived once, for many logs): the
        same result, without the per-key HKDF."""
        batch, prepared = _split(keys)
        crypto = crypto_backend(self.backend)
        rows = np.arange(len(batch))
        low, high = _windows(batch, prepared)
        if len(batch) and len(self.index):
            withdrawn = batch.report_type == ReportType.REVOKED
            if withdrawn.any():  # a REVOKED key is never a match
                rows = rows[~withdrawn]
            # A key with no sighting at all inside its window (±2 h) cannot match: skip its crypto.
            # This reads the observation times, never the clock; it pays when the log is shorter than
            # 14 days.
            inside = np.searchsorted(self.sorted_times, high) > np.searchsorted(self.sorted_times, low)
            if not inside[rows].all():
                rows = rows[inside[rows]]
        else:
            rows = rows[:0]
        every = rows.size == len(batch)
        chosen = keys if every else keys.select(rows)
        plain = _split(chosen)[0]
        windows = (low, high) if every else (low[rows], high[rows])
        aemks = None if prepared is None else prepared.aemks
        if rows.size == 0:
            empty = np.zeros(0, np.int64)
            return self._evaluate(plain, windows, empty, empty, crypto, batch, rows, aemks)
        positions, unique = _probe(chosen, self.index, crypto)
        key_rows = positions // TEK_ROLLING_PERIOD
        return self._evaluate(plain, windows, key_rows, unique, crypto, batch, rows, aemks)

    def _evaluate(
        self,
        batch: KeyBatch,
        windows: tuple[NDArray[np.int64], NDArray[np.int64]],
        key_rows: NDArray[np.int64],
        unique: NDArray[np.int64],
        crypto: CryptoBackend,
        whole: KeyBatch,
        rows_in_whole: NDArray[np.int64],
        aemks_of_whole: NDArray[np.uint8] | None,
    ) -> MatchColumns:
        """The exact rules for every probed hit (key row, unique ID) of ``batch`` at once, as columns:
        one pass over all hits' sightings, not a Python loop per key. ``batch`` is the rows
        ``rows_in_whole`` of ``whole``, ``windows`` their windows; the columns name keys by their row
        in ``whole``. ``aemks_of_whole``: every key's AEMK, prepared (None: derived here, for the keys
        whose sightings carry metadata)."""
        obs, index = self.observations, self.index
        hits = np.argsort(key_rows, kind="stable")  # by key, each key's hits in probe order
        key_of_hit, unique = key_rows[hits], unique[hits]
        # every sighting of every hit's ID (the index lists each ID's rows in position order)
        begin = index.offsets[unique]
        count = index.offsets[unique + 1] - begin
        hit = np.repeat(np.arange(hits.size), count)
        firsts = np.cumsum(count) - count  # each hit's first entry
        rows = index.rows[np.arange(hit.size) - np.repeat(firsts - begin, count)]
        times = obs.times[rows]
        low, high = windows
        # per sighting, its hit's key and window: each hit's value repeated (hit counts up)
        key = np.repeat(key_of_hit, count)
        inside = times >= np.repeat(low[key_of_hit], count)
        inside &= times < np.repeat(high[key_of_hit], count)
        # replay guard: only sightings within 20 min of the RPI's first in-window sighting count
        if hit.size:
            first_seen = np.minimum.reduceat(np.where(inside, times, np.inf), firsts)
            inside &= times <= np.repeat(first_seen + REPLAY_GUARD_SECONDS, count)
        kept = np.flatnonzero(inside)
        rows, hit, key, times = rows[kept], hit[kept], key[kept], times[kept]
        tx_power = np.full(rows.size, np.nan)
        confidence = np.full(rows.size, -1, dtype=np.int8)
        with_aem = obs.has_aem[rows]
        if with_aem.any():
            # the metadata of each hit's RPI is AES-CTR under its key's AEMK: keystream AES(AEMK, RPI)
            # hits count up (each repeated per sighting) and their keys ascend: no sort to group them
            aem_hits, at = _runs(hit[with_aem])
            aem_keys, key_at = _runs(key_of_hit[aem_hits])
            if aemks_of_whole is None:
                aemks = derive_aemks(batch.key_data[aem_keys], crypto)
            else:
                aemks = aemks_of_whole[rows_in_whole[aem_keys]]
            rpis = index.unique_ids[unique[aem_hits]]
            stream = aem_keystreams(aemks[key_at], rpis[:, None, :], crypto)[:, 0]
            metadata = take_rows(stream, at) ^ take_rows(obs.aem, rows[with_aem])
            tx_power[with_aem] = metadata[:, 1].view(np.int8)
            confidence[with_aem] = (metadata[:, 0] >> 2) & 0b11
            accepted = ~with_aem | ((tx_power >= MIN_TX_POWER) & (tx_power <= MAX_TX_POWER))
            rows, hit, key, times = rows[accepted], hit[accepted], key[accepted], times[accepted]
            tx_power, confidence = tx_power[accepted], confidence[accepted]
        if self.log_order:  # each key's rows by position is by (time, row id): nearly sorted already
            order = np.argsort(key * np.int64(len(obs)) + rows, kind="stable")
        else:
            order = np.lexsort((obs.row_ids[rows], times, key))  # per key: by time, then row
        rows, hit, key, times = rows[order], hit[order], key[order], times[order]
        tx_power, confidence = tx_power[order], confidence[order]
        return MatchColumns(
            scheme=GAEN.name,
            key_of=whole.key,
            verified=whole.verified,
            key=rows_in_whole[key],
            row_ids=obs.row_ids[rows].astype(np.int64, copy=False),  # (gathered: already a copy)
            ids=take_rows(index.unique_ids, unique[hit]),
            times=times.astype(np.float64, copy=False),  # (gathered once, above)
            rssi=obs.rssi[rows].astype(np.float64, copy=False),
            tx_power=tx_power,
            calibration_confidence=confidence,
        )


def _runs(values: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.intp]]:
    """``np.unique(values, return_inverse=True)`` of values already in ascending order (no sort)."""
    new = np.ones(values.size, np.bool_)
    np.not_equal(values[1:], values[:-1], out=new[1:])
    inverse = np.cumsum(new, dtype=np.intp)
    inverse -= 1
    return values[new], inverse


def _split(keys: object) -> tuple[KeyBatch, PreparedKeys | None]:
    """The batch of ``keys`` and, if they come prepared, the prepared keys; anything else is a
    TypeError saying what is taken."""
    if isinstance(keys, PreparedKeys):
        return keys.batch, keys
    if not isinstance(keys, KeyBatch):
        raise TypeError(f"keys must be a KeyBatch or PreparedKeys, got {type(keys).__name__}")
    return keys, None


def _windows(batch: KeyBatch, prepared: PreparedKeys | None) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Each key's window: prepared, or worked out now."""
    return key_windows(batch) if prepared is None else (prepared.low, prepared.high)


def _probe(
    keys: KeyBatch | PreparedKeys, index: ObservedIdIndex, crypto: CryptoBackend
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Every key's valid RPIs probed against ``index``: (key row x 144 + interval, unique-ID index).
    Plain keys derive their RPIKs here; prepared ones bring them."""
    if isinstance(keys, PreparedKeys):
        rpiks, blocks, rows, periods = keys.rpiks, keys.blocks, keys.block_rows, keys.batch.rolling_period
    else:
        rpiks, blocks, rows = rpi_inputs(keys.key_data, keys.rolling_start, crypto)
        periods = keys.rolling_period
    return crypto.aes_ecb_probe(rpiks, blocks, rows, periods, index)


@dataclass(frozen=True, slots=True, eq=False)
class _Narrowing:
    """The first pass over a :class:`SightingSource`: which keys derive an observed ID, and which IDs.

    Its ``match_batch`` keeps the keys that hit (and every REVOKED key: it withdraws its twin) with the
    unique IDs they hit; only those keys, against only the sightings of those IDs, reach the exact pass.
    """

    index: ObservedIdIndex
    spans: tuple[NDArray[np.float64], NDArray[np.float64]]
    backend: str | None = None

    def match_batch(self, batch: KeyBatch | PreparedKeys) -> list[tuple[Chunk, NDArray[np.int64]]]:
        crypto = crypto_backend(self.backend)
        plain, prepared = _split(batch)
        withdrawn = plain.report_type == ReportType.REVOKED
        low, high = _windows(plain, prepared)
        probed = ~withdrawn & overlaps(low, high, self.spans)  # the spans hold every sighting
        keep = withdrawn.copy()
        unique = np.zeros(0, np.int64)
        if probed.any() and len(self.index):
            rows = np.flatnonzero(probed)
            positions, unique = _probe(
                batch if rows.size == len(batch) else batch.select(probed), self.index, crypto
            )
            keep[rows[positions // TEK_ROLLING_PERIOD]] = True
        return [(batch.select(np.flatnonzero(keep)), unique)]  # the few kept rows: no mask over them all


def _narrow(
    source: SightingSource,
    keys: Iterable[DiagnosisKey | KeyBatch | PreparedKeys],
    revised_keys: Sequence[DiagnosisKey | KeyBatch | PreparedKeys],
    *,
    chunk_size: int,
    verified: bool,
    backend: str,
    workers: int,
    progress: Progress | None,
) -> tuple[list[Chunk], list[Chunk], Observations]:
    """Pass one over every key, then every revision: the keys that may match, the revisions, and the
    sightings of the IDs they derive. Matching these exactly gives what matching all keys against all
    sightings gives."""
    first = _Narrowing(ObservedIdIndex.build(source.ids), source.time_spans(), backend)
    found = run_chunks(first, _chunks(keys, chunk_size, verified), workers, progress,
                       threads=backend == "c")  # fmt: skip
    revised = list(_chunks(revised_keys, chunk_size, verified))
    hits = [unique for _, unique in found]
    hits += [first.match_batch(batch)[0][1] for batch in revised]
    unique = distinct(np.concatenate([np.zeros(0, np.int64), *hits]))
    index = first.index
    positions = np.concatenate([np.zeros(0, np.int64), *(index.rows_of(int(u)) for u in unique)])
    return [batch for batch, _ in found if len(batch)], revised, source.sightings_with(positions)


def match_gaen(
    keys: Iterable[DiagnosisKey | KeyBatch | PreparedKeys] | KeyBatch | PreparedKeys,
    observations: Observations | GaenMatcher | SightingSource,
    *,
    revised_keys: Sequence[DiagnosisKey | KeyBatch | PreparedKeys] | KeyBatch | PreparedKeys = (),
    workers: int | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    verified: bool = False,
    backend: str | None = None,
    progress: Progress | None = None,
) -> list[KeyMatch]:
    """Match published keys against observed GAEN sightings; one :class:`KeyMatch` per matched key.

    ``keys`` is consumed in chunks of ``chunk_size`` (memory stays bounded whatever its length);
    ``workers`` processes share the chunks (default: all cores). ``revised_keys`` is a value (a batch
    or a sequence, read before any key: an iterator is refused, so no revision can depend on the keys
    having been read first), in order, and the LAST revision of a key wins: a REVOKED one removes the
    key's match, any other replaces the key's report type, transmission risk and onset (and is matched
    itself if the original was not published). A key published as REVOKED is never a match and
    withdraws its key.
    ``verified`` marks plain :class:`DiagnosisKey` values; batches carry their own flag. Batches may
    come as :class:`PreparedKeys` (each key's RPIK and AEMK derived once, for many logs), in ``keys``
    and ``revised_keys``: the same result without the per-key HKDF. The result is sorted by key bytes
    and start, so it is the same whatever the workers. ``backend`` (a
    :data:`proximity.crypto.CHOICES` name; default: ``PROXIMITY_MATCH_BACKEND``) changes only the speed.
    ``observations`` may be a :class:`~proximity.matching.source.SightingSource` (the encounter log):
    a first pass over its IDs alone keeps the keys that derive one, and only the sightings of the IDs
    found are read for the exact pass.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if isinstance(revised_keys, KeyBatch | PreparedKeys):
        revised_keys = [revised_keys]
    if not isinstance(revised_keys, Sequence):
        raise TypeError(
            f"revised_keys must be a KeyBatch or a sequence (a value), got {type(revised_keys).__name__}; "
            "with export files, pass ExportStream.revision_list()"
        )
    count = resolve_workers(workers)
    if isinstance(keys, KeyBatch | PreparedKeys):
        keys = [keys]  # one batch, not an iterable of its keys (which would lose its verified flag)
    if isinstance(observations, SightingSource):
        resolved = resolve_backend(backend)
        # the first pass reads the revisions only after the keys: a value that reads its files on
        # first use (ExportStream.revision_list) then costs nothing more
        keys, revised_batches, observations = _narrow(
            observations, keys, revised_keys, chunk_size=chunk_size, verified=verified,
            backend=resolved, workers=count, progress=progress,
        )  # fmt: skip
        backend, progress, count = resolved, None, 1  # the exact pass: a few keys, already counted
    else:
        revised_batches = list(_chunks(revised_keys, chunk_size, verified))
    matcher = observations if isinstance(observations, GaenMatcher) else GaenMatcher.build(observations)
    # Resolve once, here: a forced but unavailable backend fails before any work, and workers agree.
    matcher = matcher.with_backend(resolve_backend(backend if backend is not None else matcher.backend))
    revoked: set[tuple[bytes, int]] = set()
    chunks = _noting_revoked(_chunks(keys, chunk_size, verified), revoked)
    # The C backend releases the GIL for the whole derive-and-probe loop: threads share the matcher.
    found = run_chunks(matcher, chunks, count, progress, threads=matcher.backend == "c")
    # Revisions are read in order and the LAST revision of a key wins (REVOKED or not): only those
    # that are last and not REVOKED are matched.
    identities = [_identities(_plain(batch)) for batch in revised_batches]
    last = {identity: (b, row) for b, ids in enumerate(identities) for row, identity in enumerate(ids)}
    revisions: dict[tuple[bytes, int], DiagnosisKey] = {}
    revised_found: list[KeyMatch] = []
    for b, (batch, ids) in enumerate(zip(revised_batches, identities, strict=True)):
        final = np.array([last[identity] == (b, row) for row, identity in enumerate(ids)], np.bool_)
        for row in np.flatnonzero(final).tolist():
            key = _plain(batch).key(row)
            revisions[key.identity] = key
        revised_found += matcher.match_batch(batch.select(final))  # drops the REVOKED ones
    return _merge(found, revised_found, revisions, revoked)


def _identities(batch: KeyBatch) -> list[tuple[bytes, int]]:
    data = batch.key_data.tobytes()
    return [(data[16 * i : 16 * i + 16], int(s)) for i, s in enumerate(batch.rolling_start.tolist())]


def _noting_revoked(chunks: Iterable[Chunk], revoked: set[tuple[bytes, int]]) -> Iterator[Chunk]:
    """The chunks unchanged, noting the identities published as REVOKED (they withdraw the key)."""
    for chunk in chunks:
        plain = _plain(chunk)
        flagged = plain.report_type == ReportType.REVOKED
        if flagged.any():
            revoked.update(_identities(plain.select(flagged)))
        yield chunk


def _plain(chunk: Chunk) -> KeyBatch:
    return _split(chunk)[0]


def _chunks(
    keys: Iterable[DiagnosisKey | KeyBatch | PreparedKeys], size: int, verified: bool
) -> Iterator[Chunk]:
    """:func:`batches_of`, with prepared keys cut into chunks of ``size`` as they are (crypto kept);
    one run of plain keys and batches at a time, so memory stays bounded."""
    for is_prepared, run in itertools.groupby(keys, lambda item: isinstance(item, PreparedKeys)):
        if not is_prepared:
            yield from batches_of(cast(Iterator[DiagnosisKey | KeyBatch], run), size, verified=verified)
            continue
        for prepared in cast(Iterator[PreparedKeys], run):
            for start in range(0, len(prepared), size):  # slices: views, nothing copied
                yield prepared.select(slice(start, min(start + size, len(prepared))))


def _merge(
    found: list[KeyMatch],
    revised_found: list[KeyMatch],
    revisions: dict[tuple[bytes, int], DiagnosisKey],
    revoked: set[tuple[bytes, int]],
) -> list[KeyMatch]:
    """One match per key identity: the last revision wins, REVOKED drops, duplicates collapse; sorted.

    ``revisions`` holds the last revision of every revised key; ``revoked`` the keys published as
    REVOKED among the keys themselves.
    """
    chosen: dict[tuple[bytes, int], KeyMatch] = {}
    for match in sorted(found, key=_order):
        assert isinstance(match.key, DiagnosisKey)
        identity = match.key.identity
        if identity in revisions or identity in revoked:
            continue
        chosen.setdefault(identity, match)
    for match in sorted(revised_found, key=_order):  # only last revisions were matched
        assert isinstance(match.key, DiagnosisKey)
        chosen.setdefault(match.key.identity, match)
    merged = list(chosen.values())  # a subsequence of the sorted matches, unless revisions joined
    return sorted(merged, key=_order) if revised_found else merged


def _order(match: KeyMatch) -> tuple[object, ...]:
    """Matches sorted; of one key published twice with other metadata, the same copy wins whatever
    order the workers (or the two passes over a log) finished in."""
    key = match.key
    assert isinstance(key, DiagnosisKey)
    onset = key.days_since_onset_of_symptoms
    metadata = (key.report_type, key.transmission_risk_level, onset is None, onset or 0, match.verified)
    return (*match.sort_key, -len(match), key.tek.rolling_period, *metadata)
