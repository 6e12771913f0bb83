"""95 % intervals for the simulator's numbers: exact binomial (Clopper-Pearson) over contacts within one
run (its beta quantiles computed here: importing scipy.special cost a short run a third of a second), and a
percentile bootstrap over seeds across runs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["LEVEL", "auc_interval", "beta_cdf", "beta_quantile", "bootstrap_mean", "clopper_pearson",
           "describe_fraction"]  # fmt: skip

LEVEL = 0.95
BOOTSTRAP_DRAWS = 10_000


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def beta_cdf(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) (a, b > 0): the Beta(a, b) CDF at ``x``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):  # the fraction converges fast on this side; else use symmetry
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def beta_quantile(a: float, b: float, p: float) -> float:
    """The ``p`` quantile of Beta(a, b): bisection on :func:`beta_cdf` to the last bit of a double."""
    low, high = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if mid in (low, high):
            break
        if beta_cdf(a, b, mid) < p:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def clopper_pearson(successes: int, trials: int, level: float = LEVEL) -> tuple[float, float]:
    """The exact two-sided interval for a binomial proportion; (nan, nan) with no trials."""
    if trials <= 0:
        return math.nan, math.nan
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, {trials}], got {successes}")
    alpha = 1.0 - level
    low = 0.0 if successes == 0 else beta_quantile(successes, trials - successes + 1, alpha / 2)
    high = 1.0 if successes == trials else beta_quantile(successes + 1, trials - successes, 1 - alpha / 2)
    return low, high


def describe_fraction(successes: int, trials: int) -> str:
    """How a fraction should read: "k of N" with its exact upper bound when the count is tiny (< 5),
    never a bare 0.000; "-" with no trials."""
    if trials <= 0:
        return "- (0 of 0)"
    low, high = clopper_pearson(successes, trials)
    if successes < 5:
        return f"{successes} of {trials} (<= {high:.3f})"
    return f"{successes / trials:.3f} [{low:.3f}, {high:.3f}]"


def bootstrap_mean(
    values: Sequence[float], seed: int = 0, level: float = LEVEL
) -> tuple[float, float, float]:
    """(mean, low, high): the percentile bootstrap of the mean over ``values`` (one per seed; NaNs
    dropped). One value: its own point, no interval (nan, nan)."""
    data = np.asarray([v for v in values if not math.isnan(v)], np.float64)
    if data.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(data.mean())
    if data.size == 1:
        return mean, math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws = data[rng.integers(0, data.size, (BOOTSTRAP_DRAWS, data.size))].mean(axis=1)
    alpha = 1.0 - level
    return mean, float(np.quantile(draws, alpha / 2)), float(np.quantile(draws, 1 - alpha / 2))


def auc_interval(
    scores: Sequence[float], labels: Sequence[bool], seed: int = 0, level: float = LEVEL
) -> tuple[float, float, float]:
    """(AUC, low, high): ROC AUC with a percentile bootstrap over encounters, each class redrawn apart
    (its size kept)."""
    from proximity.estimation import roc_auc

    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, np.bool_)
    pos, neg = s[y], s[~y]
    if pos.size == 0 or neg.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws = np.empty(2000)
    truth = np.concatenate((np.ones(pos.size, np.bool_), np.zeros(neg.size, np.bool_)))
    for k in range(draws.size):
        both = np.concatenate((rng.choice(pos, pos.size), rng.choice(neg, neg.size)))
        draws[k] = roc_auc(both, truth)
    alpha = 1.0 - level
    return roc_auc(s, y), float(np.quantile(draws, alpha / 2)), float(np.quantile(draws, 1 - alpha / 2))
