"""Scoring estimators on recorded sessions at known distances (the shared MIT CSV format).

One session = one encounter ((config, session) in the CSV) at one fixed distance. Sessions last ~2
minutes, shorter than any duration rule, so they are scored on distance alone: a session is a positive
at threshold d when its distance is within d + 0.05 m. Per-session scores: a preset's bucket-weighted
duration per minute observed (``nhs``: its weighted minutes per minute); the probabilistic estimator's
P(distance <= d).

Decisions (hence nDCF) never look at the scored data: with fit sessions, a preset's threshold is the
one with the least nDCF on them and the probabilistic estimator's channel model is fitted to them
(it then decides "close" when the data favour it: P(d <= D | data) >= prior P(d <= D), the Bayes rule
for nDCF's equal costs); without, the presets notify as deployed (their daily rule over 15 minutes)
and the probabilistic estimator uses the published channel facts. :func:`cross_validate` repeats
this leaving one configuration out at a time and pools every held-out decision.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.errors import RecordingFormatError
from proximity.estimation.calibration import DEFAULT_TX_POWER_DBM, attenuation, default_calibration
from proximity.estimation.estimators import DEFAULT_ESTIMATOR, estimator_names
from proximity.estimation.nhs import NOTIFY_WEIGHTED_MINUTES, nhs_weighted_minutes
from proximity.estimation.presets import PRESETS, cwa_trl_factor
from proximity.estimation.probabilistic import ChannelModel, estimate_contact, fit_channel_model
from proximity.estimation.scoring import (
    TC4TL_DISTANCES,
    fit_threshold,
    ndcf_difference,
    ndcf_interval,
    operating_point,
    roc_auc,
)
from proximity.estimation.windows import ScanInstances, scan_instances

__all__ = [
    "POSITIVE_MARGIN_M",
    "RSSI_NOT_AVAILABLE",
    "Session",
    "cross_validate",
    "evaluate",
    "parse_recordings",
    "split_by_config",
]

RSSI_NOT_AVAILABLE = 127
POSITIVE_MARGIN_M = 0.05
REQUIRED = ("config", "session", "distance_m", "t_s", "rssi")
TX_PLAUSIBLE = (-50.0, 20.0)  # GAEN's accepted TX-power range; outside it (e.g. -999) = not reported


@dataclass(frozen=True, slots=True, eq=False)
class Session:
    """One recorded encounter: RSSI packets at one fixed distance ("not available" rows dropped)."""

    config: str
    session: str
    distance_m: float
    times: NDArray[np.float64]
    rssi: NDArray[np.float64]
    tx_power: NDArray[np.float64]  # NaN where not reported
    receiver_model: str = ""
    beacon_model: str = ""

    def attenuation(self, default_tx_power: float = DEFAULT_TX_POWER_DBM) -> NDArray[np.float64]:
        correction = default_calibration().lookup(model=self.receiver_model).rssi_correction
        return attenuation(self.rssi, self.tx_power, correction, default_tx_power)

    def scans(self, default_tx_power: float = DEFAULT_TX_POWER_DBM) -> ScanInstances:
        return scan_instances(
            self.times, self.attenuation(default_tx_power), self.rssi, first_scan_seconds=None
        )


def _whole_rssi(text: str | None, line: int) -> int:
    """An RSSI cell as whole dBm: "-60" or "-60.0"; a fraction, inf or NaN is refused (not truncated)."""
    try:
        value = float(text or "")
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value.is_integer()):
        raise RecordingFormatError(
            f"recordings line {line}: rssi must be a whole number of dBm, got {text!r}"
        )
    return int(value)


def parse_recordings(text: str) -> list[Session]:
    """Sessions from the CSV text (columns config, session, distance_m, t_s, rssi[, tx_power, ...])."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
    if missing:
        raise RecordingFormatError(f"recordings lack column(s) {', '.join(missing)}")
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for line, row in enumerate(reader, start=2):
        try:
            rssi = _whole_rssi(row["rssi"], line)
            t = float(row["t_s"])
            distance = float(row["distance_m"])
            tx_text = (row.get("tx_power") or "").strip()
            tx = float(tx_text) if tx_text else math.nan
        except ValueError as error:
            raise RecordingFormatError(f"recordings line {line}: {error}") from None
        if not (math.isfinite(t) and math.isfinite(distance) and distance > 0):
            raise RecordingFormatError(f"recordings line {line}: time and a positive distance are required")
        key = (row["config"], row["session"])
        group = groups.setdefault(
            key,
            {"distance": distance, "t": [], "rssi": [], "tx": [],
             "rx": row.get("receiver_model") or "", "bx": row.get("beacon_model") or ""},
        )  # fmt: skip
        if group["distance"] != distance:
            raise RecordingFormatError(f"recordings line {line}: session {key} changes distance")
        if rssi == RSSI_NOT_AVAILABLE:
            continue
        group["t"].append(t)
        group["rssi"].append(float(rssi))
        group["tx"].append(tx if TX_PLAUSIBLE[0] <= tx <= TX_PLAUSIBLE[1] else math.nan)
    sessions = [
        Session(config, session, g["distance"], np.asarray(g["t"]), np.asarray(g["rssi"]),
                np.asarray(g["tx"]), g["rx"], g["bx"])
        for (config, session), g in groups.items()
        if g["t"]
    ]  # fmt: skip
    if not sessions:
        raise RecordingFormatError("recordings hold no session with an RSSI")
    return sessions


