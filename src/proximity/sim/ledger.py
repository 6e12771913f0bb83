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

    Each :meth:`add` appends its rows as one segment (time and RSSI, sorted by (pair, time), each
    pair's rows in the order they came, and the segment's pairs: see :class:`_Segment`; RSSIs are
    read as float32: radios report whole dBm) and updates a sorted table of the pairs held (count,
    first and last time): no row already held is moved, so an add costs its batch and the pairs,
    not the rows held. Settling gathers a pair's rows from the
    segments that can hold them (its first..last time overlaps theirs and its scanner logged rows
    there: phones scan a few seconds every few minutes), oldest first, and only marks them dead; a
    segment is rewritten once more than half of it is dead, dropped once all of it is, and neighbours
    are merged only beyond :data:`SEGMENTS` of them (runs without ``hold``), so the rows cost about
    10 bytes each in a city run (4 for the time, 1 for the RSSI, ~5 for the segment's pairs and dead
    ones not yet rewritten), each pair held 33 and each segment one flag an agent, and there is no
    transient the size of everything held.
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
        self._count = np.zeros(0, np.int32)  # ... how many rows each holds
        self._last = np.zeros(0, np.float64)  # ... when each was last heard
        self._first = np.zeros(0, np.float64)  # ... and first (since it was last settled)
        self._since = np.zeros(0, np.int32)  # ... the first segment of its rows
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
            self._count = _merged(self._count, *places, np.zeros(fresh, np.int32))
            self._last = _merged(self._last, *places, np.full(fresh, -np.inf))
            self._first = _merged(self._first, *places, np.full(fresh, np.inf))
            self._since = _merged(self._since, *places, np.full(fresh, serial, np.int32))
            self._late = _merged(self._late, *places, np.zeros(fresh, np.bool_))
        self._late[slot] |= earliest < self._last[slot]  # rows before some already held
        self._last[slot] = np.maximum(self._last[slot], latest)
        self._first[slot] = np.minimum(self._first[slot], earliest)
        self._count[slot] += count
        bounds = np.append(starts, code.size)
        ranked_rssi = rssi[order].astype(np.float32)
        self._segments.append(_Segment.packed(serial, codes, bounds, ranked_times, ranked_rssi))
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
        counts = self._count[pairs].astype(np.int64)
        upto = np.cumsum(counts)
        ends = np.searchsorted(upto, np.arange(rows, int(upto[-1]), rows), side="left") + 1
        bounds = np.unique(np.concatenate(([0], ends, [pairs.size]))).tolist()
        # each segment's pairs settled (none needed at the end: every segment goes)
        taken: list[NDArray[np.bool_] | None] | None = None if final else [None] * len(self._segments)
        dead = [0] * len(self._segments)  # ... and their rows
        for lo, hi in pairwise(bounds):
            yield self._gathered(pairs[lo:hi], counts[lo:hi], taken, dead)
        if taken is None:
            self._segments = []
        else:
            for segment, pairs_taken, rows_taken in zip(self._segments, taken, dead, strict=True):
                if pairs_taken is not None:
                    segment.dead += rows_taken
                    # a new mask, not written into: a mirror may share the old one
                    segment.gone = pairs_taken if segment.gone is None else segment.gone | pairs_taken
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
        dead: list[int],
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        """The rows of the held pairs at indices ``piece`` (``count`` rows each), oldest segment
        first, so each pair's rows come in the order they came (sorted by time for a late pair);
        the pairs taken are marked in ``taken`` (one mask per segment), their rows counted in ``dead``."""
        codes, first, last, since = (
            self._pairs[piece],
            self._first[piece],
            self._last[piece],
            self._since[piece],
        )
        filled = np.cumsum(count) - count  # where each pair's next rows go (int64)
        scanner = codes // self._stride
        time = np.empty(int(count.sum()))
        rssi = np.empty(time.size)
        for i, segment in enumerate(self._segments):
            # only segments whose times overlap the pair's first..last, and which hold rows of its
            # scanner (phones scan a few seconds every few minutes), can hold its rows
            overlap = (first <= segment.high) & (last >= segment.low) & (since <= segment.serial)
            overlap &= segment.scanners(self._stride, self.n)[scanner]
            near = np.flatnonzero(overlap)
            if not near.size:
                continue
            at = segment.find(codes[near])
            found = at >= 0
            near, at = near[found], at[found]
            if not near.size:
                continue
            start = segment.bounds[at].astype(np.int64)
            size = segment.bounds[at + 1] - start
            rows = _ranges(start, size)
            into = _ranges(filled[near], size)
            time[into] = segment.times(rows)
            rssi[into] = segment.rssi[rows]
            filled[near] += size
            if taken is not None:
                mark = taken[i]
                if mark is None:
                    mark = taken[i] = np.zeros(segment.bounds.size - 1, np.bool_)
                mark[at] = True
                dead[i] += rows.size
        code = np.repeat(codes, count)
        if bool(self._late[piece].any()):  # some rows came after later ones: by (pair, time)
            again = np.lexsort((time, code))
            time, rssi = time[again], rssi[again]
        scanner, counterpart = np.divmod(code, self._stride)
        return scanner, counterpart - 1, time, rssi

    def _tidy(self) -> None:
        """Drop dead segments, rewrite those more than half dead, and merge the smallest neighbours
        while there are more than :data:`SEGMENTS`."""
        kept: list[_Segment] = []
        for segment in self._segments:
            if segment.dead == segment.size:
                continue
            kept.append(segment.rewritten() if 2 * segment.dead > segment.size else segment)
        while len(kept) > SEGMENTS:
            size = [segment.size - segment.dead for segment in kept]
            i = min(range(len(kept) - 1), key=lambda i: size[i] + size[i + 1])
            kept[i : i + 2] = [_Segment.merged(kept[i : i + 2])]
        self._segments = kept


