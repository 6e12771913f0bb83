"""The mean-attenuation estimator, one encounter at a time or many in one vectorised call.

Per counterpart and UTC day: the mean GAEN attenuation of the day's packets and the minutes they
cover (each packet stands for the time to its neighbour, at most 5 minutes; a lone packet covers
nothing). Close contact: mean attenuation <= the shipped threshold for the rule's distance (fitted
on the shared recordings, :mod:`proximity.estimation.fitted`) and at least the rule's minutes. The
score is minus the mean attenuation (higher = nearer).

:func:`estimate_batch` judges many encounters at once: sightings as columns plus an encounter index
-> one verdict per encounter (its most worrying day, as :func:`proximity.estimation.verdict`).
Other estimators are run one encounter at a time under the same call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from proximity.errors import EstimationParameterError
from proximity.estimation.calibration import attenuation
from proximity.estimation.fitted import shipped_defaults
from proximity.times import SECONDS_PER_DAY

if TYPE_CHECKING:
    from proximity.estimation.estimators import EstimationSettings

__all__ = ["MAX_GAP_SECONDS", "BatchVerdicts", "DailyMeans", "daily_means"]

MAX_GAP_SECONDS = 300.0


@dataclass(frozen=True, slots=True, eq=False)
class DailyMeans:
    """Per (encounter, UTC day) with at least one RSSI, in encounter then day order."""

    encounter: NDArray[np.int64]
    day: NDArray[np.int64]
    mean_attenuation: NDArray[np.float64]
    minutes: NDArray[np.float64]
    packets: NDArray[np.int64]
    min_attenuation: NDArray[np.float64]
    max_attenuation: NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class BatchVerdicts:
    """One verdict per encounter (``encounter``: the distinct indices given, ascending).

    ``close_contact`` on any day; ``score``, ``mean_attenuation_db`` and ``minutes`` of the most
    worrying day (close first, then the highest score); NaN / False for an encounter with no RSSI."""

    encounter: NDArray[np.int64]
    close_contact: NDArray[np.bool_]
    score: NDArray[np.float64]
    mean_attenuation_db: NDArray[np.float64]
    minutes: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.encounter.size)


def daily_means(
    times: ArrayLike,
    rssi: ArrayLike,
    tx_power: ArrayLike,
    encounter: ArrayLike,
    rssi_correction: float,
    default_tx_power: float,
) -> DailyMeans:
    """Mean attenuation and minutes covered per (encounter, day), vectorised over all sightings."""
    t = np.asarray(times, np.float64)
    att = attenuation(np.asarray(rssi, np.float64), np.asarray(tx_power, np.float64), rssi_correction,
                      default_tx_power)  # fmt: skip
    enc = np.asarray(encounter, np.int64)
    if not (t.shape == att.shape == enc.shape) or t.ndim != 1:
        raise EstimationParameterError("encounter", enc.shape, "one index per sighting (1-D, like times)")
    keep = np.isfinite(t) & np.isfinite(att)
    if not keep.all():
        t, att, enc = t[keep], att[keep], enc[keep]
    day = np.floor(t / SECONDS_PER_DAY).astype(np.int64)
    ordered = t.size < 2 or bool(np.all((enc[1:] > enc[:-1]) | ((enc[1:] == enc[:-1]) & (t[1:] >= t[:-1]))))
    if not ordered:  # one sort by (encounter, time); already-ordered input (the usual) skips it
        order = np.lexsort((t, enc))
        t, att, enc, day = t[order], att[order], enc[order], day[order]
    new = np.ones(t.size, np.bool_)
    new[1:] = (enc[1:] != enc[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    count = np.diff(np.append(starts, t.size))
    gap = np.zeros(t.size)
    gap[1:] = np.minimum(np.diff(t), MAX_GAP_SECONDS)
    gap[new] = 0.0
    seconds = np.bincount(group, weights=gap, minlength=starts.size).astype(np.float64)
    second = starts + 1  # the first packet stands for the gap to the second
    has_second = count > 1
    seconds[has_second] += gap[second[has_second]]
    total = np.bincount(group, weights=att, minlength=starts.size)
    return DailyMeans(
        encounter=enc[starts],
        day=day[starts] * SECONDS_PER_DAY,
        mean_attenuation=total / np.maximum(count, 1),
        minutes=seconds / 60.0,
        packets=count.astype(np.int64),
        min_attenuation=np.minimum.reduceat(att, starts) if t.size else np.zeros(0),
        max_attenuation=np.maximum.reduceat(att, starts) if t.size else np.zeros(0),
    )


def decide(means: DailyMeans, settings: EstimationSettings) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """(close contact, score) per row of ``means`` under the rule in ``settings``."""
    threshold = shipped_defaults().threshold("mean", settings.distance)
    close = (means.mean_attenuation <= threshold) & (means.minutes >= settings.minutes)
    return close, -means.mean_attenuation


def batch_mean_attenuation(
    times: ArrayLike,
    rssi: ArrayLike,
    tx_power: ArrayLike,
    encounter: ArrayLike,
    settings: EstimationSettings,
) -> BatchVerdicts:
    """The mean-attenuation estimator's verdict per encounter, vectorised."""
    enc_all = np.unique(np.asarray(encounter, np.int64))
    means = daily_means(times, rssi, tx_power, encounter, settings.rssi_correction, settings.default_tx_power)
    close, score = decide(means, settings)
    n = enc_all.size
    slot = np.searchsorted(enc_all, means.encounter)
    # the most worrying day per encounter: sort by (encounter, close, score), take each one's last
    order = np.lexsort((score, close, slot))
    last = np.ones(order.size, np.bool_)
    last[:-1] = slot[order][1:] != slot[order][:-1]
    pick = order[last]
    out_close = np.zeros(n, np.bool_)
    out_score = np.full(n, np.nan)
    out_mean = np.full(n, np.nan)
    out_minutes = np.full(n, np.nan)
    out_close[slot[pick]] = close[pick]
    out_score[slot[pick]] = score[pick]
    out_mean[slot[pick]] = means.mean_attenuation[pick]
    out_minutes[slot[pick]] = means.minutes[pick]
    return BatchVerdicts(enc_all, out_close, out_score, out_mean, out_minutes)