def split_by_config(sessions: Sequence[Session]) -> tuple[list[Session], list[Session]]:
    """(fit, score): configurations in name order, alternately to fit (1st, 3rd, ...) and to score."""
    configs = sorted({s.config for s in sessions})
    fit_configs = set(configs[::2])
    return [s for s in sessions if s.config in fit_configs], [
        s for s in sessions if s.config not in fit_configs
    ]


def _positive(sessions: Sequence[Session], d: float) -> NDArray[np.bool_]:
    return np.array([s.distance_m <= d + POSITIVE_MARGIN_M for s in sessions], dtype=np.bool_)


class _Scorer:
    name: str

    def scores(self, sessions: Sequence[Session], d: float) -> NDArray[np.float64]:
        raise NotImplementedError

    def decide(self, scores: NDArray[np.float64], d: float) -> NDArray[np.bool_]:
        raise NotImplementedError

    def describe(self, d: float) -> dict[str, Any]:
        return {}


class _PresetScorer(_Scorer):
    def __init__(self, name: str, fit: Sequence[Session] | None, tx: float) -> None:
        self.name = name
        self.preset = PRESETS[name]
        self.tx = tx
        self.thresholds: dict[float, float] = {}
        for d in TC4TL_DISTANCES:
            if fit:
                self.thresholds[d] = fit_threshold(self.scores(fit, d), _positive(fit, d))
            else:  # as deployed: would it notify if this lasted 15 minutes?
                factor = cwa_trl_factor(None) if self.preset.trl_scaled else 1.0
                self.thresholds[d] = self.preset.notify_minutes / (15.0 * factor)

    def scores(self, sessions: Sequence[Session], d: float) -> NDArray[np.float64]:
        return np.array([self.preset.rate(s.scans(self.tx)) for s in sessions])

    def decide(self, scores: NDArray[np.float64], d: float) -> NDArray[np.bool_]:
        return np.asarray(scores >= self.thresholds[d])

    def describe(self, d: float) -> dict[str, Any]:
        return {"threshold": self.thresholds[d]}


