"""Spread chunks of keys over workers with bounded memory and order-free results.

At most ``2 * workers`` chunks are in flight, so memory does not grow with the number of keys. When
the hot loop runs in C with the GIL released, workers are threads sharing the matcher (no start-up,
nothing copied); otherwise they are processes, and the matcher (observations and their index) reaches
them once: by fork where the platform has it, else pickled once per worker. Callers sort the results,
so they do not depend on the workers.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:  # the pools load only when there are several workers (a one-worker run skips them)
    import multiprocessing
    from concurrent.futures import Executor, Future

__all__ = ["ChunkMatcher", "resolve_workers", "run_chunks", "typed_chunks"]

ChunkT = TypeVar("ChunkT", bound=Sized)
ResultT = TypeVar("ResultT")
ItemT = TypeVar("ItemT")
ChunkT_contra = TypeVar("ChunkT_contra", bound=Sized, contravariant=True)
Progress = Callable[[int], None]


class ChunkMatcher(Protocol[ChunkT_contra, ResultT]):
    def match_batch(self, batch: ChunkT_contra) -> list[ResultT]: ...


_WORKER: Any = None


def _init_worker(matcher: Any) -> None:
    global _WORKER
    _WORKER = matcher


def _work(batch: Any) -> tuple[int, list[Any]]:
    return len(batch), _WORKER.match_batch(batch)


def resolve_workers(workers: int | None) -> int:
    count = (os.cpu_count() or 1) if workers is None else workers
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    return count


def _context() -> multiprocessing.context.BaseContext:
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def run_chunks(
    matcher: ChunkMatcher[ChunkT, ResultT],
    chunks: Iterable[ChunkT],
    workers: int,
    progress: Progress | None = None,
    *,
    threads: bool = False,
) -> list[ResultT]:
    """Every chunk through ``matcher.match_batch``, here or in ``workers`` processes (or ``threads``)."""
    found: list[ResultT] = []
    chunks = iter(chunks)
    head = list(itertools.islice(chunks, 2))
    if len(head) < 2:
        workers = 1  # one chunk: starting processes would cost more than it saves
    chunks = itertools.chain(head, chunks)
    if workers <= 1:
        for chunk in chunks:
            found += matcher.match_batch(chunk)
            if progress:
                progress(len(chunk))
        return found
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait

    pool: Executor
    if threads:
        pool = ThreadPoolExecutor(max_workers=workers)

        def work(batch: Any) -> tuple[int, list[Any]]:
            return len(batch), matcher.match_batch(batch)

    else:
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=_context(), initializer=_init_worker, initargs=(matcher,)
        )
        work = _work
    with pool:
        pending: set[Future[tuple[int, list[Any]]]] = set()

        def collect(done: Iterable[Future[tuple[int, list[Any]]]]) -> None:
            for future in done:
                count, matches = future.result()
                found.extend(matches)
                if progress:
                    progress(count)

        for chunk in chunks:
            pending.add(pool.submit(work, chunk))
            if len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)
        collect(pending)
    return found


def typed_chunks(items: Iterable[ItemT], size: int, kind: type[ItemT], what: str) -> Iterator[list[ItemT]]:
    """``items`` in lists of ``size``; an item that is not a ``kind`` is a TypeError naming ``what``."""
    chunk: list[ItemT] = []
    for item in items:
        if not isinstance(item, kind):
            raise TypeError(f"{what} must be {kind.__name__} values, got {type(item).__name__}")
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
