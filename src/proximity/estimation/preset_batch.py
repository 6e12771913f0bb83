"""The bucket presets (``enx``, ``cwa``, ...) over many encounters in one vectorised pass.

The same steps as one encounter at a time (:func:`proximity.estimation.verdict` with a preset), on
columns: per (encounter, UTC day) the sightings with an attenuation are cut into scan instances
(a scan starts at the first sighting more than ``SCAN_SECONDS`` after the current scan's start), the
scans into exposure windows (a window starts at the first scan ``WINDOW_SECONDS`` or more after the
current window's start), each window weighted by the preset's buckets (and CWA's minimum-duration
rule and TRL factor), summed per day; the encounter's verdict is its most worrying day. The
sequential cuts advance all groups in lockstep (one numpy step per scan or window, not per
encounter), with the same comparisons as the one-at-a-time code, so the cuts are the same; sums may
differ in the last bit (a different summation order), which tests/test_attenuation_scale.py bounds.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from proximity.estimation.attenuation_mean import BatchVerdicts
from proximity.estimation.calibration import attenuation
from proximity.estimation.presets import Preset
from proximity.estimation.windows import (
    FIRST_SCAN_SECONDS,
    MAX_SCAN_GAP_SECONDS,
    SCAN_SECONDS,
    WINDOW_SECONDS,
)
from proximity.times import SECONDS_PER_DAY

__all__ = ["batch_preset"]


def _chain_starts(
    values: NDArray[np.float64], group_start: NDArray[np.int64], group_end: NDArray[np.int64], gap: float,
    strict: bool,
) -> NDArray[np.int64]:  # fmt: skip
    """Indices where a new piece starts in each group of ascending ``values``: the group's first, then
    the first value more than (``strict``) or at least ``gap`` after the current piece's start."""
    n = values.size
    group_of = np.repeat(np.arange(group_start.size), group_end - group_start)
    end = group_end[group_of]
    # nxt[k]: the first index after k in k's group past k's value + gap (pointer advance in lockstep)
    nxt = np.arange(1, n + 1, dtype=np.int64)
    todo = np.flatnonzero(nxt < end)
    while todo.size:
        here = values[nxt[todo]]
        limit = values[todo] + gap if strict else values[todo]
        within = here <= limit if strict else here - limit < gap
        todo = todo[within]
        nxt[todo] += 1
        todo = todo[nxt[todo] < end[todo]]
    starts = [group_start]
    current = group_start
    while current.size:
        following = nxt[current]
        current = following[following < end[current]]
        starts.append(current)
    out: NDArray[np.int64] = np.sort(np.concatenate(starts))
    return out


def _group_median(values: NDArray[np.float64], group: NDArray[np.int64], groups: int) -> NDArray[np.float64]:
    """np.median of each group's values (NaN for an empty group)."""
    order = np.lexsort((values, group))
    v, g = values[order], group[order]
    count = np.bincount(g, minlength=groups)
    first = np.concatenate(([0], np.cumsum(count)[:-1]))
    out = np.full(groups, np.nan)
    has = count > 0
    lo = first[has] + (count[has] - 1) // 2
    hi = first[has] + count[has] // 2
    out[has] = np.where(lo == hi, v[lo], (v[lo] + v[hi]) / 2.0)
    return out