class _NhsScorer(_PresetScorer):
    """The NHS model's weighted minutes per minute observed; notifies as deployed (2 of 15 minutes)."""

    def __init__(self, fit: Sequence[Session] | None, tx: float) -> None:
        self.name = "nhs"
        self.tx = tx
        self.thresholds = {}
        for d in TC4TL_DISTANCES:
            if fit:
                self.thresholds[d] = fit_threshold(self.scores(fit, d), _positive(fit, d))
            else:
                self.thresholds[d] = NOTIFY_WEIGHTED_MINUTES / 15.0

    def scores(self, sessions: Sequence[Session], d: float) -> NDArray[np.float64]:
        rates = []
        for s in sessions:
            weighted, observed = nhs_weighted_minutes(s.times, s.attenuation(self.tx))
            rates.append(weighted / observed if observed else 0.0)
        return np.array(rates)


class _ProbabilisticScorer(_Scorer):
    name = DEFAULT_ESTIMATOR

    def __init__(self, fit: Sequence[Session] | None, tx: float) -> None:
        self.tx = tx
        self.model = (
            fit_channel_model([(s.times, s.attenuation(tx), s.distance_m) for s in fit])
            if fit
            else ChannelModel()
        )

    def scores(self, sessions: Sequence[Session], d: float) -> NDArray[np.float64]:
        return np.array(
            [
                estimate_contact(s.scans(self.tx), self.model, distance=d + POSITIVE_MARGIN_M).p_within
                for s in sessions
            ]
        )

    def decide(self, scores: NDArray[np.float64], d: float) -> NDArray[np.bool_]:
        return np.asarray(scores >= self.model.prior_below(d + POSITIVE_MARGIN_M))

    def describe(self, d: float) -> dict[str, Any]:
        m = self.model
        return {
            "threshold": m.prior_below(d + POSITIVE_MARGIN_M),
            "model": {
                "attenuation_at_1m": round(m.attenuation_at_1m, 2),
                "path_loss_exponent": round(m.path_loss_exponent, 3),
                "offset_sigma": round(m.offset_sigma, 2),
                "fading_sigma": round(m.fading_sigma, 2),
                "floor_sigma": round(m.floor_sigma, 2),
                "fade_at_1m": round(m.fade_at_1m, 3),
                "fade_slope": round(m.fade_slope, 3),
                "fade_sigma": round(m.fade_sigma, 3),
                "distance_prior_m": [round(m.min_distance, 3), round(m.max_distance, 3)],
            },
        }


def _check_names(names: Iterable[str] | None) -> list[str]:
    chosen = list(names) if names is not None else estimator_names()
    for name in chosen:
        if name not in estimator_names():
            raise ValueError(f"unknown estimator {name!r}; choose from {', '.join(estimator_names())}")
    return chosen


def _scorer(name: str, fit: Sequence[Session] | None) -> _Scorer:
    tx = DEFAULT_TX_POWER_DBM  # where a packet did not report its TX power
    if name == DEFAULT_ESTIMATOR:
        return _ProbabilisticScorer(fit, tx)
    if name == "nhs":
        return _NhsScorer(fit, tx)
    return _PresetScorer(name, fit, tx)


def _row(
    name: str,
    sessions: Sequence[Session],
    scores: dict[float, NDArray[np.float64]],
    decisions: dict[float, NDArray[np.bool_]],
) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, "sessions": len(sessions)}
    groups = _bootstrap_groups(sessions)
    for d in TC4TL_DISTANCES:
        labels = _positive(sessions, d)
        point = operating_point(decisions[d], labels)
        row[f"auc_{d}"] = roc_auc(scores[d], labels)
        row[f"ndcf_{d}"] = point.ndcf
        interval = ndcf_interval(decisions[d], labels, groups)
        row[f"ndcf_{d}_ci"] = [interval.low, interval.high]
        row[f"tpr_{d}"] = point.tpr
        row[f"fpr_{d}"] = point.fpr
        row[f"positives_{d}"] = int(labels.sum())
    row["auc"] = row["auc_1.8"]
    row["bootstrap_unit"] = "configuration" if groups is not None else "session"
    return row


