"""Per-pair state streamed through a run: close time (ground truth) and the sightings awaiting judgement.

Memory holds only pairs still in play. A pair is *settled* (judged, then dropped) when nothing can
change its verdict any more:

- exactly: after the UTC day of its last sighting (estimators and the contact rule work per UTC day),
  or at the end of the run;
- with ``forget`` > 0 s (city runs): also once it has been apart (not close / not heard) for
  ``forget`` s. A pair that meets again later that day starts afresh, so time is summed per meeting,
  not per day, for both the truth and the estimators. Without it, a city day of walkers holds
  hundreds of millions of brief close pairs;
- with ``hold`` > 0 s: the sightings of a pair heard for longer than ``hold`` s are judged as one
  piece and the pair starts afresh (neighbours who stay together all day would otherwise hold the
  whole day's sightings). The contact rule (truth) is unaffected: it keeps one number per pair.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.times import SECONDS_PER_DAY

__all__ = ["CloseTime", "HeardPairs"]


class CloseTime:
    """Seconds each pair (i < j) spent within the contact distance, per UTC day; yields true contacts."""

    def __init__(self, n: int, threshold: float, forget: float, *, record: bool = False) -> None:
        self.n = np.int64(n)
        self.threshold = threshold
        self.forget = forget
        self.record = record  # keep every settled pair's (key, seconds, distance-seconds, minimum)
        self.settled: list[
            tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
        ] = []
        self._keys = np.zeros(0, np.int64)  # (day * n + i) * n + j
        self._secs = np.zeros(0)
        self._dist = np.zeros(0)  # distance x seconds while close
        self._min = np.zeros(0)
        self._last = np.zeros(0)
        self.peak = 0

    def add(
        self,
        keys: NDArray[np.int64],
        seconds: NDArray[np.float64],
        now: float,
        distance_seconds: NDArray[np.float64] | None = None,
        distance_min: NDArray[np.float64] | None = None,
    ) -> None:
        # the batch's keys are merged into the sorted keys held (the pairs, not a sort of them all);
        # the sums run in the order bincount over (held, batch) ran them: held, then the batch's
        codes, inverse = np.unique(np.asarray(keys, np.int64), return_inverse=True)
        slot, held, places = _insert(self._keys, codes)
        if places is not None:
            fresh = int(np.count_nonzero(~held))
            self._keys = _merged(self._keys, *places, codes[~held])
            self._secs = _merged(self._secs, *places, np.zeros(fresh))
            self._last = _merged(self._last, *places, np.full(fresh, -np.inf))
            if self.record:
                self._dist = _merged(self._dist, *places, np.zeros(fresh))
                self._min = _merged(self._min, *places, np.full(fresh, np.inf))
        rows = slot[inverse.ravel()]
        np.add.at(self._secs, rows, seconds)
        if self.record:
            if distance_seconds is not None:
                np.add.at(self._dist, rows, distance_seconds)
            if distance_min is not None:
                np.fmin.at(self._min, rows, distance_min)
        self._last[slot] = np.maximum(self._last[slot], now)
        self.peak = max(self.peak, int(self._keys.size))

    def settle(self, now: float, final: bool = False) -> set[tuple[int, int]]:
        """Drop the pairs that are settled at ``now``; return those of them that met the rule."""
        day = self._keys // (self.n * self.n)
        done = (day + 1) * SECONDS_PER_DAY <= now
        if final:
            done[:] = True
        elif self.forget > 0:
            done |= self._last < now - self.forget
        met = done & (self._secs >= self.threshold - 1e-9)
        pairs = self._keys[met] % (self.n * self.n)
        out = set(zip((pairs // self.n).tolist(), (pairs % self.n).tolist(), strict=True))
        if self.record and done.any():
            self.settled.append((self._keys[done], self._secs[done], self._dist[done], self._min[done]))
        keep = ~done
        self._keys, self._secs, self._last = self._keys[keep], self._secs[keep], self._last[keep]
        if self.record:
            self._dist, self._min = self._dist[keep], self._min[keep]
        return out


@dataclass(frozen=True, slots=True, eq=False)
class Heard:
    """One phone's logged sightings of one counterpart (the CounterpartSightings shape)."""

    times: NDArray[np.float64]
    rssi: NDArray[np.float64]
    tx_power: NDArray[np.float64]


