"""The UK NHS app's distance model (Lovett et al., Alan Turing Institute), as an anchor to compare with.

Per second, the minimum attenuation a; observation model ln(a) = 0.127 ln(d) + 4.231 with noise
variance 0.495; distance a random walk of 0.1 m/s with prior 2 m (variance 10 m^2). We smooth ln(d)
with a linear Kalman filter and Rauch-Tung-Striebel smoother (the app used an unscented smoother on d;
in ln(d) the model is linear, so this is its closed form up to the random walk's parameterisation).
Risk = sum over time of min(1, 1/d^2), in minutes (each observed second stands for the time since
the previous one, at most 5 minutes); the app notified at 60 x risk x
infectiousness >= 120, i.e. 2 weighted minutes at infectiousness 1.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["NOTIFY_WEIGHTED_MINUTES", "nhs_distances", "nhs_weighted_minutes"]

SLOPE = 0.127
INTERCEPT = 4.231
OBSERVATION_VARIANCE = 0.495
PRIOR_DISTANCE_M = 2.0
PRIOR_VARIANCE_M2 = 10.0
WALK_M_PER_S = 0.1
NOTIFY_WEIGHTED_MINUTES = 2.0
MIN_ATTENUATION_DB = 1.0  # the log's floor for 0 dB readings
MAX_GAP_SECONDS = 300.0  # like GAEN's cap on seconds since the last scan


def nhs_distances(
    times: NDArray[np.float64], attenuation: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(seconds, smoothed distance in m): one entry per second that has a finite attenuation."""
    keep = np.isfinite(times) & np.isfinite(attenuation) & (attenuation >= 0)
    if not keep.any():
        return np.zeros(0), np.zeros(0)
    second = np.floor(times[keep])
    order = np.argsort(second, kind="stable")
    second, att = second[order], attenuation[keep][order]
    seconds, first = np.unique(second, return_index=True)
    minimum = np.minimum.reduceat(att, first)
    # GAEN floors attenuation at 0 dB (whole dB): 0 stands for "at most 1 dB"; ln needs > 0.
    y = np.log(np.maximum(minimum, MIN_ATTENUATION_DB)) - INTERCEPT  # = SLOPE * ln d + noise
    n = seconds.size
    prior_var = math.log(1 + PRIOR_VARIANCE_M2 / PRIOR_DISTANCE_M**2)
    prior_mean = math.log(PRIOR_DISTANCE_M) - prior_var / 2
    mean_f = np.empty(n)
    var_f = np.empty(n)
    mean_p = np.empty(n)
    var_p = np.empty(n)
    m, v = prior_mean, prior_var
    for i in range(n):
        if i:
            dt = seconds[i] - seconds[i - 1]
            v = v + (WALK_M_PER_S / math.exp(m)) ** 2 * dt  # 0.1 m/s as a step in ln d at the current d
        mean_p[i], var_p[i] = m, v
        gain = v * SLOPE / (SLOPE**2 * v + OBSERVATION_VARIANCE)
        m = m + gain * (y[i] - SLOPE * m)
        v = (1 - gain * SLOPE) * v
        mean_f[i], var_f[i] = m, v
    smoothed = mean_f.copy()
    for i in range(n - 2, -1, -1):
        c = var_f[i] / var_p[i + 1]
        smoothed[i] = mean_f[i] + c * (smoothed[i + 1] - mean_p[i + 1])
    return seconds, np.exp(smoothed)


def nhs_weighted_minutes(times: NDArray[np.float64], attenuation: NDArray[np.float64]) -> tuple[float, float]:
    """(weighted minutes, minutes observed): each observed second stands for the time since the one
    before (at most 5 minutes; the first for the median gap), weighted by min(1, 1/d^2)."""
    seconds, distance = nhs_distances(times, attenuation)
    if seconds.size == 0:
        return 0.0, 0.0
    gaps = np.minimum(np.diff(seconds), MAX_GAP_SECONDS)
    first = float(np.median(gaps)) if gaps.size else 1.0
    durations = np.concatenate([[first], gaps])
    weights = np.minimum(1.0, 1.0 / distance**2)
    return float(durations @ weights) / 60.0, float(durations.sum()) / 60.0
