"""Epidemic runs (adoption x seed [x transmissibility]) on Dask, or inline; Ctrl-C keeps finished runs.

The coupling is read once here and shipped with each task, so workers (a remote ``--scheduler``
too) need no files. Each run depends only on its arguments, so where it runs does not change it.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from proximity.epi.coupling import Coupling
from proximity.epi.run import EpiRun, run_epidemic
from proximity.epi.scenario import EpidemicScenario, EpidemicScenarioError, estimated_memory, machine_memory

__all__ = ["EpiSweep", "Task", "epidemic_sweep"]

INLINE = "inline"
Task = tuple[float, int, float]  # adoption, seed, beta factor


@dataclass(frozen=True, slots=True, eq=False)
class EpiSweep:
    runs: dict[Task, EpiRun] = field(default_factory=dict)
    interrupted: bool = False
    missing: int = 0


def _one(scenario: EpidemicScenario, task: Task, coupling: Coupling) -> EpiRun:
    adoption, seed, factor = task
    return run_epidemic(scenario, adoption, seed, coupling, factor)


def epidemic_sweep(
    scenario: EpidemicScenario,
    adoptions: Sequence[float],
    seeds: int,
    *,
    beta_factors: Sequence[float] = (1.0,),
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EpiSweep:
    """Every (adoption, seed, beta factor) once; seeds are 0..seeds-1, paired across adoptions."""
    if seeds < 1:
        raise EpidemicScenarioError(f"seeds must be at least 1, got {seeds}")
    coupling = scenario.load_coupling()  # a stale or missing file fails here, before any run
    tasks: list[Task] = [
        (float(p), s, float(b)) for b in beta_factors for p in adoptions for s in range(seeds)
    ]
    if scheduler is None:
        n = workers or max(1, min(len(tasks), os.cpu_count() or 1))
        need = n * estimated_memory(scenario.agents)
        cap = scenario.memory_cap * n if scenario.memory_cap else 0.8 * machine_memory()
        if need > cap:
            raise EpidemicScenarioError(
                f"{n} local workers x {scenario.agents:,} agents need about {need / 1e9:.3g} GB, more than "
                f"{cap / 1e9:.3g} GB; use fewer --workers or fewer agents"
            )
    # run seed by seed, so an interrupted sweep keeps whole paired sets (every adoption of a seed)
    by_seed = [(float(p), s, float(b)) for b in beta_factors for s in range(seeds) for p in adoptions]
    done: dict[Task, EpiRun] = {}
    interrupted = False
    try:
        if scheduler == INLINE:
            for k, task in enumerate(by_seed):
                done[task] = _one(scenario, task, coupling)
                if progress:
                    progress(k + 1, len(tasks))
        else:
            _on_dask(scenario, coupling, by_seed, scheduler, workers, progress, done)
    except KeyboardInterrupt:
        interrupted = True
    ordered = {task: done[task] for task in tasks if task in done}
    return EpiSweep(ordered, interrupted, len(tasks) - len(done))


def _on_dask(
    scenario: EpidemicScenario,
    coupling: Coupling,
    tasks: list[Task],
    scheduler: str | None,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
    done: dict[Task, EpiRun],
) -> None:
    """Run the tasks on Dask, filling ``done`` as runs finish (so an interrupt keeps them)."""
    from proximity.sim.split import dask_client

    distributed: Any = importlib.import_module("dask.distributed")  # no type hints
    base: Any = importlib.import_module("dask.base")
    futures: dict[Any, Task] = {}
    with dask_client(scheduler, workers, len(tasks), memory_limit=0) as client:
        try:
            for task in tasks:
                key = "epi-" + base.tokenize(scenario, coupling.provenance, task)
                futures[client.submit(_one, scenario, task, coupling, pure=False, key=key)] = task
            for count, future in enumerate(distributed.as_completed(futures), start=1):
                done[futures[future]] = future.result()
                if progress:
                    progress(count, len(tasks))
        except (KeyboardInterrupt, asyncio.CancelledError):
            for future, task in futures.items():
                if task not in done and future.status == "finished":
                    done[task] = future.result()
            raise KeyboardInterrupt from None