class HeardPairs:
    """Logged sightings per (scanner, counterpart), held column-wise until the pair is settled.

    Each :meth:`add` appends its rows as one segment (pair code, time, RSSI as float32: radios report
    whole dBm; sorted by (pair, time), each pair's rows in the order they came) and updates a sorted
    table of the pairs held (count, first and last time): no row already held is moved, so an add
    costs its batch and the pairs, not the rows held. Settling gathers a pair's rows from the
    segments that can hold them (its first..last time overlaps theirs and its scanner logged rows
    there: phones scan a few seconds every few minutes), oldest first, and only marks them dead; a
    segment is rewritten once more than half of it is dead, dropped once all of it is, and neighbours
    are merged only beyond :data:`SEGMENTS` of them (runs without ``hold``), so the rows cost about
    20 bytes each (and each segment one flag an agent) and no transient the size of everything held.
    A pair settled and heard again starts afresh: its rows in segments from before then are dead
    (``since``). A batch with rows older than a pair's rows held marks the pair ``late``: its rows are
    sorted when settled.
    A counterpart of -1 (an ID nobody in the run broadcast) is kept as its own pair ``(scanner, -1)``:
    the code is ``scanner * (n + 1) + counterpart + 1``, never negative, and decodes back to exactly
    that (a code of ``scanner * n + counterpart`` would turn -1 into the previous scanner's agent n - 1).
    """

    def __init__(self, n: int, forget: float, hold: float = 0.0) -> None:
        self.n = np.int64(n)
        self._stride = np.int64(n + 1)  # counterpart + 1 in [0, n]
        self.forget = forget
        self.hold = hold
        self._segments: list[_Segment] = []  # oldest first
        self._serial = 0  # of the next segment
        self._rows = 0  # live rows
        self._pairs = np.zeros(0, np.int64)  # codes of the pairs held, sorted
        self._count = np.zeros(0, np.int64)  # ... how many rows each holds
        self._last = np.zeros(0, np.float64)  # ... when each was last heard
        self._first = np.zeros(0, np.float64)  # ... and first (since it was last settled)
        self._since = np.zeros(0, np.int64)  # ... the first segment of its rows
        self._late = np.zeros(0, np.bool_)  # ... whether a batch came with rows older than its last
        self.peak_rows = 0
        self.peak_pairs = 0

    @property
    def rows(self) -> int:
        return self._rows

    def add(
        self,
        scanner: NDArray[np.int64],
        counterpart: NDArray[np.int64],
        times: NDArray[np.float64],
        rssi: NDArray[np.float64],
    ) -> None:
        if times.size == 0:
            return
        counterpart = np.asarray(counterpart, np.int64)  # no copy of the simulator's int64 columns
        if counterpart.min() < -1 or counterpart.max() >= self.n:
            raise ValueError(f"counterparts must be agents 0..{self.n - 1} or -1 (unknown)")
        if not np.isfinite(times).all():  # settling finds a pair's rows by its first..last time
            raise ValueError("sighting times must be finite")
        code = np.asarray(scanner, np.int64) * self._stride
        code += counterpart
        code += 1
        # the batch by (pair, time): a stable sort by pair where each pair's rows come in time order
        order = np.argsort(code, kind="stable")
        ranked, ranked_times = code[order], times[order]
        same = ranked[1:] == ranked[:-1]
        if bool(np.any(same & (ranked_times[1:] < ranked_times[:-1]))):
            order = np.lexsort((times, code))
            ranked, ranked_times = code[order], times[order]
            same = ranked[1:] == ranked[:-1]
        starts = np.concatenate(([0], np.flatnonzero(~same) + 1))
        codes = ranked[starts]
        count = np.diff(np.append(starts, code.size))
        latest = np.maximum.reduceat(ranked_times, starts)
        earliest = np.minimum.reduceat(ranked_times, starts)
        serial = self._serial
        # the pairs not held yet are merged into the sorted codes (the pairs, not the rows)
        slot, held, places = _insert(self._pairs, codes)
        if places is not None:
            fresh = int(np.count_nonzero(~held))
            self._pairs = _merged(self._pairs, *places, codes[~held])
            self._count = _merged(self._count, *places, np.zeros(fresh, np.int64))
            self._last = _merged(self._last, *places, np.full(fresh, -np.inf))
            self._first = _merged(self._first, *places, np.full(fresh, np.inf))
            self._since = _merged(self._since, *places, np.full(fresh, serial, np.int64))
            self._late = _merged(self._late, *places, np.zeros(fresh, np.bool_))
        self._late[slot] |= earliest < self._last[slot]  # rows before some already held
        self._last[slot] = np.maximum(self._last[slot], latest)
        self._first[slot] = np.minimum(self._first[slot], earliest)
        self._count[slot] += count
        self._segments.append(_Segment(serial, ranked, ranked_times, rssi[order].astype(np.float32)))
        self._serial += 1
        self._rows += int(code.size)
        self.peak_rows = max(self.peak_rows, self._rows)
        self.peak_pairs = max(self.peak_pairs, int(self._pairs.size))

    def mirror(self, other: HeardPairs) -> None:
        """Hold a copy of what ``other`` holds: the state :meth:`add` would reach from the same adds
        (the simulator's matched rows when every row logged so far was matched, by its sender's key).
        The segments' rows are shared, not copied: they are never written in place (rewriting or
        merging a segment makes new ones); the per-pair columns are, so those are copied."""
        self._segments = [segment.copy() for segment in other._segments]
        self._serial, self._rows = other._serial, other._rows
        self._pairs, self._count = other._pairs.copy(), other._count.copy()
        self._last, self._first = other._last.copy(), other._first.copy()
        self._since, self._late = other._since.copy(), other._late.copy()
        self.peak_rows, self.peak_pairs = other.peak_rows, other.peak_pairs

    def settle(
        self, now: float, final: bool = False
    ) -> Iterator[tuple[int, int, NDArray[np.float64], NDArray[np.float64]]]:
        """(scanner, counterpart, times, rssi) of every pair settled at ``now``, in code order."""
        scanner, counterpart, times, rssi = self.settle_columns(now, final)
        cuts = np.flatnonzero(np.diff(scanner) | np.diff(counterpart)) + 1
        starts = np.concatenate(([0], cuts)).tolist() if times.size else []
        ends = np.concatenate((cuts, [times.size])).tolist() if times.size else []
        for lo, hi in zip(starts, ends, strict=True):
            yield int(scanner[lo]), int(counterpart[lo]), times[lo:hi], rssi[lo:hi]

    def settle_columns(
        self, now: float, final: bool = False
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        """The rows of every pair settled at ``now`` as columns (scanner, counterpart, time, RSSI),
        sorted by (scanner, counterpart, time): one batch for the estimators."""
        pieces = list(self.settle_pieces(now, final, rows=max(self.rows, 1)))
        if not pieces:
            empty = np.zeros(0, np.int64)
            return empty, empty, np.zeros(0), np.zeros(0)
        (piece,) = pieces
        return piece

    def settle_pieces(
        self, now: float, final: bool = False, rows: int = 1_000_000
    ) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]]:
        """:meth:`settle_columns` cut into pieces of whole pairs of about ``rows`` rows (a pair may
        exceed it), in order, so a settlement of millions of rows (a run's end) is never held at
        once. The settled pairs leave the ledger when the iterator is exhausted."""
        midnight = np.floor(now / SECONDS_PER_DAY) * SECONDS_PER_DAY
        done = self._last < midnight
        if final:
            done[:] = True
        else:
            if self.forget > 0:
                done |= self._last < now - self.forget
            if self.hold > 0:
                done |= self._first < now - self.hold
        if not done.any():
            return
        pairs = np.flatnonzero(done)
        counts = self._count[pairs]
        upto = np.cumsum(counts)
        ends = np.searchsorted(upto, np.arange(rows, int(upto[-1]), rows), side="left") + 1
        bounds = np.unique(np.concatenate(([0], ends, [pairs.size]))).tolist()
        # each segment's rows settled (none needed at the end: every segment goes)
        taken: list[NDArray[np.bool_] | None] | None = None if final else [None] * len(self._segments)
        for lo, hi in pairwise(bounds):
            yield self._gathered(pairs[lo:hi], counts[lo:hi], taken)
        if taken is None:
            self._segments = []
        for segment, rows_taken in zip(self._segments, taken or [], strict=True):
            if rows_taken is not None:
                segment.dead += int(np.count_nonzero(rows_taken))
                # a new mask, not written into: a mirror may share the old one
                segment.gone = rows_taken if segment.gone is None else segment.gone | rows_taken
        self._rows -= int(upto[-1])
        keep = ~done
        self._pairs, self._count = self._pairs[keep], self._count[keep]
        self._last, self._first = self._last[keep], self._first[keep]
        self._since, self._late = self._since[keep], self._late[keep]
        self._tidy()

    def _gathered(
        self,
        piece: NDArray[np.int64],
        count: NDArray[np.int64],
        taken: list[NDArray[np.bool_] | None] | None,
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        """The rows of the held pairs at indices ``piece`` (``count`` rows each), oldest segment
        first, so each pair's rows come in the order they came (sorted by time for a late pair);
        the rows taken are marked in ``taken`` (one mask per segment)."""
        codes, first, last, since = (
            self._pairs[piece],
            self._first[piece],
            self._last[piece],
            self._since[piece],
        )
        filled = np.cumsum(count) - count  # where each pair's next rows go
        scanner = codes // self._stride
        time = np.empty(int(count.sum()))
        rssi = np.empty(time.size, np.float32)
        for i, segment in enumerate(self._segments):
            # only segments whose times overlap the pair's first..last, and which hold rows of its
            # scanner (phones scan a few seconds every few minutes), can hold its rows
            overlap = (first <= segment.high) & (last >= segment.low) & (since <= segment.serial)
            overlap &= segment.scanners(self._stride, self.n)[scanner]
            near = np.flatnonzero(overlap)
            if not near.size:
                continue
            start = np.searchsorted(segment.code, codes[near], side="left")
            found = start < segment.code.size
            found[found] = segment.code[start[found]] == codes[near[found]]
            near, start = near[found], start[found]
            if not near.size:
                continue
            size = np.searchsorted(segment.code, codes[near], side="right") - start
            rows = _ranges(start, size)
            into = _ranges(filled[near], size)
            time[into] = segment.time[rows]
            rssi[into] = segment.rssi[rows]
            filled[near] += size
            if taken is not None:
                mark = taken[i]
                if mark is None:
                    mark = taken[i] = np.zeros(segment.code.size, np.bool_)
                mark[rows] = True
        code = np.repeat(codes, count)
        if bool(self._late[piece].any()):  # some rows came after later ones: by (pair, time)
            again = np.lexsort((time, code))
            time, rssi = time[again], rssi[again]
        scanner, counterpart = np.divmod(code, self._stride)
        return scanner, counterpart - 1, time, rssi.astype(np.float64)

    def _tidy(self) -> None:
        """Drop dead segments, rewrite those more than half dead, and merge the smallest neighbours
        while there are more than :data:`SEGMENTS`."""
        kept: list[_Segment] = []
        for segment in self._segments:
            if segment.dead == segment.code.size:
                continue
            kept.append(_Segment.merged([segment]) if 2 * segment.dead > segment.code.size else segment)
        while len(kept) > SEGMENTS:
            size = [segment.code.size - segment.dead for segment in kept]
            i = min(range(len(kept) - 1), key=lambda i: size[i] + size[i + 1])
            kept[i : i + 2] = [_Segment.merged(kept[i : i + 2])]
        self._segments = kept


SEGMENTS = 64
"""Segments a :class:`HeardPairs` keeps before merging neighbours. A city run with ``hold`` keeps
about hold / chunk + 1 (older rows are all settled); a run without it would otherwise keep one per
chunk, and every settlement looks at each."""


class _Segment:
    """The rows one :meth:`HeardPairs.add` brought (or a merge of neighbouring segments): codes, times
    and RSSIs sorted by code, each pair's rows in the order they came. The arrays are never written in
    place (a mirror shares them, and ``gone``, the mask of the rows settled since, is replaced)."""

    __slots__ = ("_scanners", "code", "dead", "gone", "high", "low", "rssi", "serial", "time")

    def __init__(
        self, serial: int, code: NDArray[np.int64], time: NDArray[np.float64], rssi: NDArray[np.float32]
    ) -> None:
        self.serial = serial  # a pair (re)started after this segment has no live rows in it
        self.code, self.time, self.rssi = code, time, rssi
        self._scanners: NDArray[np.bool_] | None = None
        self.low = float(time.min()) if time.size else np.inf
        self.high = float(time.max()) if time.size else -np.inf
        self.dead = 0
        self.gone: NDArray[np.bool_] | None = None

    def copy(self) -> _Segment:
        twin = _Segment.__new__(_Segment)
        twin.serial, twin.code, twin.time, twin.rssi = self.serial, self.code, self.time, self.rssi
        twin.low, twin.high, twin.dead, twin.gone = self.low, self.high, self.dead, self.gone
        twin._scanners = self._scanners
        return twin

    def scanners(self, stride: np.int64, n: np.int64) -> NDArray[np.bool_]:
        """Which of the ``n`` agents logged a row here (codes are scanner x ``stride`` + ...): one flag
        an agent, made on first use and kept (the rows never change)."""
        if self._scanners is None:
            self._scanners = np.zeros(int(n), np.bool_)
            self._scanners[self.code // stride] = True
        return self._scanners

    @staticmethod
    def merged(parts: list[_Segment]) -> _Segment:
        """One segment of the live rows of ``parts`` (neighbours, oldest first): a stable sort by
        code keeps each pair's rows in the order they came."""
        if len(parts) == 1:  # a rewrite: its live rows are in order already (no sort, one copy)
            (part,) = parts
            live = slice(None) if part.gone is None else ~part.gone
            return _Segment(part.serial, part.code[live], part.time[live], part.rssi[live])
        keeps = [np.ones(part.code.size, np.bool_) if part.gone is None else ~part.gone for part in parts]
        code = np.concatenate([part.code[keep] for part, keep in zip(parts, keeps, strict=True)])
        order = np.argsort(code, kind="stable")
        time = np.concatenate([part.time[keep] for part, keep in zip(parts, keeps, strict=True)])
        rssi = np.concatenate([part.rssi[keep] for part, keep in zip(parts, keeps, strict=True)])
        return _Segment(max(part.serial for part in parts), code[order], time[order], rssi[order])


def _ranges(start: NDArray[np.int64], count: NDArray[np.int64]) -> NDArray[np.int64]:
    """The indices start[0]..start[0]+count[0]-1, start[1].., one range after another."""
    total = int(count.sum())
    steps = np.arange(total, dtype=np.int64)
    steps += np.repeat(start - (np.cumsum(count) - count), count)
    return steps


def _insert(
    held: NDArray[np.int64], codes: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.bool_], tuple[NDArray[np.int64], NDArray[np.int64]] | None]:
    """Each of ``codes`` (sorted, unique)'s index in ``held`` (sorted, unique) once those not held
    are merged in, which of them were held, and (unless all were) where :func:`_merged` puts the
    held entries and the fresh ones."""
    at = np.searchsorted(held, codes)
    found = at < held.size
    found[found] = held[at[found]] == codes[found]
    if found.all():
        return at, found, None
    missing = ~found
    fresh = codes[missing]
    slot = np.cumsum(missing, dtype=np.int64)  # each code's rank among the fresh (both sorted): no search
    slot -= missing
    slot += at
    added = np.zeros(held.size + fresh.size, np.bool_)
    added[slot[missing]] = True
    return slot, found, (np.flatnonzero(~added), slot[missing])


def _merged(
    values: NDArray[Any], old: NDArray[np.int64], place: NDArray[np.int64], new: NDArray[Any]
) -> NDArray[Any]:
    """``values`` at positions ``old`` and ``new`` at ``place`` of one array (the two cover it)."""
    out = np.empty(old.size + place.size, values.dtype)
    out[old] = values
    out[place] = new
    return out
