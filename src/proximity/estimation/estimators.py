"""Estimators by name, one pure signature: (a counterpart's sightings, settings) -> one Verdict per day.

``mean-attenuation`` (the default: no learned estimator beat it on recordings it never saw, see the
README) is :mod:`proximity.estimation.attenuation_mean`; ``probabilistic`` is
:mod:`proximity.estimation.probabilistic`; the others are the deployed bucket presets and ``nhs``,
the UK app's distance model (an anchor). :func:`estimate_batch` judges many encounters in one call.
:func:`verdict` turns one matched key (anything with ``times``, ``rssi``, ``tx_power``) into the
JSON-ready summary ``proximity match --estimator`` prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from proximity.errors import EstimationParameterError
from proximity.estimation.attenuation_mean import BatchVerdicts, batch_mean_attenuation, daily_means, decide
from proximity.estimation.calibration import attenuation
from proximity.estimation.constants import (
    DEFAULT_ESTIMATOR,
    DEFAULT_TX_POWER_DBM,
    FLEET_RSSI_CORRECTION_DB,
    PROBABILISTIC,
)
from proximity.estimation.nhs import NOTIFY_WEIGHTED_MINUTES, nhs_distances, nhs_weighted_minutes
from proximity.estimation.preset_batch import batch_preset
from proximity.estimation.presets import PRESETS, Preset, cwa_trl_factor
from proximity.estimation.probabilistic import ChannelModel, estimate_contact
from proximity.estimation.windows import CounterpartSightings, ScanInstances, exposure_windows, scan_instances
from proximity.times import SECONDS_PER_DAY

__all__ = [
    "DEFAULT_ESTIMATOR",
    "ESTIMATORS",
    "READS_CALIBRATION_CONFIDENCE",
    "EstimationSettings",
    "Estimator",
    "Verdict",
    "estimate",
    "estimate_batch",
    "estimator_names",
    "get_estimator",
    "verdict",
]


@dataclass(frozen=True, slots=True)
class EstimationSettings:
    """What an estimator needs besides the sightings: this scanner's calibration and the rule.

    ``rssi_correction`` is this device's (the scanner's) calibration, by default the fleet value;
    ``default_tx_power`` (the fleet calibrated TX) stands in for counterparts that did not send theirs
    (no AEM, Bluezone). Close contact = within ``distance`` m for ``minutes``.
    """

    rssi_correction: float = FLEET_RSSI_CORRECTION_DB
    default_tx_power: float = DEFAULT_TX_POWER_DBM
    calibration_confidence: int = 0
    distance: float = 2.0
    minutes: float = 15.0
    probability_threshold: float = 0.5
    model: ChannelModel = field(default_factory=ChannelModel)
    report_type: int | None = None

    def __post_init__(self) -> None:
        for name in ("rssi_correction", "default_tx_power"):
            if not math.isfinite(getattr(self, name)):
                raise EstimationParameterError(name, getattr(self, name), "a finite number of dB")
        if not (math.isfinite(self.distance) and self.distance > 0):
            raise EstimationParameterError("distance", self.distance, "a positive number of metres")
        if not (math.isfinite(self.minutes) and self.minutes >= 0):
            raise EstimationParameterError("minutes", self.minutes, "a finite number of minutes >= 0")
        if not 0 <= self.probability_threshold <= 1:
            raise EstimationParameterError("probability_threshold", self.probability_threshold, "in [0, 1]")
        if self.calibration_confidence not in (0, 1, 2, 3):
            raise EstimationParameterError("calibration_confidence", self.calibration_confidence, "0-3")


@dataclass(frozen=True, slots=True)
class Verdict:
    """One estimator's judgement of one counterpart on one UTC day (``day`` = its midnight).

    ``minutes_observed`` never exceeds the span of the day's sightings plus one scan interval: the
    scan-based estimators sum the scans' seconds since the last scan (GAEN's duration), the first
    scan credited 120 s or the encounter's scan interval if shorter; ``mean-attenuation`` lets each
    packet stand for the gap to its neighbour (at most 5 minutes). The scan-based estimators'
    ``attenuation_min_db`` / ``_median_db`` / ``_max_db`` are of the scans' typical attenuation.
    ``mean-attenuation`` works on packets, not scan instances: its ``attenuation_median_db`` is the
    day's mean packet attenuation (the statistic it judges), its min and max the packets',
    ``scans`` counts packets, ``windows`` 0."""

    estimator: str
    day: int
    close_contact: bool
    score: float  # probability (probabilistic), weighted minutes (presets), -mean attenuation (default)
    probability: float | None
    weighted_minutes: float | None
    minutes_observed: float
    attenuation_min_db: float
    attenuation_median_db: float
    attenuation_max_db: float
    scans: int
    windows: int
    distance_m: float | None = None
    distance_low_m: float | None = None
    distance_high_m: float | None = None
    minutes_within: float | None = None
    minutes_within_sd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }


Estimator = Callable[[CounterpartSightings, EstimationSettings], list[Verdict]]


def _days(sightings: CounterpartSightings, settings: EstimationSettings) -> list[tuple[int, ScanInstances]]:
    times = np.asarray(sightings.times, np.float64)
    rssi = np.asarray(sightings.rssi, np.float64)
    att = attenuation(rssi, np.asarray(sightings.tx_power, np.float64), settings.rssi_correction,
                      settings.default_tx_power)  # fmt: skip
    day = np.floor(times / SECONDS_PER_DAY) * SECONDS_PER_DAY
    return [
        (int(d), scan_instances(times[day == d], att[day == d], rssi[day == d]))
        for d in np.unique(day[np.isfinite(day)])
    ]


def _common(name: str, day: int, scans: ScanInstances) -> dict[str, Any]:
    """What every scan-based verdict reports. The attenuation range and median are all of the scans'
    typical attenuation (GAEN's per-scan value), so min <= median <= max; ``minutes_observed`` is
    GAEN's exposure duration, the sum of the scans' seconds since the last scan (see
    :func:`~proximity.estimation.windows.scan_instances` for the first scan's)."""
    typical = scans.typical_attenuation
    return {
        "estimator": name,
        "day": day,
        "minutes_observed": float(scans.seconds_since_last_scan.sum()) / 60.0,
        "attenuation_min_db": float(typical.min()) if len(scans) else math.nan,
        "attenuation_median_db": float(np.median(typical)) if len(scans) else math.nan,
        "attenuation_max_db": float(typical.max()) if len(scans) else math.nan,
        "scans": len(scans),
        "windows": len(exposure_windows(scans)),
    }


def _probabilistic(sightings: CounterpartSightings, settings: EstimationSettings) -> list[Verdict]:
    verdicts = []
    for day, scans in _days(sightings, settings):
        if len(scans) == 0:
            continue
        est = estimate_contact(scans, settings.model, distance=settings.distance, minutes=settings.minutes,
                               calibration_confidence=settings.calibration_confidence)  # fmt: skip
        verdicts.append(
            Verdict(
                **_common(PROBABILISTIC, day, scans),
                close_contact=est.probability >= settings.probability_threshold,
                score=est.probability,
                probability=est.probability,
                weighted_minutes=est.minutes_within,
                distance_m=est.distance_m,
                distance_low_m=est.distance_low_m,
                distance_high_m=est.distance_high_m,
                minutes_within=est.minutes_within,
                minutes_within_sd=est.minutes_within_sd,
            )
        )
    return verdicts


def _preset_estimator(preset: Preset) -> Estimator:
    def run(sightings: CounterpartSightings, settings: EstimationSettings) -> list[Verdict]:
        trl = cwa_trl_factor(settings.report_type)
        verdicts = []
        for day, scans in _days(sightings, settings):
            if len(scans) == 0:
                continue
            minutes = sum(preset.window_minutes(w, trl) for w in exposure_windows(scans))
            verdicts.append(
                Verdict(
                    **_common(preset.name, day, scans),
                    close_contact=minutes >= preset.notify_minutes,
                    score=minutes,
                    probability=None,
                    weighted_minutes=minutes,
                )
            )
        return verdicts

    run.__doc__ = preset.description
    return run


def _nhs(sightings: CounterpartSightings, settings: EstimationSettings) -> list[Verdict]:
    """The UK NHS app's model (anchor): smoothed per-second distance, minutes x min(1, 1/d^2)."""
    times = np.asarray(sightings.times, np.float64)
    att = attenuation(
        np.asarray(sightings.rssi, np.float64),
        np.asarray(sightings.tx_power, np.float64),
        settings.rssi_correction,
        settings.default_tx_power,
    )
    verdicts = []
    for day, scans in _days(sightings, settings):
        if len(scans) == 0:
            continue
        today = (times >= day) & (times < day + SECONDS_PER_DAY)
        minutes, _ = nhs_weighted_minutes(times[today], att[today])
        _, distance = nhs_distances(times[today], att[today])
        verdicts.append(
            Verdict(
                **_common("nhs", day, scans),
                close_contact=minutes >= NOTIFY_WEIGHTED_MINUTES,
                score=minutes,
                probability=None,
                weighted_minutes=minutes,
                distance_m=float(np.median(distance)),
            )
        )
    return verdicts


def _mean_attenuation(sightings: CounterpartSightings, settings: EstimationSettings) -> list[Verdict]:
    """Mean attenuation of the day's packets against the shipped (fitted) threshold, and its minutes."""
    times = np.asarray(sightings.times, np.float64)
    means = daily_means(times, sightings.rssi, sightings.tx_power, np.zeros(times.shape, np.int64),
                        settings.rssi_correction, settings.default_tx_power)  # fmt: skip
    close, score = decide(means, settings)
    return [
        Verdict(
            estimator=DEFAULT_ESTIMATOR,
            day=int(means.day[i]),
            close_contact=bool(close[i]),
            score=float(score[i]),
            probability=None,
            weighted_minutes=None,
            minutes_observed=float(means.minutes[i]),
            attenuation_min_db=float(means.min_attenuation[i]),
            attenuation_median_db=float(means.mean_attenuation[i]),
            attenuation_max_db=float(means.max_attenuation[i]),
            scans=int(means.packets[i]),
            windows=0,
        )
        for i in range(means.day.size)
    ]


ESTIMATORS: dict[str, Estimator] = {
    DEFAULT_ESTIMATOR: _mean_attenuation,
    PROBABILISTIC: _probabilistic,
    **{name: _preset_estimator(preset) for name, preset in PRESETS.items()},
    "nhs": _nhs,
}


# the estimators whose verdicts depend on EstimationSettings.calibration_confidence (the others give
# the same verdicts whatever it is, so a batch of mixed confidences may go to them in one call)
READS_CALIBRATION_CONFIDENCE = frozenset({PROBABILISTIC})


def estimator_names() -> list[str]:
    return list(ESTIMATORS)


def get_estimator(name: str) -> Estimator:
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; choose from {', '.join(ESTIMATORS)}") from None


def estimate(
    sightings: CounterpartSightings,
    estimator: str = DEFAULT_ESTIMATOR,
    settings: EstimationSettings | None = None,
) -> list[Verdict]:
    """One Verdict per UTC day on which the counterpart was heard with an RSSI."""
    return get_estimator(estimator)(sightings, settings or EstimationSettings())


def verdict(
    match: CounterpartSightings,
    estimator: str = DEFAULT_ESTIMATOR,
    settings: EstimationSettings | None = None,
) -> dict[str, Any]:
    """A JSON-ready verdict for one matched key: the most worrying day, plus every day.

    Reads ``calibration_confidence`` (the AEM's, where known) and ``report_type`` from the match when
    it has them (the matcher's KeyMatch does). Without any RSSI ``close_contact`` and ``score`` are
    None: unknown.
    """
    settings = settings or EstimationSettings()
    confidence = getattr(match, "calibration_confidence", None)
    if confidence is not None and np.size(confidence) and (np.asarray(confidence) >= 0).any():
        known = np.asarray(confidence)[np.asarray(confidence) >= 0]
        settings = _with(settings, calibration_confidence=int(np.min(known)))
    report_type = getattr(match, "report_type", None)
    if report_type is not None:
        settings = _with(settings, report_type=int(report_type))
    days = estimate(match, estimator, settings)
    if not days:
        # heard, but never with an RSSI: no signal to judge, so unknown (None), not "no"
        return {"estimator": estimator, "close_contact": None, "score": None, "probability": None, "days": []}
    worst = max(days, key=lambda v: (v.close_contact, v.score))
    return {**worst.to_dict(), "close_contact": any(v.close_contact for v in days),
            "days": [v.to_dict() for v in days]}  # fmt: skip


def estimate_batch(
    times: ArrayLike,
    rssi: ArrayLike,
    tx_power: ArrayLike,
    encounter: ArrayLike,
    estimator: str = DEFAULT_ESTIMATOR,
    settings: EstimationSettings | None = None,
) -> BatchVerdicts:
    """Many encounters in one call: sightings as columns plus an encounter index (one int per
    sighting) -> one verdict per distinct encounter, in ascending order, the same as :func:`verdict`
    on each encounter's sightings (``close_contact`` False and ``score`` NaN where none has an RSSI).
    The default estimator and the bucket presets are vectorised; ``probabilistic`` and ``nhs`` run
    encounter by encounter (on slices of one sort by encounter)."""
    settings = settings or EstimationSettings()
    get_estimator(estimator)
    if estimator == DEFAULT_ESTIMATOR:
        return batch_mean_attenuation(times, rssi, tx_power, encounter, settings)
    columns = [np.asarray(x, np.float64) for x in (times, rssi, tx_power)]
    enc = np.asarray(encounter, np.int64)
    if not all(c.shape == enc.shape for c in columns) or enc.ndim != 1:
        raise EstimationParameterError("encounter", enc.shape, "one index per sighting (1-D, like times)")
    if estimator in PRESETS:  # vectorised (estimation/preset_batch.py)
        t, r, tx = columns
        trl = cwa_trl_factor(settings.report_type)
        return batch_preset(
            PRESETS[estimator], t, r, tx, enc, settings.rssi_correction, settings.default_tx_power, trl
        )
    order = np.argsort(enc, kind="stable")  # each encounter's sightings in their given order
    columns = [c[order] for c in columns]
    ids, starts = np.unique(enc[order], return_index=True)
    bounds = np.append(starts, enc.size)
    close = np.zeros(ids.size, np.bool_)
    score, mean_att, minutes = (np.full(ids.size, np.nan) for _ in range(3))
    for k in range(ids.size):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        one = verdict(_Columns(*(c[lo:hi] for c in columns)), estimator, settings)
        if one["close_contact"] is not None:
            close[k], score[k] = one["close_contact"], one["score"]
            mean_att[k], minutes[k] = one["attenuation_median_db"], one["minutes_observed"]
    return BatchVerdicts(ids, close, score, mean_att, minutes)


@dataclass(frozen=True, slots=True)
class _Columns:
    times: NDArray[np.float64]
    rssi: NDArray[np.float64]
    tx_power: NDArray[np.float64]


def _with(settings: EstimationSettings, **changes: Any) -> EstimationSettings:
    from dataclasses import replace

    return replace(settings, **changes)
