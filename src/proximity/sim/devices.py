"""Every app user's encounter log as ONE real :class:`proximity.log.EncounterLog` (SQLite), shared.

30,000 phones do not need 30,000 files: each row is what one phone logged, and carries that phone's
own broadcast ID in the log's ``own_id`` column (what a phone's log records as "the ID I was sending").
Sightings are written a chunk at a time (one transaction) and read back as the log's
:class:`Observations`, so matching and estimation see exactly what was stored (RSSI rounded as radios
report it). Which phone wrote each row read back is known from the row ids of the chunk just written
(checked against the stored IDs and times), so the simulator keeps that map for one chunk only.

Bluezone's app logs a contact ID at most every 5 s per phone. The log's own ``dedup_seconds`` keys on
the ID alone (one phone per log), so in a shared log each phone's rule is applied before writing, by
:class:`AppDedup`; a test checks it keeps exactly the rows per-phone logs keep.

The file lives in a temporary directory on disk (a city day's log is gigabytes; memory holds one chunk).

:class:`MemoryLog` is the same interface without the file: it hands back what the log would (RSSI
rounded and clipped as stored, rows ordered by (time, row id), row ids counting on across chunks),
so a run need not pay SQLite's ~5 us a row for a file it deletes at the end. A test checks that
every run's result rows are identical with either log (scenario key ``log``).
"""

from __future__ import annotations

import tempfile
from itertools import pairwise
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.log import EncounterLog
from proximity.matching.index import take_rows
from proximity.sightings import Observations
from proximity.sim.native import kernel as _kernel

__all__ = ["AppDedup", "MemoryLog", "SharedLog"]

_RSSI_LOW, _RSSI_HIGH = -126, 20  # what a radio reports (127 = unknown)
READ_ROWS = 50_000


def _in_range(times: NDArray[np.float64], since: float, until: float) -> int:
    """How many sightings a chunk has; all must lie in [since, until)."""
    n = int(times.shape[0])
    if n and (times.min() < since or times.max() >= until):
        raise ValueError("sightings must lie in [since, until)")
    return n


def _as_stored(rssi: NDArray[np.float64]) -> NDArray[np.float64]:
    """RSSI as a radio reports it and the log stores it: whole dBm in the radio's range."""
    out: NDArray[np.float64] = np.clip(np.round(rssi), _RSSI_LOW, _RSSI_HIGH)
    return out


