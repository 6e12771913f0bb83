"""The node's log writes run on their own thread behind a bounded queue: a blocked log never blocks
the caller (the event loop) until the queue is full, nothing is dropped, and errors come back."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from proximity.ble.sink import BackgroundWriter, BatchingSink
from proximity.log import EncounterLog
from proximity.sightings import Sighting

T0 = 1_700_000_000.0


def _sighting(i: int) -> Sighting:
    return Sighting("gaen", i.to_bytes(16, "big"), T0 + i, -60)


def test_a_blocked_write_does_not_block_the_caller() -> None:
    release = threading.Event()
    started = threading.Event()
    threads: set[int] = set()
    written: list[int] = []

    @contextlib.contextmanager
    def opener() -> Iterator[Callable[[list[Sighting]], object]]:
        def write(batch: list[Sighting]) -> None:
            threads.add(threading.get_ident())
            started.set()
            assert release.wait(timeout=60)  # like a log whose lock another process holds
            written.extend(int.from_bytes(s.id, "big") for s in batch)

        yield write

    writer = BackgroundWriter(opener, max_batches=4)
    writer([_sighting(0)])
    assert started.wait(timeout=60)
    for i in range(1, 5):  # the write is stuck, yet the caller hands over four more batches and returns
        writer([_sighting(i)])
    release.set()
    writer.close()
    assert written == [0, 1, 2, 3, 4] and writer.written == 5 and writer.batches == 5
    assert threads and threading.get_ident() not in threads


def test_the_node_path_writes_everything_to_the_log_and_keeps_no_results(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite"

    @contextlib.contextmanager
    def opener() -> Iterator[Callable[[list[Sighting]], object]]:
        with EncounterLog(db) as log:
            yield log.add

    writer = BackgroundWriter(opener, max_batches=2)
    sink = BatchingSink(writer, batch=10, max_delay=1e9, keep_results=False)
    for i in range(95):
        sink(_sighting(i))
    sink.flush()
    writer.close()
    assert sink.results == [] and writer.written == 95
    with EncounterLog(db) as log:
        assert len(log.observations("gaen")) == 95


def test_a_failing_write_is_raised_to_the_caller() -> None:
    @contextlib.contextmanager
    def opener() -> Iterator[Callable[[list[Sighting]], object]]:
        def write(batch: list[Sighting]) -> None:
            raise OSError("disk full")

        yield write

    writer = BackgroundWriter(opener)
    writer([_sighting(0)])
    with pytest.raises(OSError, match="disk full"):
        writer.close()


def test_a_log_that_cannot_open_fails_at_once(tmp_path: Path) -> None:
    (tmp_path / "not-a-log").write_text("hello")

    @contextlib.contextmanager
    def opener() -> Iterator[Callable[[list[Sighting]], object]]:
        with EncounterLog(tmp_path / "not-a-log") as log:
            yield log.add

    with pytest.raises(Exception, match="not-a-log"):
        BackgroundWriter(opener)
