"""An app's logging rule, "at most one row per observed ID every so many seconds", across batches.

Bluezone's app logs a contact ID at most every 5 s (``SchemeRecord.dedup_seconds``); the log applies
the rule when asked, remembering when it last kept each ID. The memory is a cache of committed rows:
the log clears it when a write fails or rows are deleted, so it never suppresses a row that is not there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["LastKept"]


class LastKept:
    """When each (scheme code, ID) was last kept."""

    def __init__(self) -> None:
        self._last: dict[tuple[int, bytes], float] = {}

    def keep(
        self,
        code: int,
        ids: Sequence[bytes],
        times: NDArray[np.float64],
        keep: NDArray[np.bool_],
        every: float,
    ) -> tuple[NDArray[np.bool_], int]:
        """``keep`` less the rows within ``every`` seconds of the same ID's last kept row (in time
        order, across calls), and how many rows that dropped."""
        keep = keep.copy()
        candidates = np.flatnonzero(keep)
        order = candidates[np.argsort(times[candidates], kind="stable")]
        dropped = 0
        for row in order.tolist():
            key = (code, ids[row])
            last = self._last.get(key)
            t = float(times[row])
            if last is not None and abs(t - last) < every:
                keep[row] = False
                dropped += 1
            else:
                self._last[key] = t
        return keep, dropped

    def clear(self) -> None:
        """Forget everything (the rows behind the memory may be gone, or never committed)."""
        self._last.clear()

    def forget_before(self, cutoff: float) -> None:
        """Forget IDs last kept before ``cutoff`` (their rows were pruned)."""
        self._last = {key: t for key, t in self._last.items() if t >= cutoff}
