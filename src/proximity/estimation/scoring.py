"""Scoring close-contact detectors: ROC AUC, TPR/FPR at an operating point, NIST TC4TL nDCF.

nDCF (NIST "Too Close For Too Long", with MIT Lincoln Laboratory) = (w_miss P_miss + w_fa P_fa) /
min(w_miss, w_fa); with w_miss = w_fa = 1 it is P_miss + P_fa: 0 is perfect, 1 is what always saying
yes (or always no) costs. It is computed from hard decisions, so the decision threshold is part of the
detector and must be chosen without the scored data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["TC4TL_DISTANCES", "OperatingPoint", "fit_threshold", "ndcf", "operating_point", "roc_auc"]

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
    values = np.unique(s[np.isfinite(s)])
    if values.size == 0:
        return float("inf")
    candidates = np.concatenate([[values[0] - 1.0], (values[1:] + values[:-1]) / 2.0, [values[-1] + 1.0]])
    costs = np.array([ndcf(s >= c, y) for c in candidates])
    best = np.flatnonzero(costs <= costs.min() + 1e-12)
    return float(candidates[best[len(best) // 2]])
