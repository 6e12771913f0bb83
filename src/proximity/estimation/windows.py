"""GAEN v2 semantics: sightings -> scan instances -> exposure windows -> daily summaries.

A scan instance is one scan's worth of sightings of a counterpart (sightings within ``SCAN_SECONDS`` of
the scan's first one): its typical (rounded mean) and minimum attenuation, the seconds since the
previous scan (capped at 5 minutes; for the first scan, 120 s or the encounter's scan interval if
shorter), and its fast fading (|differences| between consecutive packets, which a per-encounter offset
cannot shift). Exposure windows group scans per UTC day into spans of at most 30 minutes; weighted
durations and scores follow the preset's buckets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from proximity.errors import EstimationParameterError
from proximity.times import SECONDS_PER_DAY

__all__ = [
    "FIRST_SCAN_SECONDS",
    "MAX_SCAN_GAP_SECONDS",
    "SCAN_SECONDS",
    "WINDOW_SECONDS",
    "CounterpartSightings",
    "ExposureWindow",
    "ScanInstances",
    "exposure_windows",
    "scan_instances",
]

SCAN_SECONDS = 25.0
MAX_SCAN_GAP_SECONDS = 300.0
FIRST_SCAN_SECONDS = 120.0
WINDOW_SECONDS = 1800.0


class CounterpartSightings(Protocol):
    """A counterpart's sightings (a matched key's, or a recorded session's), float64 columns.

    ``rssi`` and ``tx_power`` hold NaN where unknown. The matcher's ``KeyMatch`` has this shape.
    """

    @property
    def times(self) -> NDArray[np.float64]: ...

    @property
    def rssi(self) -> NDArray[np.float64]: ...

    @property
    def tx_power(self) -> NDArray[np.float64]: ...


@dataclass(frozen=True, slots=True, eq=False)
class ScanInstances:
    """Scan instances column-wise: start time, typical/min attenuation (dB), mean RSSI, packets, seconds."""

    start: NDArray[np.float64]
    typical_attenuation: NDArray[np.float64]
    min_attenuation: NDArray[np.float64]
    mean_attenuation: NDArray[np.float64]
    mean_rssi: NDArray[np.float64]
    packets: NDArray[np.int64]
    seconds_since_last_scan: NDArray[np.float64]
    # Fast fading seen within each scan: sum of |difference| between consecutive packets (dB) and
    # how many such pairs (packets - 1). A per-encounter offset shifts every packet alike, so these
    # carry distance evidence the offset cannot fake. None: not known (no pairs).
    fade_abs_sum: NDArray[np.float64] | None = None
    fade_pairs: NDArray[np.int64] | None = None

    def __len__(self) -> int:
        return int(self.start.shape[0])

    def select(self, mask: NDArray[np.bool_]) -> ScanInstances:
        return ScanInstances(
            self.start[mask],
            self.typical_attenuation[mask],
            self.min_attenuation[mask],
            self.mean_attenuation[mask],
            self.mean_rssi[mask],
            self.packets[mask],
            self.seconds_since_last_scan[mask],
            None if self.fade_abs_sum is None else self.fade_abs_sum[mask],
            None if self.fade_pairs is None else self.fade_pairs[mask],
        )

    def fading(self) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """(sum of |consecutive-packet difference| in dB, number of pairs) per scan; zeros if unknown."""
        if self.fade_abs_sum is None or self.fade_pairs is None:
            return np.zeros(len(self)), np.zeros(len(self), np.int64)
        return self.fade_abs_sum, self.fade_pairs


def scan_instances(
    times: NDArray[np.float64],
    attenuation: NDArray[np.float64],
    rssi: NDArray[np.float64] | None = None,
    *,
    scan_seconds: float = SCAN_SECONDS,
    first_scan_seconds: float | None = FIRST_SCAN_SECONDS,
) -> ScanInstances:
    """Group sightings (any order; NaN attenuations dropped) into scan instances.

    The first scan's seconds-since-last-scan is unknown. GAEN credits it the device's scan interval
    (the time since its previous scan): here ``first_scan_seconds`` (120 s), or the encounter's own
    scan interval (the median gap between its scans) where that is shorter, so the scans' seconds
    never sum to more than the span of the sightings plus one scan interval (30 scans 40 s apart:
    20 minutes, not 21.3). ``None`` always uses the median gap (for continuous recordings, where
    120 s would give the first scan of a 2-minute session half the weight).
    """
    if not (math.isfinite(scan_seconds) and scan_seconds > 0):
        raise EstimationParameterError("scan_seconds", scan_seconds, "a positive number of seconds")
    if first_scan_seconds is not None and not (math.isfinite(first_scan_seconds) and first_scan_seconds > 0):
        raise EstimationParameterError(
            "first_scan_seconds", first_scan_seconds, "a positive number of seconds"
        )
    times = np.asarray(times, np.float64)
    attenuation = np.asarray(attenuation, np.float64)
    rssi = np.full(times.shape, np.nan) if rssi is None else np.asarray(rssi, np.float64)
    keep = np.isfinite(times) & np.isfinite(attenuation)
    order = np.argsort(times[keep], kind="stable")
    t, a, r = times[keep][order], attenuation[keep][order], rssi[keep][order]
    if t.size == 0:
        empty = np.zeros(0)
        none = np.zeros(0, np.int64)
        return ScanInstances(empty, empty, empty, empty, empty, none, empty, empty, none)
    # A scan starts at a sighting more than scan_seconds after the current scan's start (sequential
    # by nature, but only over scan boundaries: jump with searchsorted from start to start).
    starts = [0]
    while True:
        nxt = int(np.searchsorted(t, t[starts[-1]] + scan_seconds, side="right"))
        if nxt >= t.size:
            break
        starts.append(nxt)
    bounds = np.array(starts, dtype=np.int64)
    count = np.diff(np.append(bounds, t.size))
    mean_a = np.add.reduceat(a, bounds) / count
    min_a = np.minimum.reduceat(a, bounds)
    finite_r = np.isfinite(r)
    r_count = np.add.reduceat(finite_r.astype(np.float64), bounds)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_r = np.add.reduceat(np.where(finite_r, r, 0.0), bounds) / r_count
    start = t[bounds]
    gaps = np.diff(start, prepend=np.nan)
    since = np.minimum(gaps, MAX_SCAN_GAP_SECONDS)
    if first_scan_seconds is not None:  # at most one of this encounter's scan intervals
        since[0] = (
            min(first_scan_seconds, float(np.median(since[1:]))) if since.size > 1 else first_scan_seconds
        )
    else:
        since[0] = float(np.median(since[1:])) if since.size > 1 else scan_seconds
    # Consecutive-packet differences within a scan (the pair that straddles a scan boundary is dropped).
    jumps = np.abs(np.diff(a))
    same_scan = np.ones(jumps.size, np.bool_)
    same_scan[bounds[1:] - 1] = False
    pair_scan = np.repeat(np.arange(bounds.size), count)[1:]
    fade_sum = np.bincount(pair_scan[same_scan], weights=jumps[same_scan], minlength=bounds.size)
    return ScanInstances(
        start, np.round(mean_a), min_a, mean_a, mean_r, count.astype(np.int64), since,
        fade_sum.astype(np.float64), (count - 1).astype(np.int64),
    )  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class ExposureWindow:
    """Up to 30 minutes of one counterpart's scans on one UTC day (``day`` = that midnight)."""

    day: int
    start: float
    scans: ScanInstances

    @property
    def seconds(self) -> float:
        return float(self.scans.seconds_since_last_scan.sum())


def exposure_windows(scans: ScanInstances, *, window_seconds: float = WINDOW_SECONDS) -> list[ExposureWindow]:
    """Split scans per UTC day into windows of at most ``window_seconds`` from each window's first scan."""
    windows: list[ExposureWindow] = []
    if len(scans) == 0:
        return windows
    days = (np.floor(scans.start / SECONDS_PER_DAY) * SECONDS_PER_DAY).astype(np.int64)
    first = 0
    for i in range(1, len(scans) + 1):
        if i == len(scans) or days[i] != days[first] or scans.start[i] - scans.start[first] >= window_seconds:
            mask = np.zeros(len(scans), np.bool_)
            mask[first:i] = True
            windows.append(ExposureWindow(int(days[first]), float(scans.start[first]), scans.select(mask)))
            first = i
    return windows
