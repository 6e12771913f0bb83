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
        merged, inverse = np.unique(np.concatenate((self._keys, keys)), return_inverse=True)
        inverse = inverse.ravel()
        self._secs = np.bincount(inverse, np.concatenate((self._secs, seconds)), merged.size).astype(
            np.float64
        )
        if self.record:
            d_sum = np.zeros(keys.size) if distance_seconds is None else distance_seconds
            d_min = np.full(keys.size, np.nan) if distance_min is None else distance_min
            self._dist = np.bincount(inverse, np.concatenate((self._dist, d_sum)), merged.size).astype(
                np.float64
            )
            low = np.full(merged.size, np.inf)
            np.fmin.at(low, inverse, np.concatenate((self._min, d_min)))
            self._min = low
        last = np.full(merged.size, -np.inf)
        np.maximum.at(last, inverse, np.concatenate((self._last, np.full(keys.size, now))))
        self._keys, self._last = merged.astype(np.int64), last
        self.peak = max(self.peak, int(merged.size))

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

    Rows are kept in flat arrays (time, RSSI as float32: radios report whole dBm) in (pair, time)
    order, with each held pair's code and row count: about 12 bytes a row and no Python object per
    pair, so a pair that stays together all day costs only its sightings. Each batch added is sorted
    alone and merged in (its times follow what is held), so settling is a mask and a split, with no
    sort, hash or set lookup of the rows held. A counterpart of -1 (an ID nobody in the run broadcast)
    is kept as its own pair ``(scanner, -1)``: the code is ``scanner * (n + 1) + counterpart + 1``,
    never negative, and decodes back to exactly that (a code of ``scanner * n + counterpart`` would
    turn -1 into the previous scanner's agent n - 1).
    """

    def __init__(self, n: int, forget: float, hold: float = 0.0) -> None:
        self.n = np.int64(n)
        self._stride = np.int64(n + 1)  # counterpart + 1 in [0, n]
        self.forget = forget
        self.hold = hold
        self._time = np.zeros(0, np.float64)  # the rows, by pair (in code order), then time
        self._rssi = np.zeros(0, np.float32)
        self._pairs = np.zeros(0, np.int64)  # codes of the pairs held, sorted
        self._count = np.zeros(0, np.int64)  # ... how many rows each holds
        self._last = np.zeros(0, np.float64)  # ... when each was last heard
        self._first = np.zeros(0, np.float64)  # ... and first (since it was last settled)
        self.peak_rows = 0
        self.peak_pairs = 0

    @property
    def rows(self) -> int:
        return int(self._time.size)

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
        # the pairs not held yet are merged into the sorted codes
        at = np.searchsorted(self._pairs, codes)
        held = at < self._pairs.size
        held[held] = self._pairs[at[held]] == codes[held]
        fresh = codes[~held]
        slot = at
        if fresh.size:
            slot = at + np.searchsorted(fresh, codes)  # each code's index once the fresh ones are in
            added = np.zeros(self._pairs.size + fresh.size, np.bool_)
            added[slot[~held]] = True
            moved = np.flatnonzero(~added)  # a held pair's new index
            new = slot[~held]
            self._pairs = _merged(self._pairs, moved, new, fresh)
            self._count = _merged(self._count, moved, new, np.zeros(fresh.size, np.int64))
            self._last = _merged(self._last, moved, new, np.full(fresh.size, -np.inf))
            self._first = _merged(self._first, moved, new, np.full(fresh.size, np.inf))
        late = bool(np.any(earliest[held] < self._last[slot[held]]))  # before rows already held
        self._last[slot] = np.maximum(self._last[slot], latest)
        self._first[slot] = np.minimum(self._first[slot], earliest)
        # each new row goes after the held rows of its pair and those of all pairs before it
        place = np.arange(code.size) + np.repeat(np.cumsum(self._count)[slot], count)
        kept = np.ones(self._time.size + code.size, np.bool_)
        kept[place] = False
        old = np.flatnonzero(kept)
        self._time = _merged(self._time, old, place, ranked_times)
        self._rssi = _merged(self._rssi, old, place, rssi[order].astype(np.float32))
        self._count[slot] += count
        if late:  # a batch not in time order after what is held: put the rows back in order
            again = np.lexsort((self._time, np.repeat(np.arange(self._pairs.size), self._count)))
            self._time, self._rssi = self._time[again], self._rssi[again]
        self.peak_rows = max(self.peak_rows, self.rows)
        self.peak_pairs = max(self.peak_pairs, int(self._pairs.size))

    def mirror(self, other: HeardPairs) -> None:
        """Hold a copy of what ``other`` holds: the state :meth:`add` would reach from the same adds
        (the simulator's matched rows when every row logged so far was matched, by its sender's key).
        The row columns are shared, not copied: :meth:`add` and settling only ever replace them, never
        write into them (the per-pair columns are written in place, so those are copied)."""
        self._time, self._rssi = other._time, other._rssi
        self._pairs, self._count = other._pairs.copy(), other._count.copy()
        self._last, self._first = other._last.copy(), other._first.copy()
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
        first_row = (np.cumsum(self._count) - self._count)[pairs]
        upto = np.cumsum(counts)
        ends = np.searchsorted(upto, np.arange(rows, int(upto[-1]), rows), side="left") + 1
        bounds = np.unique(np.concatenate(([0], ends, [pairs.size]))).tolist()
        for lo, hi in pairwise(bounds):
            count = counts[lo:hi]
            at = np.repeat(first_row[lo:hi] - (np.cumsum(count) - count), count) + np.arange(int(count.sum()))
            scanner, counterpart = np.divmod(np.repeat(self._pairs[pairs[lo:hi]], count), self._stride)
            yield scanner, counterpart - 1, self._time[at], self._rssi[at].astype(np.float64)
        kept = ~np.repeat(done, self._count)
        self._time, self._rssi = self._time[kept], self._rssi[kept]
        self._pairs, self._count = self._pairs[~done], self._count[~done]
        self._last, self._first = self._last[~done], self._first[~done]


def _merged(
    values: NDArray[Any], old: NDArray[np.int64], place: NDArray[np.int64], new: NDArray[Any]
) -> NDArray[Any]:
    """``values`` at positions ``old`` and ``new`` at ``place`` of one array (the two cover it)."""
    out = np.empty(old.size + place.size, values.dtype)
    out[old] = values
    out[place] = new
    return out
