"""The app intervention is coupled to Covasim correctly, not only runnable (issue 18, item 5)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

cv = pytest.importorskip("covasim")

from proximity.epi.tracing import AppTracing  # noqa: E402
from proximity.sim.intervals import clopper_pearson  # noqa: E402

PROBS = {"h": 0.9, "s": 0.5, "w": 0.6, "c": 0.2}


def _sim(tracing: Any, seed: int = 3, agents: int = 4000, days: int = 40, **pars: Any) -> Any:
    testing = cv.test_prob(symp_prob=0.2, asymp_prob=0.01, test_delay=1, **pars.pop("testing", {}))
    return cv.Sim(
        **pars,
        pop_size=agents,
        pop_type="hybrid",
        location="vietnam",
        n_days=days,
        pop_infected=20,
        rand_seed=seed,
        interventions=[testing, tracing],
        verbose=0,
    )


def _results(sim: Any) -> dict[str, np.ndarray[Any, Any]]:
    keys = ("cum_infections", "cum_quarantined", "cum_diagnoses", "n_quarantined", "new_infections")
    return {k: np.asarray(sim.results[k]) for k in keys}


def _app(sim: Any) -> Any:
    """The intervention as the sim holds it (Starsim copies the modules it is given)."""
    return next(i for i in sim.get_interventions() if isinstance(i, AppTracing))


def _same_run(a: Any, b: Any) -> None:
    ra, rb = _results(a), _results(b)
    for key in ra:
        np.testing.assert_array_equal(ra[key], rb[key], err_msg=key)
    assert ra["cum_quarantined"][-1] > 0  # tracing did something: the comparison is not vacuous


@pytest.mark.parametrize(
    ("p_detect", "compliance", "trace_probs"),
    [(dict.fromkeys(PROBS, 1.0), 0.7, 0.7), (PROBS, 1.0, PROBS)],
    ids=["compliance", "per-layer"],
)
def test_full_adoption_perfect_radio_is_covasims_own_tracing(
    p_detect: dict[str, float], compliance: float, trace_probs: Any
) -> None:
    """Adoption 1, detection 1 (or the manual probabilities), no false notifications, no delay: the very
    same run as cv.contact_tracing with the same probabilities, day by day."""
    own = _sim(cv.contact_tracing(trace_probs=trace_probs, trace_time=0))
    app = _sim(AppTracing(1.0, p_detect, compliance=compliance, name="contact_tracing"))
    own.run()
    app.run()
    _same_run(own, app)


def test_a_whole_day_of_delay_is_covasims_trace_time_one() -> None:
    """Offsets (0, 1): every notification lands the next day, as trace_time = 1 does."""
    own = _sim(cv.contact_tracing(trace_probs=0.8, trace_time=1))
    app = _sim(
        AppTracing(1.0, dict.fromkeys(PROBS, 1.0), offsets=(0.0, 1.0), compliance=0.8, name="contact_tracing")
    )
    own.run()
    app.run()
    _same_run(own, app)


def test_an_imperfect_app_differs_from_perfect_tracing() -> None:
    """The equality above is not a tautology: detection below 1 changes the run."""
    own = _sim(cv.contact_tracing(trace_probs=0.7, trace_time=0))
    app = _sim(AppTracing(1.0, dict.fromkeys(PROBS, 0.5), compliance=0.7, name="contact_tracing"))
    own.run()
    app.run()
    assert _results(app)["cum_quarantined"][-1] < _results(own)["cum_quarantined"][-1]


def test_traced_share_is_adoption_squared_times_detection() -> None:
    """Below adoption 1: notified / contacts of all diagnosed ~ adoption^2 x detection, per layer
    (inside a 99.9 % exact interval). Quarantine is made harmless here (quar_factor 1, no extra testing
    of known contacts): otherwise app users, notified early, are infected and so diagnosed less often
    than others, and the share falls below adoption^2 x detection (a real effect, docs/epidemic.md)."""
    adoption, p = 0.5, 0.6
    sim = _sim(
        AppTracing(adoption, dict.fromkeys(PROBS, p), name="app_tracing"),
        seed=5,
        agents=6000,
        days=50,
        quar_factor=dict.fromkeys(PROBS, 1.0),
        testing={"symp_quar_prob": 0.2, "asymp_quar_prob": 0.01},
    )
    sim.run()
    tracing = _app(sim)
    assert abs(tracing.carries.mean() - adoption) < 0.03
    total_notified = total_contacts = 0
    for counts in tracing.counts.values():
        total_notified += counts["notified"]
        total_contacts += counts["contacts"]
        # the app's own draw: exactly binomial given the app contacts
        low, high = clopper_pearson(counts["notified"], counts["app_contacts"], level=0.999)
        assert low <= p <= high
    low, high = clopper_pearson(total_notified, total_contacts, level=0.999)
    assert total_contacts > 500
    assert low <= adoption**2 * p <= high, (total_notified, total_contacts)


def test_false_notifications_quarantine_app_users_at_the_measured_rate() -> None:
    rate = 0.5
    only_false = AppTracing(0.6, dict.fromkeys(PROBS, 0.0) | {"h": 1.0}, {"c": rate}, name="app_tracing")
    sim = _sim(only_false, seed=2)
    sim.run()
    tracing = _app(sim)
    c = tracing.counts["c"]
    assert c["notified"] == 0  # detection 0 in c: only false notifications there
    expected = rate * c["app_contacts"]
    assert c["false"] > 0
    assert abs(c["false"] - expected) < 4 * math.sqrt(expected) + 2


def test_household_adoption_is_shared_within_households() -> None:
    by_household = AppTracing(0.4, dict.fromkeys(PROBS, 0.5), adoption_by="household", name="app_tracing")
    sim = _sim(by_household, days=2)
    sim.run()
    tracing = _app(sim)
    h = sim.networks["h"].edges
    p1, p2 = np.asarray(h.p1), np.asarray(h.p2)
    assert np.array_equal(tracing.carries[p1], tracing.carries[p2])
    assert 0.3 < tracing.carries.mean() < 0.5


def test_carriers_at_lower_adoption_are_a_subset() -> None:
    """Paired seeds (common random numbers): the app users at 27 % are among those at 58 %."""
    sims = [_sim(AppTracing(p, PROBS, name="app_tracing"), days=1) for p in (0.272, 0.58)]
    for sim in sims:
        sim.run()
    low, high = (_app(sim) for sim in sims)
    assert not np.any(low.carries & ~high.carries)
    assert low.carries.sum() < high.carries.sum()