def batch_preset(
    preset: Preset,
    times: NDArray[np.float64],
    rssi: NDArray[np.float64],
    tx_power: NDArray[np.float64],
    encounter: NDArray[np.int64],
    rssi_correction: float,
    default_tx_power: float,
    trl_factor: float,
) -> BatchVerdicts:
    """One verdict per distinct encounter (ascending), as the preset judges each one alone."""
    ids = np.unique(encounter)
    att = attenuation(rssi, tx_power, rssi_correction, default_tx_power)
    keep = np.isfinite(times) & np.isfinite(att)
    t, a, r, enc = times[keep], att[keep], rssi[keep], encounter[keep]
    day = np.floor(t / SECONDS_PER_DAY) * SECONDS_PER_DAY
    order = np.lexsort((t, day, enc))  # stable: ties keep their given order, as the per-day sort does
    t, a, r, enc, day = t[order], a[order], r[order], enc[order], day[order]
    n = t.size
    close = np.zeros(ids.size, np.bool_)
    score, median_att, minutes = (np.full(ids.size, np.nan) for _ in range(3))
    if n == 0:
        return BatchVerdicts(ids, close, score, median_att, minutes)
    # (encounter, day) groups
    new_group = np.ones(n, np.bool_)
    new_group[1:] = (enc[1:] != enc[:-1]) | (day[1:] != day[:-1])
    g_start = np.flatnonzero(new_group)
    g_end = np.append(g_start[1:], n)
    # scan instances
    bounds = _chain_starts(t, g_start, g_end, SCAN_SECONDS, strict=True)
    count = np.diff(np.append(bounds, n))
    mean_a = np.add.reduceat(a, bounds) / count
    finite_r = np.isfinite(r)
    r_count = np.add.reduceat(finite_r.astype(np.float64), bounds)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_r = np.add.reduceat(np.where(finite_r, r, 0.0), bounds) / r_count
    start = t[bounds]
    scan_group = np.searchsorted(g_start, bounds, side="right") - 1
    first_scan = np.ones(bounds.size, np.bool_)
    first_scan[1:] = scan_group[1:] != scan_group[:-1]
    gaps = np.diff(start, prepend=np.nan)
    since = np.minimum(gaps, MAX_SCAN_GAP_SECONDS)
    groups = g_start.size
    later = ~first_scan
    median_gap = _group_median(since[later], scan_group[later], groups)
    scans_in = np.bincount(scan_group, minlength=groups)
    credit = np.where(scans_in > 1, np.minimum(FIRST_SCAN_SECONDS, median_gap), FIRST_SCAN_SECONDS)
    since[first_scan] = credit[scan_group[first_scan]]
    typical = np.round(mean_a)
    # exposure windows
    s_start = np.flatnonzero(first_scan)
    s_end = np.append(s_start[1:], bounds.size)
    w_bounds = _chain_starts(start, s_start, s_end, WINDOW_SECONDS, strict=False)
    weights = np.asarray(preset.weights, np.float64)
    if preset.measure == "rssi":
        values = -mean_r
        index = np.searchsorted(np.sort(-np.asarray(preset.thresholds, np.float64)), values, side="left")
        index = np.where(np.isnan(values), len(preset.thresholds), index)
    else:
        side: Literal["left", "right"] = "left" if preset.inclusive else "right"
        index = np.searchsorted(np.asarray(preset.thresholds, np.float64), typical, side=side)
    weighted = np.add.reduceat(since * weights[index], w_bounds) / 60.0
    if preset.trl_scaled:
        weighted = weighted * trl_factor
    if preset.window_minimum is not None:
        bound, least = preset.window_minimum
        below = np.add.reduceat(np.where(typical < bound, since, 0.0), w_bounds)
        weighted = np.where(below < least * 60, 0.0, weighted)
    window_group = scan_group[w_bounds]
    day_minutes = np.zeros(groups)
    np.add.at(day_minutes, window_group, weighted)  # in window order, as the per-day sum
    day_close = day_minutes >= preset.notify_minutes
    day_observed = np.bincount(scan_group, weights=since, minlength=groups) / 60.0
    day_median = _group_median(typical, scan_group, groups)
    # the encounter's verdict: any day close; the most worrying day's (first of equals) numbers
    g_enc = np.searchsorted(ids, enc[g_start])
    np.logical_or.at(close, g_enc, day_close)
    pick_order = np.lexsort((-np.arange(groups), day_minutes, day_close, g_enc))
    last = np.ones(groups, np.bool_)
    last[:-1] = g_enc[pick_order][1:] != g_enc[pick_order][:-1]
    pick = pick_order[last]
    score[g_enc[pick]] = day_minutes[pick]
    median_att[g_enc[pick]] = day_median[pick]
    minutes[g_enc[pick]] = day_observed[pick]
    return BatchVerdicts(ids, close, score, median_att, minutes)
