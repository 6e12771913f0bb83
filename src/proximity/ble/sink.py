"""Where scanned sightings go: a sink is any callable taking a Sighting; this one batches them for the log.

The scanner calls its sink once per advert (often hundreds a second); writing each to SQLite on its
own would cost one transaction apiece. :class:`BatchingSink` hands ``write`` a list every ``batch``
sightings or ``max_delay`` seconds (checked on arrival), and :meth:`flush` writes the rest on shutdown.
``write`` is e.g. ``EncounterLog(path).add``; tests pass ``list.extend``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from proximity.sightings import Sighting

__all__ = ["BatchingSink", "SightingSink"]


class SightingSink(Protocol):
    def __call__(self, sighting: Sighting, /) -> None: ...


class BatchingSink:
    """Collect sightings and pass them to ``write`` in batches; :meth:`flush` before exit."""

    def __init__(
        self,
        write: Callable[[list[Sighting]], object],
        *,
        batch: int = 256,
        max_delay: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self._write = write
        self._batch = batch
        self._max_delay = max_delay
        self._clock = clock
        self._pending: list[Sighting] = []
        self._since = clock()
        self.received = 0
        self.flushed = 0
        self.results: list[object] = []

    def __call__(self, sighting: Sighting, /) -> None:
        if not self._pending:
            self._since = self._clock()
        self._pending.append(sighting)
        self.received += 1
        if len(self._pending) >= self._batch or self._clock() - self._since >= self._max_delay:
            self.flush()

    def flush(self) -> None:
        """Write what is pending (nothing is lost if ``write`` raises: the batch stays pending)."""
        if not self._pending:
            return
        batch = list(self._pending)
        self.results.append(self._write(batch))
        self._pending.clear()
        self.flushed += len(batch)

    @property
    def pending(self) -> int:
        return len(self._pending)
