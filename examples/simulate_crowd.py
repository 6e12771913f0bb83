"""Simulate a small waiting room on the real core: who gets traced at two adoptions, two estimators.

24 people (most seated, a few walking) for 40 minutes; phones run real GAEN key rings, real SQLite
encounter logs, the real matcher and the real estimators. Needs the [sim] extra only for plots and
Dask sweeps (`proximity simulate`), not for this.
"""

from __future__ import annotations

from proximity.sim import CrowdParams, Scenario, run_simulation


def main() -> None:
    crowd = CrowdParams(agents=24, width=7.0, height=5.0, stationary=0.75, waypoint=0.25, pause=(0, 600))
    scenario = Scenario(
        name="waiting-room",
        crowd=crowd,
        duration=2400,
        scheme="gaen",
        contact_minutes=10.0,
        estimators=("probabilistic", "cwa"),
    )
    print(f"{scenario.name}: {crowd.agents} people, {scenario.duration / 60:.0f} min, {scenario.scheme}")
    print("adoption  estimator      true  both-app  detected  traced  p^2    notified  false_pos")
    for adoption in (0.5, 0.9):
        for row in run_simulation(scenario, adoption, seed=0).rows:
            print(
                f"{adoption:8.1f}  {row.estimator:13s} {row.true_contacts:5d} {row.app_contacts:9d}"
                f" {row.detected:9d} {row.fraction_traced:7.2f} {adoption**2:5.2f} {row.notified:9d}"
                f" {row.false_positives:10d}"
            )


if __name__ == "__main__":
    main()
