"""95 % intervals for the simulator's numbers: exact binomial (Clopper-Pearson) over contacts within one
run, and a percentile bootstrap over seeds across runs (scipy, in the [sim] extra)."""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["LEVEL", "auc_interval", "bootstrap_mean", "clopper_pearson", "describe_fraction"]

LEVEL = 0.95
BOOTSTRAP_DRAWS = 10_000


def clopper_pearson(successes: int, trials: int, level: float = LEVEL) -> tuple[float, float]:
    """The exact two-sided interval for a binomial proportion; (nan, nan) with no trials."""
    betaincinv: Any = importlib.import_module("scipy.special").betaincinv  # the [sim] extra; no stubs

    if trials <= 0:
        return math.nan, math.nan
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, {trials}], got {successes}")
    alpha = 1.0 - level
    low = 0.0 if successes == 0 else float(betaincinv(successes, trials - successes + 1, alpha / 2))
    high = 1.0 if successes == trials else float(betaincinv(successes + 1, trials - successes, 1 - alpha / 2))
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
