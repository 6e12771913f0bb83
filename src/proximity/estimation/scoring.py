"""Scoring close-contact detectors: ROC AUC, TPR/FPR at an operating point, NIST TC4TL nDCF.

nDCF (NIST "Too Close For Too Long", with MIT Lincoln Laboratory) = (w_miss P_miss + w_fa P_fa) /
min(w_miss, w_fa); with w_miss = w_fa = 1 it is P_miss + P_fa: 0 is perfect, 1 is what always saying
yes (or always no) costs. It is computed from hard decisions, so the decision threshold is part of the
detector and must be chosen without the scored data.

On a few dozen sessions one decision moves nDCF by several hundredths, so a ranking of detectors means
little without its uncertainty: :func:`ndcf_interval` and the paired :func:`ndcf_difference` give
bootstrap percentile intervals, redrawing whole groups (e.g. carriage configurations) when asked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from proximity.arrays import distinct

__all__ = [
    "BOOTSTRAP_ROUNDS",
    "TC4TL_DISTANCES",
    "Interval",
    "OperatingPoint",
    "bootstrap_ndcf",
    "fit_threshold",
    "ndcf",
    "ndcf_difference",
    "ndcf_interval",
    "operating_point",
    "roc_auc",
]

TC4TL_DISTANCES = (1.2, 1.8, 3.0)  # metres; they stand for 4, 6 and 10 ft


def _labels(labels: ArrayLike) -> NDArray[np.bool_]:
    return np.asarray(labels, dtype=np.bool_)


def roc_auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    s = np.asarray(scores, np.float64)
    y = _labels(labels)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size)
    sorted_scores = s[order]
    # average ranks over ties (1-based)
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[y].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    tpr: float
    fpr: float
    p_miss: float
    p_fa: float
    ndcf: float


def operating_point(
    decisions: ArrayLike, labels: ArrayLike, w_miss: float = 1.0, w_fa: float = 1.0
) -> OperatingPoint:
    """Rates of hard decisions against labels (NaN for a rate with no examples)."""
    d = _labels(decisions)
    y = _labels(labels)
    tpr = float(d[y].mean()) if y.any() else float("nan")
    fpr = float(d[~y].mean()) if (~y).any() else float("nan")
    p_miss = 1.0 - tpr if y.any() else 0.0
    p_fa = fpr if (~y).any() else 0.0
    cost = (w_miss * p_miss + w_fa * p_fa) / min(w_miss, w_fa)
    return OperatingPoint(tpr, fpr, p_miss, p_fa, cost)


def ndcf(decisions: ArrayLike, labels: ArrayLike, w_miss: float = 1.0, w_fa: float = 1.0) -> float:
    return operating_point(decisions, labels, w_miss, w_fa).ndcf


def fit_threshold(scores: ArrayLike, labels: ArrayLike) -> float:
    """The threshold (decide yes when score >= threshold) with the least nDCF on these (fit) data.

    Ties between equally good thresholds are broken towards the middle of the best range.
    """
    s = np.asarray(scores, np.float64)
    y = _labels(labels)
    values = distinct(s[np.isfinite(s)])
    if values.size == 0:
        return float("inf")
    candidates = np.concatenate([[values[0] - 1.0], (values[1:] + values[:-1]) / 2.0, [values[-1] + 1.0]])
    costs = np.array([ndcf(s >= c, y) for c in candidates])
    best = np.flatnonzero(costs <= costs.min() + 1e-12)
    return float(candidates[best[len(best) // 2]])


# -- uncertainty ---------------------------------------------------------------------------------------

BOOTSTRAP_ROUNDS = 10_000
_DRAW_CELLS = 4_000_000


@dataclass(frozen=True, slots=True)
class Interval:
    """A statistic on the scored data and its bootstrap percentile interval.

    ``share_below_zero``: the share of bootstrap draws in which the statistic is < 0; for a difference
    of nDCFs (a - b), how often ``a`` costs less than ``b`` when the scored data are drawn again."""

    value: float
    low: float
    high: float
    share_below_zero: float


def bootstrap_ndcf(
    decisions: Sequence[ArrayLike],
    labels: ArrayLike,
    groups: ArrayLike | None = None,
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> NDArray[np.float64]:
    """nDCF (equal costs) of each detector's decisions on ``rounds`` bootstrap redraws: (rounds, detectors).

    The redrawn unit is a group (``groups``: one label per decision, e.g. the carriage configuration,
    whose sessions share a body and a pocket and so err together), or each decision alone without
    groups. Every detector sees the same draws, so differences are paired. Draws that hold no positive
    or no negative are dropped (nDCF is undefined there).
    """
    y = _labels(labels)
    d = np.asarray([_labels(x) for x in decisions])
    if d.ndim != 2 or d.shape[1] != y.size:
        raise ValueError("each detector needs one decision per label")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    codes: NDArray[np.intp] = np.arange(y.size)
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != y.shape:
            raise ValueError("groups needs one entry per label")
        codes = np.unique(g, return_inverse=True)[1].reshape(y.shape)
    count = int(codes.max()) + 1 if codes.size else 0
    if count == 0:
        raise ValueError("no decisions to draw from")
    per_group = np.stack(  # (4 + 2 * detectors, groups): positives, negatives, misses and false alarms
        [np.bincount(codes, weights=y.astype(np.float64), minlength=count),
         np.bincount(codes, weights=(~y).astype(np.float64), minlength=count)]
        + [np.bincount(codes, weights=(~x & y).astype(np.float64), minlength=count) for x in d]
        + [np.bincount(codes, weights=(x & ~y).astype(np.float64), minlength=count) for x in d]
    )  # fmt: skip
    # Units with the same counts are interchangeable: draw how many times each kind is drawn (exact, and
    # a session-level redraw of any size has at most 2^(1 + 2 * detectors) kinds).
    kinds, multiplicity = np.unique(per_group.T, axis=0, return_counts=True)
    rng = np.random.default_rng(seed)
    chunk = max(1, _DRAW_CELLS // len(kinds))  # bound memory: rounds x kinds of draw counts at a time
    totals = np.concatenate(  # (rounds, 2 + 2 * detectors)
        [rng.multinomial(count, multiplicity / count, size=min(chunk, rounds - start)) @ kinds
         for start in range(0, rounds, chunk)]
    )  # fmt: skip
    positives, negatives = totals[:, :1], totals[:, 1:2]
    keep = (positives[:, 0] > 0) & (negatives[:, 0] > 0)
    k = d.shape[0]
    misses, false_alarms = totals[keep, 2 : 2 + k], totals[keep, 2 + k :]
    return np.asarray(misses / positives[keep] + false_alarms / negatives[keep])


def ndcf_interval(
    decisions: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike | None = None,
    *,
    level: float = 0.95,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> Interval:
    """nDCF of ``decisions`` with its bootstrap percentile interval (see :func:`bootstrap_ndcf`)."""
    draws = bootstrap_ndcf([decisions], labels, groups, rounds=rounds, seed=seed)[:, 0]
    return _interval(ndcf(decisions, labels), draws, level)


def ndcf_difference(
    decisions_a: ArrayLike,
    decisions_b: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike | None = None,
    *,
    level: float = 0.95,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> Interval:
    """nDCF(a) - nDCF(b) on the same decisions' draws (paired), with its percentile interval; negative
    favours ``a``. An interval that spans 0 means these data cannot tell the two apart."""
    draws = bootstrap_ndcf([decisions_a, decisions_b], labels, groups, rounds=rounds, seed=seed)
    value = ndcf(decisions_a, labels) - ndcf(decisions_b, labels)
    return _interval(value, draws[:, 0] - draws[:, 1], level)


def _interval(value: float, draws: NDArray[np.float64], level: float) -> Interval:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if draws.size == 0:
        return Interval(value, math.nan, math.nan, math.nan)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(value, float(low), float(high), float(np.mean(draws < 0)))
