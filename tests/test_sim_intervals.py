"""The simulator's own beta quantiles (Clopper-Pearson without scipy) against scipy's."""

from __future__ import annotations

import math

import pytest

from proximity.sim.intervals import beta_cdf, beta_quantile, clopper_pearson

special = pytest.importorskip("scipy.special")


@pytest.mark.parametrize(
    ("a", "b", "x"),
    [
        (0.5, 0.5, 0.3),
        (2.0, 3.0, 0.9),
        (100.0, 5.0, 0.97),
        (1.0, 1.0, 0.2),
        (3.0, 34466.0, 1e-4),
        (7.5, 0.8, 0.5),
    ],
)
def test_beta_cdf_matches_scipy(a: float, b: float, x: float) -> None:
    assert beta_cdf(a, b, x) == pytest.approx(float(special.betainc(a, b, x)), rel=1e-11, abs=1e-15)


@pytest.mark.parametrize(
    ("a", "b", "p"), [(1.0, 9.0, 0.975), (4.0, 3.0, 0.025), (0.7, 2.0, 0.5), (12.0, 900.0, 0.1)]
)
def test_beta_quantile_matches_scipy(a: float, b: float, p: float) -> None:
    assert beta_quantile(a, b, p) == pytest.approx(float(special.betaincinv(a, b, p)), rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("trials", [1, 2, 5, 9, 40, 1000, 34468])
def test_clopper_pearson_matches_scipy_at_every_count_shape(trials: int) -> None:
    for successes in sorted({0, 1, min(2, trials), trials // 3, trials // 2, trials - 1, trials}):
        low, high = clopper_pearson(successes, trials)
        want_low = 0.0 if successes == 0 else special.betaincinv(successes, trials - successes + 1, 0.025)
        want_high = (
            1.0 if successes == trials else special.betaincinv(successes + 1, trials - successes, 0.975)
        )
        assert low == pytest.approx(float(want_low), abs=1e-12)
        assert high == pytest.approx(float(want_high), abs=1e-12)
    assert all(math.isnan(v) for v in clopper_pearson(0, 0))
