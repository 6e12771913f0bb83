"""The bucket rules deployed apps used: attenuation thresholds, bucket weights, a notify threshold.

Each preset turns scan instances into weighted minutes (seconds since last scan x bucket weight, by
typical attenuation; Bluezone by mean RSSI) per exposure window and per UTC day, and notifies when the
day's weighted minutes reach ``notify_minutes``. Germany's CWA also drops a window with less than
5 minutes below 79 dB and scales by the transmission risk level (TRL x 0.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from proximity.estimation.windows import ExposureWindow, ScanInstances

__all__ = ["PRESETS", "Preset", "cwa_trl_factor"]


@dataclass(frozen=True, slots=True)
class Preset:
    """One deployed bucket rule. ``thresholds`` increase; ``weights`` has one more entry (the last bucket).

    ``measure`` "attenuation" buckets typical attenuation (dB); "rssi" buckets mean RSSI (dBm, higher
    is nearer: bucket 0 is RSSI >= thresholds[0]). ``inclusive``: a value equal to a threshold falls in
    the nearer bucket (GAEN's "<="); CWA's buckets are half-open ("[0, 63)").
    """

    name: str
    description: str
    thresholds: tuple[float, ...]
    weights: tuple[float, ...]
    notify_minutes: float
    measure: Literal["attenuation", "rssi"] = "attenuation"
    inclusive: bool = True
    window_minimum: tuple[float, float] | None = None  # (dB bound, minutes): drop windows below it
    trl_scaled: bool = False

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.thresholds) + 1:
            raise ValueError("a preset needs one weight per bucket (thresholds + 1)")
        if list(self.thresholds) != sorted(self.thresholds):
            raise ValueError("preset thresholds must increase")

    def bucket_weights(self, scans: ScanInstances) -> NDArray[np.float64]:
        """The weight of each scan's bucket."""
        weights = np.asarray(self.weights, np.float64)
        if self.measure == "rssi":
            values = -scans.mean_rssi  # nearer = smaller, like attenuation
            thresholds = -np.asarray(self.thresholds, np.float64)
            index = np.searchsorted(np.sort(thresholds), values, side="left")
            index = np.where(np.isnan(values), len(self.thresholds), index)
        else:
            side: Literal["left", "right"] = "left" if self.inclusive else "right"
            index = np.searchsorted(
                np.asarray(self.thresholds, np.float64), scans.typical_attenuation, side=side
            )
        return weights[index]

    def weighted_seconds(self, scans: ScanInstances) -> float:
        return float((scans.seconds_since_last_scan * self.bucket_weights(scans)).sum())

    def rate(self, scans: ScanInstances) -> float:
        """Weighted minutes per minute observed: the preset's score of an encounter, whatever its length."""
        seconds = float(scans.seconds_since_last_scan.sum())
        return self.weighted_seconds(scans) / seconds if seconds > 0 else 0.0

    def window_minutes(self, window: ExposureWindow, trl_factor: float = 1.0) -> float:
        """The window's weighted minutes (after CWA's minimum-duration rule and TRL scaling)."""
        scans = window.scans
        if self.window_minimum is not None:
            bound, minutes = self.window_minimum
            below = scans.seconds_since_last_scan[scans.typical_attenuation < bound].sum()
            if below < minutes * 60:
                return 0.0
        factor = trl_factor if self.trl_scaled else 1.0
        return self.weighted_seconds(scans) / 60.0 * factor


def cwa_trl_factor(report_type: int | None) -> float:
    """CWA: normalized time = TRL x 0.2 x weighted minutes; TRL = report-type offset + infectiousness
    offset (standard: 1). Report types 1 test (6), 2 clinical (4), 3 self (2), 4 recursive (0);
    unknown counts as clinical. A TRL of 1-2 is dropped (factor 0)."""
    offset = {1: 6, 2: 4, 3: 2, 4: 0}.get(report_type or 2, 4)
    trl = offset + 1
    return 0.0 if trl <= 2 else trl * 0.2


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("enx", "GAEN EN Express defaults: 30/50/60 dB, weights 1.5/1.0/0.5/0", (30, 50, 60),
               (1.5, 1.0, 0.5, 0.0), 15.0),
        Preset("cwa", "Germany CWA (2021): [0,63) x0.8, [63,73) x1.0, [73,79) x0.1; >= 5 min below 79 dB; "
               "TRL x 0.2 x minutes >= 13", (63, 73, 79), (0.8, 1.0, 0.1, 0.0), 13.0, inclusive=False,
               window_minimum=(79.0, 5.0), trl_scaled=True),
        Preset("swisscovid", "SwissCovid (2020-09-10): 55/63 dB, weights 1.0/0.5/0, 15 weighted min a day",
               (55, 63), (1.0, 0.5, 0.0), 15.0),
        Preset("netherlands", "Netherlands: 56/62/73 dB, weights 1.5/1.0/0.4/0, 15 weighted minutes",
               (56, 62, 73), (1.5, 1.0, 0.4, 0.0), 15.0),
        Preset("bluezone-near", "Bluezone 'near': RSSI >= -86 dBm (Android to Android), 15 minutes near",
               (-86,), (1.0, 0.0), 15.0, measure="rssi"),
    )
}  # fmt: skip
