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
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from proximity.arrays import distinct
from proximity.errors import EstimationParameterError
from proximity.estimation.fitted import shipped_defaults
from proximity.times import SECONDS_PER_DAY

__all__ = ["MAX_GAP_SECONDS", "BatchVerdicts", "DailyMeans", "MeanRule", "daily_means"]


class MeanRule(Protocol):
    """What the mean-attenuation rule reads of :class:`~proximity.estimation.EstimationSettings` (a
    protocol, so this module does not import the estimators, which import it)."""

    @property
    def rssi_correction(self) -> float: ...
    @property
    def default_tx_power(self) -> float: ...
    @property
    def distance(self) -> float: ...
    @property
    def minutes(self) -> float: ...


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

    ``close_contact`` on any day; ``score``, ``attenuation_db`` (the verdict's attenuation summary,
    ``attenuation_median_db``: the default's mean of packets, the others' median of scans) and
    ``minutes`` (observed) of the most worrying day (close first, then the highest score); NaN / False
    for an encounter with no RSSI."""

    encounter: NDArray[np.int64]
    close_contact: NDArray[np.bool_]
    score: NDArray[np.float64]
    attenuation_db: NDArray[np.float64]
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
    *,
    extremes: bool = True,
) -> DailyMeans:
    """Mean attenuation and minutes covered per (encounter, day), vectorised over all sightings.

    Sightings already in (encounter, time) order (the usual) are not sorted; ``extremes=False`` skips
    the min/max attenuation (left NaN) where only the mean is wanted."""
    means, _ = _daily_means(times, rssi, tx_power, encounter, rssi_correction, default_tx_power, extremes)
    return means


def _daily_means(
    times: ArrayLike,
    rssi: ArrayLike,
    tx_power: ArrayLike,
    encounter: ArrayLike,
    rssi_correction: float,
    default_tx_power: float,
    extremes: bool,
) -> tuple[DailyMeans, bool]:
    """:func:`daily_means`, and whether every sighting counted (none without an RSSI or a time)."""
    t = np.asarray(times, np.float64)
    r = np.asarray(rssi, np.float64)
    tx = np.asarray(tx_power, np.float64)
    enc = np.asarray(encounter, np.int64)
    if not (t.shape == r.shape == tx.shape == enc.shape) or t.ndim != 1:
        raise EstimationParameterError("encounter", enc.shape, "one index per sighting (1-D, like times)")
    att = tx - r
    att -= rssi_correction
    unknown_tx = np.isnan(tx)
    if unknown_tx.any():  # the counterpart did not say: the fleet (or given) TX power
        att[unknown_tx] = default_tx_power - rssi_correction - r[unknown_tx]
    np.maximum(att, 0.0, out=att)
    keep = np.isfinite(att)
    keep &= np.isfinite(t)
    every = bool(keep.all())
    if not every:
        t, att, enc = t[keep], att[keep], enc[keep]
    d_enc, d_t = np.diff(enc), np.diff(t)
    if not bool(np.all((d_enc > 0) | ((d_enc == 0) & (d_t >= 0)))):
        order = np.lexsort((t, enc))  # one sort by (encounter, time)
        t, att, enc = t[order], att[order], enc[order]
        d_enc, d_t = np.diff(enc), np.diff(t)
    boundary = d_enc != 0  # (n - 1,): a new (encounter, day) starts at i + 1
    # Every time's UTC day; where the first and last share one (the usual), so do all times between
    # (division by a positive number, and floor, keep their order): no division per row.
    bounds = np.floor(np.array([t.min(), t.max()] if t.size else [0.0, 0.0]) / SECONDS_PER_DAY)
    day = None if bounds[0] == bounds[1] else np.floor(t / SECONDS_PER_DAY)
    if day is not None:
        boundary |= np.diff(day) != 0
    starts = np.concatenate(([0], np.flatnonzero(boundary) + 1)) if t.size else np.zeros(0, np.intp)
    start_day = np.full(starts.size, bounds[0]) if day is None else day[starts]
    count = np.diff(np.append(starts, t.size))
    gap = np.empty(t.size)  # gap[i]: from packet i - 1 to i, 0 at a group's start
    if t.size:
        np.minimum(d_t, MAX_GAP_SECONDS, out=gap[1:])
        gap[starts] = 0.0
    seconds = np.add.reduceat(gap, starts) if t.size else np.zeros(0)
    has_second = count > 1
    seconds[has_second] += gap[starts[has_second] + 1]  # the first packet stands for the gap to the second
    total = np.add.reduceat(att, starts) if t.size else np.zeros(0)
    nan = np.full(starts.size, np.nan)
    means = DailyMeans(
        encounter=enc[starts],
        day=(start_day * SECONDS_PER_DAY).astype(np.int64),
        mean_attenuation=total / np.maximum(count, 1),
        minutes=seconds / 60.0,
        packets=count.astype(np.int64),
        min_attenuation=np.minimum.reduceat(att, starts) if extremes and t.size else nan,
        max_attenuation=np.maximum.reduceat(att, starts) if extremes and t.size else nan,
    )
    return means, every


def decide(means: DailyMeans, settings: MeanRule) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """(close contact, score) per row of ``means`` under the rule in ``settings``."""
    threshold = shipped_defaults().threshold("mean", settings.distance)
    close = (means.mean_attenuation <= threshold) & (means.minutes >= settings.minutes)
    return close, -means.mean_attenuation


def batch_mean_attenuation(
    times: ArrayLike,
    rssi: ArrayLike,
    tx_power: ArrayLike,
    encounter: ArrayLike,
    settings: MeanRule,
) -> BatchVerdicts:
    """The mean-attenuation estimator's verdict per encounter, vectorised."""
    means, every = _daily_means(times, rssi, tx_power, encounter, settings.rssi_correction,
                                settings.default_tx_power, False)  # fmt: skip
    # every encounter, with or without a day: where every sighting counted, those of the days (few)
    enc_all = _distinct(means.encounter if every else np.asarray(encounter, np.int64))
    close, score = decide(means, settings)
    n = enc_all.size
    slot = np.searchsorted(enc_all, means.encounter)
    if bool(np.all(np.diff(slot) > 0)):  # one day per encounter (the usual): that day is its verdict
        pick = np.arange(slot.size)
    else:  # the most worrying day per encounter: sort by (encounter, close, score), take each one's last
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


def _distinct(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """Sorted distinct values; without a sort when they are already in order (the usual)."""
    step = np.diff(values)
    if values.size and bool((step >= 0).all()):
        return np.asarray(values[np.concatenate(([0], np.flatnonzero(step) + 1))])
    return distinct(values)