SEGMENTS = 64
"""Segments a :class:`HeardPairs` keeps before merging neighbours. A city run with ``hold`` keeps
about hold / chunk + 1 (older rows are all settled); a run without it would otherwise keep one per
chunk, and every settlement looks at each."""


class _Segment:
    """The rows one :meth:`HeardPairs.add` brought (or a merge of neighbouring segments), sorted by
    pair code, each pair's rows in the order they came. A row keeps no code: the segment keeps its
    pairs' codes (``keys``, sorted: their low 32 bits, in runs of one high part) and where each
    one's rows begin (``bounds``), so a settled pair's rows are found by one search among the
    segment's pairs (about half as many as its rows), not its rows. Times are kept as
    :func:`_packed_times` gives them and RSSIs as :func:`_packed_rssi` does: exact either way. The
    arrays are never written in place (a mirror shares them, and ``gone``, which of the pairs here
    were settled since, is replaced)."""

    __slots__ = (
        "_heads", "_lows", "_scanners", "_splits", "base", "bounds", "dead", "gone", "high", "low",
        "quantum", "rssi", "serial", "time",
    )  # fmt: skip

    def __init__(
        self,
        serial: int,
        keys: NDArray[np.int64],
        bounds: NDArray[np.int64] | NDArray[np.int32],
        time: NDArray[Any],
        rssi: NDArray[Any],
        base: float = 0.0,
        quantum: float = 0.0,
    ) -> None:
        self.serial = serial  # a pair (re)started after this segment has no live rows in it
        self.bounds, self.time, self.rssi = bounds, time, rssi
        high = keys >> 32
        starts = np.flatnonzero(np.diff(high, prepend=np.int64(-1)))  # codes are >= 0
        self._lows = (keys & 0xFFFFFFFF).astype(np.uint32)
        self._heads, self._splits = high[starts], np.append(starts, keys.size)  # the high parts' runs
        self.base, self.quantum = base, quantum  # time = base + stored x quantum (0: stored as is)
        self._scanners: NDArray[np.bool_] | None = None
        ends = self.times(np.array([np.argmin(time), np.argmax(time)])) if time.size else [np.inf, -np.inf]
        self.low, self.high = float(ends[0]), float(ends[1])
        self.dead = 0
        self.gone: NDArray[np.bool_] | None = None

    @staticmethod
    def packed(
        serial: int,
        keys: NDArray[np.int64],
        bounds: NDArray[np.int64],
        time: NDArray[np.float64],
        rssi: NDArray[np.float32],
    ) -> _Segment:
        """A segment of rows sorted by pair, pair ``keys[k]``'s at ``bounds[k]:bounds[k + 1]``."""
        stored, base, quantum = _packed_times(time)
        return _Segment(serial, keys, _narrow(bounds), stored, _packed_rssi(rssi), base, quantum)

    @property
    def size(self) -> int:
        """Rows here, dead or alive."""
        return int(self.time.size)

    def times(self, rows: Any) -> NDArray[np.float64]:
        """The times of ``rows`` (indices, a slice or a mask) as they came."""
        if not self.quantum:
            return np.asarray(self.time[rows], np.float64)
        return _unpacked(self.time[rows], self.base, self.quantum)

    @property
    def keys(self) -> NDArray[np.int64]:
        """The codes of the pairs here, sorted."""
        return (np.repeat(self._heads, np.diff(self._splits)) << 32) | self._lows.astype(np.int64)

    def find(self, codes: NDArray[np.int64]) -> NDArray[np.int64]:
        """Where each of ``codes`` (sorted) is among :attr:`keys`, -1 where it is not."""
        at = np.full(codes.size, -1, np.int64)
        high = codes >> 32
        for head, lo, hi in zip(
            self._heads.tolist(), self._splits[:-1].tolist(), self._splits[1:].tolist(), strict=True
        ):
            first, last = np.searchsorted(high, [head, head + 1]).tolist()
            if first == last:
                continue
            low = (codes[first:last] & 0xFFFFFFFF).astype(np.uint32)
            lows = self._lows[lo:hi]
            j = np.searchsorted(lows, low)
            ok = j < lows.size
            ok[ok] = lows[j[ok]] == low[ok]
            at[first:last] = np.where(ok, j + lo, -1)
        return at

    def copy(self) -> _Segment:
        twin = _Segment.__new__(_Segment)
        twin.serial, twin.bounds = self.serial, self.bounds
        twin._lows, twin._heads, twin._splits = self._lows, self._heads, self._splits
        twin.time, twin.rssi, twin.base, twin.quantum = self.time, self.rssi, self.base, self.quantum
        twin.low, twin.high, twin.dead, twin.gone = self.low, self.high, self.dead, self.gone
        twin._scanners = self._scanners
        return twin

    def scanners(self, stride: np.int64, n: np.int64) -> NDArray[np.bool_]:
        """Which of the ``n`` agents logged a row here (codes are scanner x ``stride`` + ...): one flag
        an agent, made on first use and kept (the rows never change)."""
        if self._scanners is None:
            self._scanners = np.zeros(int(n), np.bool_)
            self._scanners[self.keys // stride] = True
        return self._scanners

    def rewritten(self) -> _Segment:
        """This segment's live rows alone: in order already (no sort, one copy, stored as they are)."""
        if self.gone is None:
            return self.copy()
        live = ~self.gone
        sizes = np.diff(self.bounds)
        rows = np.repeat(live, sizes)
        bounds = _narrow(np.concatenate(([0], np.cumsum(sizes[live], dtype=np.int64))))
        return _Segment(
            self.serial, self.keys[live], bounds, self.time[rows], self.rssi[rows], self.base, self.quantum
        )

    @staticmethod
    def merged(parts: list[_Segment]) -> _Segment:
        """One segment of the live rows of ``parts`` (neighbours, oldest first): each pair's rows
        from the oldest part first, so in the order they came."""
        codes: list[NDArray[np.int64]] = []
        sizes: list[NDArray[np.int64]] = []
        times: list[NDArray[np.float64]] = []
        rssis: list[NDArray[np.float32]] = []
        for part in parts:
            size = np.diff(part.bounds).astype(np.int64)
            if part.gone is None:
                codes.append(part.keys)
                sizes.append(size)
                times.append(part.times(slice(None)))
                rssis.append(part.rssi.astype(np.float32))
            else:
                live = ~part.gone
                live_rows = np.repeat(live, size)
                codes.append(part.keys[live])
                sizes.append(size[live])
                times.append(part.times(live_rows))
                rssis.append(part.rssi[live_rows].astype(np.float32))
        code, size = np.concatenate(codes), np.concatenate(sizes)
        order = np.argsort(code, kind="stable")  # a pair's entries, oldest part first
        rows = _ranges((np.cumsum(size) - size)[order], size[order])
        code, size = code[order], size[order]
        starts = np.flatnonzero(np.diff(code, prepend=np.int64(-1)))  # codes are >= 0
        bounds = np.zeros(starts.size + 1, np.int64)
        if starts.size:
            np.cumsum(np.add.reduceat(size, starts), out=bounds[1:])
        time, rssi = np.concatenate(times)[rows], np.concatenate(rssis)[rows]
        return _Segment.packed(max(part.serial for part in parts), code[starts], bounds, time, rssi)


def _narrow(values: NDArray[np.int64]) -> NDArray[np.int64] | NDArray[np.int32]:
    """Row offsets as int32 when they fit (they do but in segments of over 2**31 rows)."""
    if values.size and int(values[-1]) > np.iinfo(np.int32).max:
        return values.astype(np.int64)
    return values.astype(np.int32)


def _packed_times(time: NDArray[np.float64]) -> tuple[NDArray[Any], float, float]:
    """``time`` as (stored, base, quantum): whole multiples of ``quantum`` (a power of two) after
    ``base`` in 4 bytes each where :func:`_unpacked` gives back every time bit for bit (packet
    times of a minute or so at a run's clock of ~1.6e9 s are such multiples of the clock's spacing
    within 2**32 of it), else the float64s themselves (quantum 0)."""
    if time.size:
        base, top = float(time.min()), float(time.max())
        quantum = float(np.spacing(max(abs(base), abs(top))))
        if quantum > 0 and (top - base) / quantum < 2.0**32:
            stored = ((time - base) / quantum).astype(np.uint32)
            if np.array_equal(_unpacked(stored, base, quantum).view(np.int64), time.view(np.int64)):
                return stored, base, quantum
    return time, 0.0, 0.0


def _unpacked(stored: NDArray[np.uint32], base: float, quantum: float) -> NDArray[np.float64]:
    return base + stored.astype(np.float64) * quantum


def _packed_rssi(rssi: NDArray[np.float32]) -> NDArray[np.int8] | NDArray[np.float32]:
    """RSSIs as int8 when each is a whole dBm in its range (radios report whole dBm) and comes back
    bit for bit, else as the float32s."""
    if rssi.size and bool(((rssi >= -128) & (rssi <= 127)).all()):
        small = rssi.astype(np.int8)
        if np.array_equal(small.astype(np.float32).view(np.int32), rssi.view(np.int32)):
            return small
    return rssi


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