class SharedLog:
    """All phones' sightings in one encounter log; :meth:`write` returns the chunk as stored."""

    def __init__(self, scheme: str, directory: str | Path | None = None) -> None:
        self.scheme = scheme
        self._tmp = tempfile.TemporaryDirectory(prefix="proximity-sim-", dir=directory)
        self.path = Path(self._tmp.name) / "phones.sqlite3"
        self.log = EncounterLog(self.path)
        self.written = 0  # rows in the log (row ids are 1..written: rows are only ever appended)

    def write(
        self,
        scanner: NDArray[np.int64],
        own_ids: NDArray[np.uint8] | None,
        ids: NDArray[np.uint8],
        times: NDArray[np.float64],
        rssi: NDArray[np.float64],
        aem: NDArray[np.uint8] | None,
        since: float,
        until: float,
    ) -> tuple[Observations, NDArray[np.int64]]:
        """Log one chunk (all its times in ``[since, until)``, later than anything logged before);
        return the log's observations of that time range and the phone that logged each."""
        n = _in_range(times, since, until)
        if n:
            own = None
            if own_ids is not None:  # the ID each phone was sending (None: not stored)
                view = np.ascontiguousarray(own_ids).view(np.dtype((np.void, own_ids.shape[1]))).ravel()
                own = [bytes(v) for v in view.tolist()]
            report = self.log.add_columns(
                self.scheme,
                ids,
                times,
                _as_stored(rssi),
                aem=aem,
                has_aem=None if aem is None else np.ones(n, np.bool_),
                own_id=own,
            )
            if report.written != n:
                raise RuntimeError(f"the encounter log kept {report.written} of {n} simulated sightings")
        first = self.written + 1
        self.written += n
        obs = self._read(since, until, n)
        index = obs.row_ids - first
        if len(obs) != n or (n and (index.min() < 0 or index.max() >= n)):
            raise RuntimeError("the encounter log returned rows the simulator did not write")
        if n and not (np.array_equal(obs.times, times[index]) and np.array_equal(obs.ids, ids[index])):
            raise RuntimeError("the encounter log's row ids are not in the order rows were written")
        return obs, scanner[index]

    def _read(self, since: float, until: float, n: int) -> Observations:
        """The log's observations of [since, until), read in time slices of about READ_ROWS rows (the
        log builds Python objects per row before its arrays: slices keep that transient small)."""
        slices = max(1, -(-n // READ_ROWS))
        edges = np.linspace(since, until, slices + 1)
        edges[-1] = until
        parts = [self.log.observations(self.scheme, since=lo, until=hi) for lo, hi in pairwise(edges)]
        if len(parts) == 1:
            return parts[0]
        return Observations(
            self.scheme,
            np.concatenate([p.ids for p in parts]),
            np.concatenate([p.times for p in parts]),
            np.concatenate([p.rssi for p in parts]),
            np.concatenate([p.aem for p in parts]),
            np.concatenate([p.has_aem for p in parts]),
            np.concatenate([p.row_ids for p in parts]),
        )

    def close(self) -> None:
        self.log.close()
        self._tmp.cleanup()

    def __enter__(self) -> SharedLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class MemoryLog:
    """What :class:`SharedLog` returns, chunk by chunk, without SQLite (the run deletes the file anyway)."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme
        self.written = 0

    def write(
        self,
        scanner: NDArray[np.int64],
        own_ids: NDArray[np.uint8] | None,
        ids: NDArray[np.uint8],
        times: NDArray[np.float64],
        rssi: NDArray[np.float64],
        aem: NDArray[np.uint8] | None,
        since: float,
        until: float,
    ) -> tuple[Observations, NDArray[np.int64]]:
        """As :meth:`SharedLog.write`: the chunk as the log stores and orders it, and who logged each
        (``own_ids`` is not kept: nothing reads it back)."""
        n = _in_range(times, since, until)
        order = np.argsort(times, kind="stable")  # the log reads ORDER BY time, id
        first = self.written + 1
        self.written += n
        stored = _as_stored(rssi).astype(np.float64)
        has_aem = np.full(n, aem is not None, np.bool_)
        obs = Observations(
            self.scheme,
            take_rows(ids, order),
            times[order],
            stored[order],
            np.zeros((n, 4), np.uint8) if aem is None else take_rows(aem, order),
            has_aem,
            order.astype(np.int64) + first,
        )
        return obs, scanner[order]

    def close(self) -> None:
        pass

    def __enter__(self) -> MemoryLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AppDedup:
    """Each phone keeps a row for an observed ID only if ``every`` s have passed since the last one it
    kept (the rule :meth:`EncounterLog.add_columns` applies with ``dedup_seconds``), across chunks."""

    def __init__(self, every: float, *, native: bool = True) -> None:
        if not every > 0:
            raise ValueError(f"every must be positive, got {every!r}")
        self.every = every
        self.native = native  # the C pass when built, else (or False) the numpy reference below
        self._keys = np.zeros(0, np.dtype((np.void, 1)))  # (scanner, id) of rows kept near the end
        self._last = np.zeros(0)

    def keep(
        self, scanner: NDArray[np.int64], ids: NDArray[np.uint8], times: NDArray[np.float64]
    ) -> NDArray[np.bool_]:
        """Which rows a phone logs; all ``times`` must be later than those of earlier calls."""
        if int(times.shape[0]) == 0:
            return np.zeros(0, np.bool_)
        both = np.concatenate((scanner.astype("<i8")[:, None].view(np.uint8), ids), axis=1)
        keys = np.ascontiguousarray(both).view(np.dtype((np.void, both.shape[1]))).ravel()
        return self.keep_keys(keys, times)

    def keep_keys(
        self, keys: NDArray[Any], times: NDArray[np.float64], *, time_ordered: bool = False
    ) -> NDArray[np.bool_]:
        """:meth:`keep` with each row's (scanner, ID) given as one sortable key (the simulator's
        int64 code of (scanner, advertiser, ID slot), which names the same thing and sorts faster);
        one kind of key throughout. ``time_ordered``: each key's rows already come in time order (the
        world's chunks are in step order), so one stable sort by key replaces the sort by (key, time)."""
        n = int(times.shape[0])
        keep = np.zeros(n, np.bool_)
        if n == 0:
            return keep
        # one sort by (key, time); each row's group is the rank of its key among the distinct keys
        order = np.argsort(keys, kind="stable") if time_ordered else np.lexsort((times, keys))
        sorted_keys = keys[order]
        first = np.ones(n, np.bool_)
        first[1:] = sorted_keys[1:] != sorted_keys[:-1]
        groups = sorted_keys[first]
        g = np.cumsum(first) - 1
        # the last kept time of each group before this chunk (-inf when none is recent)
        threshold = np.full(groups.size, -np.inf)
        if self._keys.size and self._keys.dtype == groups.dtype:
            at = np.minimum(np.searchsorted(groups, self._keys), groups.size - 1)
            known = groups[at] == self._keys
            threshold[at[known]] = self._last[known]
        threshold += self.every
        t = times[order]
        if self.native and _kernel is not None:
            kept, kept_last = _kernel.keep_spaced(np.ascontiguousarray(g, np.int64), t, threshold, self.every)
            keep[order[np.frombuffer(kept, np.bool_)]] = True
            last = np.frombuffer(kept_last, np.float64)
        else:
            last = self._reference(keep, order, first, g, t, threshold)
        recent = last > float(t.max()) - self.every
        self._keys, self._last = groups[recent], last[recent]
        return keep

    def _reference(
        self,
        keep: NDArray[np.bool_],
        order: NDArray[np.intp],
        first: NDArray[np.bool_],
        g: NDArray[np.intp],
        t: NDArray[np.float64],
        threshold: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """The rule in numpy (the C pass's reference): marks ``keep``, returns each group's last kept
        time (-inf for none)."""
        n = keep.size
        starts = np.flatnonzero(first)
        ends = np.append(starts[1:], n)
        # sorted by (group, time): key = group rank * width + time lets one searchsorted serve all
        t0 = float(t.min())
        width = float(t.max() - t0) + 2.0 * self.every + 1.0
        flat = g * width + (t - t0)
        last = np.full(threshold.size, -np.inf)
        active = np.arange(threshold.size)
        while active.size:
            target = active * width + (np.maximum(threshold[active], t0 - self.every) - t0)
            pos = np.maximum(np.searchsorted(flat, target, side="left"), starts[active])
            ok = pos < ends[active]
            active, pos = active[ok], pos[ok]
            keep[order[pos]] = True
            last[active] = t[pos]
            threshold[active] = t[pos] + self.every
        return last
