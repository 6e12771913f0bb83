"""Sweeps (adoption x seed, every estimator per run) on Dask: a LocalCluster, or a given scheduler.

Each run depends only on (scenario, adoption, seed, estimators), so where it runs does not change
its result; rows come back sorted by (adoption, estimator, seed). ``scheduler="inline"`` runs in
this process without Dask (for small sweeps and tests).

Ctrl-C (KeyboardInterrupt) during a sweep keeps the runs that had finished: the result holds their
rows, with ``interrupted`` set and ``missing`` counting the runs not done.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.sim.run import ResultRow, RunResult, run_simulation
from proximity.sim.scenario import Scenario

__all__ = ["SweepResult", "sweep"]

INLINE = "inline"


@dataclass(frozen=True, slots=True, eq=False)
class SweepResult:
    rows: list[ResultRow]
    # (estimator, adoption, seed) -> (scores, labels) of app-user pairs, for ROC curves
    scores: dict[tuple[str, float, int], tuple[NDArray[np.float64], NDArray[np.bool_]]]
    interrupted: bool = False  # stopped by Ctrl-C: only the finished runs are here
    missing: int = 0  # runs not done when it stopped
    # (adoption, seed) -> that run's contact-level table (sim/contacts.py)
    contacts: dict[tuple[float, int], dict[str, NDArray[Any]]] = field(default_factory=dict)


def _one(scenario: Scenario, adoption: float, seed: int, estimators: Sequence[str]) -> RunResult:
    return run_simulation(scenario, adoption, seed, estimators)


def sweep(
    scenario: Scenario,
    adoptions: Sequence[float],
    estimators: Sequence[str],
    seeds: int,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Run every (adoption, seed) once with all ``estimators``; ``seeds`` are 0..seeds-1."""
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    tasks = [(float(p), s) for p in adoptions for s in range(seeds)]
    done: dict[tuple[float, int], RunResult] = {}
    interrupted = False
    try:
        if scheduler == INLINE:
            for k, (p, s) in enumerate(tasks):
                done[(p, s)] = _one(scenario, p, s, estimators)
                if progress:
                    progress(k + 1, len(tasks))
        else:
            _on_dask(scenario, tasks, estimators, scheduler, workers, progress, done)
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


def _task_key(scenario: Scenario, estimators: Sequence[str], adoption: float, seed: int) -> str:
    """The Dask key of one run: a token of everything its result depends on, so runs of different
    scenarios or estimator sets on one scheduler (concurrent sweeps, a shared client) never share a
    key and so never each other's results."""
    base: Any = importlib.import_module("dask.base")  # dask ships no type hints
    token: str = base.tokenize(scenario, list(estimators), float(adoption), int(seed))
    return f"sim-{token}"


def _on_dask(
    scenario: Scenario,
    tasks: list[tuple[float, int]],
    estimators: Sequence[str],
    scheduler: str | None,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
    done: dict[tuple[float, int], RunResult],
) -> None:
    """Run the tasks on Dask, filling ``done`` as runs finish (so an interrupt keeps them)."""
    # dask ships no type hints: use it through Any
    distributed: Any = importlib.import_module("dask.distributed")
    cluster = None
    if scheduler is None:
        n = workers or max(1, min(len(tasks), os.cpu_count() or 1))
        cluster = distributed.LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        )
    client = distributed.Client(scheduler or cluster)
    futures: dict[Any, tuple[float, int]] = {}
    try:
        futures = {
            client.submit(
                _one, scenario, p, s, list(estimators), pure=False, key=_task_key(scenario, estimators, p, s)
            ): (p, s)
            for p, s in tasks
        }
        for count, future in enumerate(distributed.as_completed(futures), start=1):
            done[futures[future]] = future.result()
            if progress:
                progress(count, len(tasks))
    except (KeyboardInterrupt, asyncio.CancelledError):
        # Ctrl-C (or the event loop's CancelledError under it): keep the runs that finished meanwhile
        for future, task in futures.items():
            if task not in done and future.status == "finished":
                done[task] = future.result()
        raise KeyboardInterrupt from None
    finally:
        with contextlib.suppress(Exception):
            client.close()
            if cluster is not None:
                cluster.close()