def _bootstrap_groups(sessions: Sequence[Session]) -> NDArray[np.str_] | None:
    """Redraw whole configurations when there are several: their sessions share a carriage (a body, a
    pocket) and err together, so redrawing sessions alone would claim more certainty than the data hold."""
    configs = np.array([s.config for s in sessions])
    return configs if np.unique(configs).size >= 2 else None


def _compare(
    rows: list[dict[str, Any]],
    sessions: Sequence[Session],
    decisions: dict[str, dict[float, NDArray[np.bool_]]],
) -> None:
    """Give the default estimator's row ``versus``: its paired nDCF difference to every other estimator
    scored here (negative favours the default), with a bootstrap interval and how often it is lower."""
    if DEFAULT_ESTIMATOR not in decisions or len(decisions) < 2:
        return
    groups = _bootstrap_groups(sessions)
    versus = []
    for name, theirs in decisions.items():
        if name == DEFAULT_ESTIMATOR:
            continue
        for d in TC4TL_DISTANCES:
            diff = ndcf_difference(decisions[DEFAULT_ESTIMATOR][d], theirs[d], _positive(sessions, d), groups)
            versus.append(
                {"name": name, "distance": d, "difference": diff.value, "low": diff.low, "high": diff.high,
                 "share_lower": diff.share_below_zero}
            )  # fmt: skip
    next(r for r in rows if r["name"] == DEFAULT_ESTIMATOR)["versus"] = versus


def evaluate(
    sessions: Sequence[Session],
    fit: Sequence[Session] | None = None,
    names: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Per estimator: AUC (at each TC4TL distance; ``auc`` = at 1.8 m), nDCF with its bootstrap interval
    and TPR/FPR from decisions; the default estimator's row also compares it with the others (``versus``).
    ``progress`` is told each estimator's name as its turn comes."""
    results = []
    all_decisions = {}
    for name in _check_names(names):
        if progress:
            progress(name)
        scorer = _scorer(name, fit)
        scores = {d: scorer.scores(sessions, d) for d in TC4TL_DISTANCES}
        decisions = {d: scorer.decide(scores[d], d) for d in TC4TL_DISTANCES}
        row = {**_row(name, sessions, scores, decisions), "fitted": bool(fit)}
        for d in TC4TL_DISTANCES:
            row[f"decision_{d}"] = scorer.describe(d)
        results.append(row)
        all_decisions[name] = decisions
    _compare(results, sessions, all_decisions)
    return results


def cross_validate(
    sessions: Sequence[Session],
    names: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Leave one configuration out: for each configuration, fit on all the others and decide on it.

    Every session is scored exactly once by a model and thresholds that never saw its configuration;
    the held-out decisions (and scores, for AUC) of all folds are pooled into one nDCF per estimator,
    so each estimator is judged on every session (twice the decisions of a two-fold split), by the
    same protocol for all.
    """
    configs = sorted({s.config for s in sessions})
    if len(configs) < 2:
        raise ValueError("cross-validation needs at least 2 configurations")
    chosen = _check_names(names)
    ordered = [s for c in configs for s in sessions if s.config == c]
    results = []
    all_decisions = {}
    for name in chosen:
        if progress:
            progress(name)
        scores: dict[float, list[NDArray[np.float64]]] = {d: [] for d in TC4TL_DISTANCES}
        decisions: dict[float, list[NDArray[np.bool_]]] = {d: [] for d in TC4TL_DISTANCES}
        for config in configs:
            held_out = [s for s in sessions if s.config == config]
            scorer = _scorer(name, [s for s in sessions if s.config != config])
            for d in TC4TL_DISTANCES:
                scores[d].append(scorer.scores(held_out, d))
                decisions[d].append(scorer.decide(scores[d][-1], d))
        pooled = {d: np.concatenate(v) for d, v in decisions.items()}
        row = _row(name, ordered, {d: np.concatenate(v) for d, v in scores.items()}, pooled)
        results.append({**row, "fitted": True, "folds": len(configs)})
        all_decisions[name] = pooled
    _compare(results, ordered, all_decisions)
    return results
