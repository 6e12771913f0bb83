"""One run split across Dask workers: its phones in shards, each shard a task, combined in a fixed order.

A shard (:func:`proximity.sim.run.run_shard`) moves the whole crowd (cheap) but scans, logs, matches
and judges only its own phones (agent modulo shards) and counts only the close pairs whose lower
agent it owns. Every random draw is per agent (named streams) or hashed per (scanner, advertiser,
step), so a shard's sightings are exactly the unsplit run's rows of its scanners, and
:func:`proximity.sim.run.combine` merges sets, disjoint dicts and per-pair reductions: the result
rows are byte-identical to a one-process run of the same seed, for any number of shards or workers
(tests/test_sim_split.py).

``scheduler``: None starts a LocalCluster of ``workers`` processes (one thread each, with a
``memory_limit`` per worker), an address ("tcp://host:8786") uses a running cluster, "inline" runs the
shards one after the other in this process.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from proximity.sim.run import RunResult, ShardResult, combine, run_shard
from proximity.sim.scenario import Scenario

__all__ = ["INLINE", "dask_client", "run_split", "shard_key"]

INLINE = "inline"

# Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which also switches off glibc's
# dynamic mmap threshold: every array over 128 kB is then mapped fresh and faulted in page by page.
# A simulator shard allocates such arrays every simulated second; on the city that cost 14x the page
# faults and ~30 % more CPU than the same shard in a plain process (docs/simulation.md, "Running").
# LocalCluster workers here run with glibc's defaults (unless the variable is set in this process's
# environment, which Dask passes on); a cluster started elsewhere should be too.
TRIM_CONFIG = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"

# A shard is one long task, and each wake-up of its worker's event loop takes the GIL from the shard's
# thread. With Dask's defaults the loop wakes ~160 times a second: the statistical profiler (every
# 10 ms), the blocked-loop tick (20 ms), the memory monitor (100 ms), the system monitor (500 ms).
# Our LocalCluster has no dashboard, so the profile cannot be read; the loop then cost a noon city
# shard ~5 % of its CPU in its own thread, and more in the shard's (docs/simulation.md, "Running").
# Its workers keep the memory limit (checked every second) and the heartbeats.
QUIET_WORKERS: dict[str, object] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}


@contextlib.contextmanager
def dask_client(
    scheduler: str | None, workers: int | None, tasks: int, memory_limit: str | int | None = None
) -> Iterator[Any]:
    """A Dask client: on ``scheduler`` (an address), or on a LocalCluster of ``workers`` processes
    (default: one per core, at most ``tasks``; ``memory_limit`` per worker, 0 for none, default Dask's;
    glibc's malloc thresholds and a quiet event loop, :data:`QUIET_WORKERS`) closed on exit. Dask ships
    no type hints: Any."""
    distributed: Any = importlib.import_module("dask.distributed")
    dask: Any = importlib.import_module("dask")
    cluster = None
    if scheduler is None:
        n = workers or max(1, min(tasks, os.cpu_count() or 1))
        options: dict[str, Any] = {} if memory_limit is None else {"memory_limit": memory_limit}
        with dask.config.set({TRIM_CONFIG: None, **QUIET_WORKERS}):  # None: Dask leaves it unset
            cluster = distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, **options
            )
    client = distributed.Client(scheduler or cluster)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
            if cluster is not None:
                cluster.close()


def shard_key(scenario: Scenario, estimators: Sequence[str], adoption: float, seed: int, shard: int,
              shards: int) -> str:  # fmt: skip
    """The Dask key of one shard of one run: a token of everything its result depends on, so runs of
    different scenarios or estimator sets on one scheduler never share a key (nor each other's results)."""
    base: Any = importlib.import_module("dask.base")  # dask ships no type hints
    token: str = base.tokenize(scenario, list(estimators), float(adoption), int(seed), shard, shards)
    return f"sim-{token}"


def run_split(
    scenario: Scenario,
    adoption: float,
    seed: int,
    estimators: Sequence[str] | None = None,
    *,
    shards: int = 2,
    scheduler: str | None = None,
    workers: int | None = None,
    memory_limit: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """One run of ``scenario`` in ``shards`` Dask tasks; the same rows as :func:`run_simulation`."""
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards must be a whole number >= 1, got {shards!r}")
    names = list(estimators or scenario.estimators)
    parts: list[ShardResult] = []
    if scheduler == INLINE:
        for shard in range(shards):
            parts.append(run_shard(scenario, adoption, seed, names, shard, shards))
            if progress:
                progress(shard + 1, shards)
        return combine(scenario, adoption, seed, names, parts)
    distributed: Any = importlib.import_module("dask.distributed")
    with dask_client(scheduler, workers, shards, memory_limit) as client:
        keys = [shard_key(scenario, names, adoption, seed, shard, shards) for shard in range(shards)]
        futures = [
            client.submit(run_shard, scenario, adoption, seed, names, shard, shards, pure=False, key=key)
            for shard, key in enumerate(keys)
        ]
        for count, future in enumerate(distributed.as_completed(futures), start=1):
            parts.append(future.result())
            if progress:
                progress(count, shards)
    return combine(scenario, adoption, seed, names, parts)
