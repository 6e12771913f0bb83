"""Where scanned sightings go: a sink is any callable taking a Sighting; this one batches them for the log.

The scanner calls its sink once per advert (often hundreds a second); writing each to SQLite on its
own would cost one transaction apiece. :class:`BatchingSink` hands ``write`` a list every ``batch``
sightings or ``max_delay`` seconds (checked on arrival), and :meth:`flush` writes the rest on shutdown.
``write`` is e.g. ``EncounterLog(path).add``; tests pass ``list.extend``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from proximity.sightings import Sighting

__all__ = ["BackgroundWriter", "BatchingSink", "SightingSink"]


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
        keep_results: bool = True,
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
        self.results: list[object] = []  # what ``write`` returned, unless keep_results is False
        self._keep_results = keep_results

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
        result = self._write(batch)
        if self._keep_results:  # a long-running node keeps none (its writer counts instead)
            self.results.append(result)
        self._pending.clear()
        self.flushed += len(batch)

    @property
    def pending(self) -> int:
        return len(self._pending)


class BackgroundWriter:
    """Run the log writes on a thread of their own, fed through a bounded queue of batches.

    A node's event loop must never wait on SQLite: a ``log prune`` (or any writer) holding the log's
    lock would otherwise stall advert rotation. ``open_write`` is called on the writer thread (SQLite
    connections belong to the thread that made them) and yields the function that writes one batch.
    The queue holds at most ``max_batches``; when the writer is that far behind, handing it a batch
    waits (back-pressure) rather than dropping sightings. Results are not kept, only totals (``written``,
    ``duplicates``). A write that fails stops the writer; the next call (or :meth:`close`) raises it.
    """

    def __init__(
        self,
        open_write: Callable[[], AbstractContextManager[Callable[[list[Sighting]], object]]],
        *,
        max_batches: int = 1024,
    ) -> None:
        if max_batches < 1:
            raise ValueError(f"max_batches must be at least 1, got {max_batches}")
        self._queue: queue.Queue[list[Sighting] | None] = queue.Queue(maxsize=max_batches)
        self._open_write = open_write
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self.written = 0
        self.duplicates = 0
        self.batches = 0
        self._thread = threading.Thread(target=self._run, name="proximity-log-writer", daemon=True)
        self._thread.start()
        self._ready.wait()  # the log is open (or failed to open) before the first batch
        self._raise()

    def _run(self) -> None:
        try:
            with self._open_write() as write:
                self._ready.set()
                while (batch := self._queue.get()) is not None:
                    result = write(batch)
                    self.written += int(getattr(result, "written", len(batch)))
                    self.duplicates += int(getattr(result, "duplicates", 0))
                    self.batches += 1
        except BaseException as error:  # handed to the caller's thread by _raise
            self.error = error
        finally:
            self._ready.set()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def __call__(self, batch: list[Sighting]) -> None:
        self._raise()
        self._queue.put(list(batch))

    def close(self) -> None:
        """Write what is queued, stop the thread, and raise a write's error if there was one."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()
