"""One epidemic run: Covasim with testing, manual tracing and the app, at one adoption and seed.

Runs are paired across adoptions (common random numbers): seed k builds the same population, the
same seeding and the same transmission draws at every adoption, and the app intervention is present
even at adoption 0 (carrying nobody), so its own named random streams exist in every run. With
Starsim's CRN the app users at a lower adoption are a subset of those at a higher one.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from proximity.epi.coupling import Coupling
from proximity.epi.scenario import EpidemicScenario

__all__ = ["EpiRow", "EpiRun", "build_sim", "run_epidemic"]


@dataclass(frozen=True, slots=True)
class EpiRow:
    """One tidy row per run; people counts are of the represented population (scaled by pop_scale)."""

    scenario: str
    adoption: float
    seed: int
    beta: float
    agents: int
    population: int
    app_users: int  # agents carrying the app
    cum_infections: float
    peak_infections: float  # the largest number of new infections on one day
    peak_day: int
    cum_diagnoses: float
    quarantine_person_days: float
    app_notified: float  # true contacts the app notified and who quarantined
    app_false_notified: float  # app users falsely notified who quarantined
    traced_share_h: float  # app-notified contacts / all contacts of the diagnosed, per layer
    traced_share_s: float
    traced_share_w: float
    traced_share_c: float
    wall_seconds: float
    peak_rss_mb: float  # the worker process's peak so far

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True, eq=False)
class EpiRun:
    row: EpiRow
    # day-level series: new infections, r_eff, people in quarantine (scaled)
    series: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # the app's per-layer tallies


def build_sim(
    scenario: EpidemicScenario, adoption: float, seed: int, coupling: Coupling, beta_factor: float = 1.0
) -> Any:
    """The Covasim sim for one run (not yet run)."""
    import covasim as cv

    from proximity.epi.tracing import AppTracing

    t = scenario.testing
    interventions: list[Any] = [
        cv.test_prob(
            symp_prob=t.symp_prob,
            asymp_prob=t.asymp_prob,
            symp_quar_prob=t.symp_quar_prob,
            asymp_quar_prob=t.asymp_quar_prob,
            test_delay=t.test_delay,
        )
    ]
    if scenario.manual.enabled:
        interventions.append(
            cv.contact_tracing(
                trace_probs=dict(scenario.manual.trace_probs),
                trace_time=dict(scenario.manual.trace_time),
                name="manual_tracing",
            )
        )
    app = scenario.app
    interventions.append(
        AppTracing(
            adoption,
            {k: v.p_detect for k, v in coupling.layers.items()},
            {k: v.false_rate for k, v in coupling.layers.items()},
            coupling.offsets,
            compliance=app.compliance,
            upload=app.upload,
            adoption_by=app.adoption_by,
        )
    )
    return cv.Sim(
        pop_size=scenario.agents,
        pop_scale=scenario.pop_scale,
        rescale=False,
        pop_type="hybrid",
        location=scenario.location,
        start_day=scenario.start,
        n_days=scenario.days,
        pop_infected=scenario.seeded,
        beta=scenario.beta * beta_factor,
        rand_seed=seed + 1,  # Starsim seeds from 1 upward; our seeds start at 0
        interventions=interventions,
        verbose=0,
    )


def run_epidemic(
    scenario: EpidemicScenario,
    adoption: float,
    seed: int,
    coupling: Coupling | None = None,
    beta_factor: float = 1.0,
) -> EpiRun:
    """Run one (adoption, seed): outcomes as one :class:`EpiRow` plus day-level series."""
    started = time.monotonic()
    coupling = coupling or scenario.load_coupling()
    sim = build_sim(scenario, adoption, seed, coupling, beta_factor)
    sim.run()
    r = sim.results
    app = _intervention(sim, "app_tracing")
    scale = scenario.pop_scale
    new = np.asarray(r["new_infections"], np.float64)
    quarantined = np.asarray(r["n_quarantined"], np.float64)
    counts = {k: dict(v) for k, v in app.counts.items()}

    def share(layer: str) -> float:
        c = counts.get(layer, {})
        return c["notified"] / c["contacts"] if c.get("contacts") else math.nan

    row = EpiRow(
        scenario=scenario.name,
        adoption=float(adoption),
        seed=int(seed),
        beta=scenario.beta * beta_factor,
        agents=scenario.agents,
        population=scenario.population,
        app_users=int(app.carries.sum()),
        cum_infections=float(np.asarray(r["cum_infections"])[-1]),
        peak_infections=float(new.max()),
        peak_day=int(new.argmax()),
        cum_diagnoses=float(np.asarray(r["cum_diagnoses"])[-1]),
        quarantine_person_days=float(quarantined.sum()),
        app_notified=sum(c["notified"] for c in counts.values()) * scale,
        app_false_notified=sum(c["false"] for c in counts.values()) * scale,
        traced_share_h=share("h"),
        traced_share_s=share("s"),
        traced_share_w=share("w"),
        traced_share_c=share("c"),
        wall_seconds=time.monotonic() - started,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    series = {
        "new_infections": new,
        "r_eff": np.asarray(r["r_eff"], np.float64),
        "n_quarantined": quarantined,
    }
    return EpiRun(row, series, counts)


def _intervention(sim: Any, name: str) -> Any:
    for intervention in sim.get_interventions():
        if getattr(intervention, "name", None) == name:
            return intervention
    return None
