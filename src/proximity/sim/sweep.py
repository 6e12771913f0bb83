"""Sweeps (adoption x seed, every estimator per run) on Dask: a LocalCluster, or a given scheduler.

Each run depends only on (scenario, adoption, seed, estimators), so where it runs does not change
its result; rows come back sorted by (adoption, estimator, seed). ``scheduler="inline"`` runs in
this process without Dask (for small sweeps and tests).

Ctrl-C (KeyboardInterrupt) during a sweep keeps the runs that had finished: the result holds their
rows, with ``interrupted`` set and ``missing`` counting the runs not done.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.sim.run import ResultRow, RunResult, ShardResult, combine, run_shard, run_simulation
from proximity.sim.scenario import Scenario
from proximity.sim.split import INLINE, dask_client, shard_key

__all__ = ["SweepResult", "sweep"]


@dataclass(frozen=True, slots=True, eq=False)
class SweepResult:
    rows: list[ResultRow]
    # (estimator, adoption, seed) -> (scores, labels) of app-user pairs, for ROC curves
    scores: dict[tuple[str, float, int], tuple[NDArray[np.float64], NDArray[np.bool_]]]
    interrupted: bool = False  # stopped by Ctrl-C: only the finished runs are here
    missing: int = 0  # runs not done when it stopped
    # (adoption, seed) -> that run's contact-level table (sim/contacts.py)
    contacts: dict[tuple[float, int], dict[str, NDArray[Any]]] = field(default_factory=dict)


def sweep(
    scenario: Scenario,
    adoptions: Sequence[float],
    estimators: Sequence[str],
    seeds: int,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    shards: int | None = None,
) -> SweepResult:
    """Run every (adoption, seed) once with all ``estimators``; ``seeds`` are 0..seeds-1. Each run is
    split into ``shards`` tasks (default: the scenario's; phones in shards: sim/split.py), with the
    same rows for any split."""
    shards = scenario.shards if shards is None else shards
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards must be a whole number >= 1, got {shards!r}")
    tasks = [(float(p), s) for p in adoptions for s in range(seeds)]
    done: dict[tuple[float, int], RunResult] = {}
    interrupted = False
    try:
        if scheduler == INLINE:
            for k, (p, s) in enumerate(tasks):
                done[(p, s)] = run_simulation(scenario, p, s, estimators, shards=shards)
                if progress:
                    progress(k + 1, len(tasks))
        else:
            _on_dask(scenario, tasks, estimators, scheduler, workers, progress, done, shards)
    except KeyboardInterrupt:
        interrupted = True  # keep what finished
    rows: list[ResultRow] = []
    scores: dict[tuple[str, float, int], tuple[NDArray[np.float64], NDArray[np.bool_]]] = {}
    contacts: dict[tuple[float, int], dict[str, NDArray[Any]]] = {}
    for p, s in (task for task in tasks if task in done):
        result = done[(p, s)]
        rows += result.rows
        if result.contacts:
            contacts[(p, s)] = result.contacts
        for name, pair in result.scores.items():
            scores[(name, p, s)] = pair
    rows.sort(key=lambda r: (r.adoption, r.estimator, r.seed))
    return SweepResult(rows, scores, interrupted, len(tasks) - len(done), contacts)


def _on_dask(
    scenario: Scenario,
    tasks: list[tuple[float, int]],
    estimators: Sequence[str],
    scheduler: str | None,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
    done: dict[tuple[float, int], RunResult],
    shards: int,
) -> None:
    """Run the tasks on Dask (each run as ``shards`` shard tasks), filling ``done`` as runs finish
    (so an interrupt keeps them)."""
    distributed: Any = importlib.import_module("dask.distributed")  # dask ships no type hints
    names = list(estimators)
    with dask_client(scheduler, workers, len(tasks) * shards) as client:
        futures: dict[Any, tuple[float, int]] = {}
        parts: dict[tuple[float, int], list[ShardResult]] = {task: [] for task in tasks}
        try:
            for p, s in tasks:
                for shard in range(shards):
                    key = shard_key(scenario, names, p, s, shard, shards)
                    future = client.submit(
                        run_shard, scenario, p, s, names, shard, shards, pure=False, key=key
                    )
                    futures[future] = (p, s)
            for future in distributed.as_completed(futures):
                _collect(scenario, names, futures[future], future.result(), parts, done, shards)
                if progress and futures[future] in done:
                    progress(len(done), len(tasks))
        except (KeyboardInterrupt, asyncio.CancelledError):
            # Ctrl-C (or the event loop's CancelledError under it): keep the runs that finished meanwhile
            for future, task in futures.items():
                if task not in done and future.status == "finished":
                    _collect(scenario, names, task, future.result(), parts, done, shards)
            raise KeyboardInterrupt from None


def _collect(
    scenario: Scenario,
    estimators: list[str],
    task: tuple[float, int],
    part: ShardResult,
    parts: dict[tuple[float, int], list[ShardResult]],
    done: dict[tuple[float, int], RunResult],
    shards: int,
) -> None:
    """Keep one finished shard; a run whose shards are all in is combined into ``done``."""
    mine = parts[task]
    if any(p.shard == part.shard for p in mine):
        return
    mine.append(part)
    if len(mine) == shards:
        done[task] = combine(scenario, task[0], task[1], estimators, mine)
        parts[task] = []
