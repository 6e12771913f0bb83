"""Scoring estimators on recorded sessions at known distances (the shared CSV format), across files.

One session = one encounter ((config, session) of one file) at one fixed distance. A session is a
positive at threshold d when its distance is within d + 0.05 m. Per-session scores: a preset's
bucket-weighted duration per minute observed (``nhs``: its weighted minutes per minute); the
probabilistic estimator's P(distance <= d); the baselines' minus the session's mean, median or max
attenuation (higher = nearer). Every attenuation is on GAEN's scale (:mod:`recordings`).

Decisions (hence nDCF) never look at the scored data: with fit sessions, a preset's or baseline's
threshold is the one with the least nDCF on them and the probabilistic estimator's channel model is
fitted to them (it then decides "close" when P(d <= D | data) >= prior P(d <= D), the Bayes rule for
nDCF's equal costs); without, every estimator uses its shipped defaults (the presets their deployed
rule over 15 minutes, the baselines the thresholds in :mod:`fitted`). A metric whose scored data hold
no positive or no negative at a distance is undefined (NaN, "n/a").

Across files (:func:`evaluate_files`): one table per scored file plus a pooled one in which every file
weighs the same (the mean of the files' figures; its bootstrap redraws each file's configurations
within that file). :func:`leave_one_dataset_out` scores each file by models and thresholds fitted on
all the others, and adds ``nested-default``: for each held-out file, the candidate with the least
pooled nDCF at 1.8 m in a leave-one-dataset-out over the OTHER files only, then fitted on them all
(so the choice never saw the file it is scored on). :func:`cross_validate` leaves one configuration
of one file out at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.estimation.constants import DEFAULT_ESTIMATOR, PROBABILISTIC
from proximity.estimation.estimators import estimator_names
from proximity.estimation.fitted import shipped_defaults
from proximity.estimation.nhs import NOTIFY_WEIGHTED_MINUTES, nhs_weighted_minutes
from proximity.estimation.presets import PRESETS, cwa_trl_factor
from proximity.estimation.probabilistic import ChannelModel, fit_channel_model, p_within_at
from proximity.estimation.recordings import (
    RSSI_NOT_AVAILABLE,
    Session,
    fallback_counts,
    parse_recordings,
)
from proximity.estimation.scoring import (
    TC4TL_DISTANCES,
    bootstrap_ndcf,
    fit_threshold,
    operating_point,
    roc_auc,
)

__all__ = [
    "BASELINES",
    "CANDIDATES",
    "NESTED",
    "POSITIVE_MARGIN_M",
    "RSSI_NOT_AVAILABLE",
    "Session",
    "attenuation_thresholds",
    "cross_validate",
    "evaluate",
    "evaluate_files",
    "evaluation_names",
    "fallback_counts",
    "labelled",
    "leave_one_dataset_out",
    "parse_recordings",
    "split_by_config",
]

POSITIVE_MARGIN_M = 0.05
# Session statistics of attenuation, each with a threshold fitted like the presets': the baselines a
# learned estimator must beat. mean-attenuation is also a live estimator (the default).
BASELINES: dict[str, Callable[[NDArray[np.float64]], float]] = {
    "mean-attenuation": lambda a: float(np.mean(a)),
    "median-attenuation": lambda a: float(np.median(a)),
    "max-attenuation": lambda a: float(np.max(a)),
}
# What nested leave-one-dataset-out chooses the default from (ties go to the earlier, simpler one).
CANDIDATES = ("mean-attenuation", "median-attenuation", "max-attenuation", PROBABILISTIC)
NESTED = "nested-default"
SELECTION_DISTANCE = 1.8


def evaluation_names() -> list[str]:
    """Every estimator ``evaluate`` scores: the registry's, then the other two baselines."""
    return estimator_names() + [b for b in BASELINES if b not in estimator_names()]


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

    def scores(self, sessions: Sequence[Session]) -> dict[float, NDArray[np.float64]]:
        """Per TC4TL distance, one score per session (higher = nearer)."""
        raise NotImplementedError

    def decide(self, scores: NDArray[np.float64], d: float) -> NDArray[np.bool_]:
        raise NotImplementedError

    def describe(self, d: float) -> dict[str, Any]:
        return {}


class _ThresholdScorer(_Scorer):
    """Scores that do not depend on the fit (cached per session); a threshold per distance."""

    def __init__(self, fit: Sequence[Session] | None) -> None:
        self.thresholds: dict[float, float] = {}
        fit_scores = self.scores(fit) if fit else {}
        for d in TC4TL_DISTANCES:
            if fit:
                self.thresholds[d] = fit_threshold(fit_scores[d], _positive(fit, d))
            else:
                self.thresholds[d] = self.shipped(d)

    def session_score(self, session: Session) -> float:
        raise NotImplementedError

    def _cached_score(self, session: Session) -> float:
        """Fit-independent, so computed once per session and estimator."""
        cache = session._cache
        if self.name not in cache:
            cache[self.name] = self.session_score(session)
        return cache[self.name]  # type: ignore[return-value]

    def shipped(self, d: float) -> float:
        raise NotImplementedError

    def scores(self, sessions: Sequence[Session]) -> dict[float, NDArray[np.float64]]:
        values = np.array([self._cached_score(s) for s in sessions])
        return dict.fromkeys(TC4TL_DISTANCES, values)

    def decide(self, scores: NDArray[np.float64], d: float) -> NDArray[np.bool_]:
        return np.asarray(scores >= self.thresholds[d])

    def describe(self, d: float) -> dict[str, Any]:
        return {"threshold": self.thresholds[d]}


class _PresetScorer(_ThresholdScorer):
    def __init__(self, name: str, fit: Sequence[Session] | None) -> None:
        self.name = name
        self.preset = PRESETS[name]
        super().__init__(fit)

    def session_score(self, session: Session) -> float:
        return self.preset.rate(session.scans())

    def shipped(self, d: float) -> float:  # as deployed: would it notify if this lasted 15 minutes?
        factor = cwa_trl_factor(None) if self.preset.trl_scaled else 1.0
        return self.preset.notify_minutes / (15.0 * factor)


class _NhsScorer(_ThresholdScorer):
    """The NHS model's weighted minutes per minute observed; notifies as deployed (2 of 15 minutes)."""

    name = "nhs"

    def session_score(self, session: Session) -> float:
        weighted, observed = nhs_weighted_minutes(session.times, session.attenuation())
        return weighted / observed if observed else 0.0

    def shipped(self, d: float) -> float:
        return NOTIFY_WEIGHTED_MINUTES / 15.0


class _BaselineScorer(_ThresholdScorer):
    """Minus a session statistic of attenuation; threshold fitted like a preset's (or shipped)."""

    def __init__(self, name: str, fit: Sequence[Session] | None) -> None:
        self.name = name
        self.statistic = BASELINES[name]
        super().__init__(fit)

    def session_score(self, session: Session) -> float:
        return -self.statistic(session.attenuation())

    def shipped(self, d: float) -> float:
        return -shipped_defaults().threshold(self.name.split("-")[0], d)

    def describe(self, d: float) -> dict[str, Any]:
        return {"threshold": self.thresholds[d], "threshold_db": -self.thresholds[d]}


class _ProbabilisticScorer(_Scorer):
    name = PROBABILISTIC

    def __init__(self, fit: Sequence[Session] | None) -> None:
        usable = [(s.times, s.attenuation(), s.distance_m) for s in fit or () if s.distance_m > 0]
        self.model = fit_channel_model(usable) if fit else ChannelModel()

    def scores(self, sessions: Sequence[Session]) -> dict[float, NDArray[np.float64]]:
        distances = [d + POSITIVE_MARGIN_M for d in TC4TL_DISTANCES]
        values = np.array([p_within_at(s.scans(), self.model, distances) for s in sessions]).reshape(
            len(sessions), len(distances)
        )
        return {d: values[:, i] for i, d in enumerate(TC4TL_DISTANCES)}

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
    known = evaluation_names()
    chosen = list(names) if names is not None else known
    for name in chosen:
        if name not in known:
            raise ValueError(f"unknown estimator {name!r}; choose from {', '.join(known)}")
    return chosen


def _scorer(name: str, fit: Sequence[Session] | None) -> _Scorer:
    if name == PROBABILISTIC:
        return _ProbabilisticScorer(fit)
    if name == "nhs":
        return _NhsScorer(fit)
    if name in BASELINES:
        return _BaselineScorer(name, fit)
    return _PresetScorer(name, fit)


@dataclass(frozen=True, slots=True, eq=False)
class _Scored:
    """One estimator's held-out scores and decisions on one file's sessions, per TC4TL distance."""

    scores: dict[float, NDArray[np.float64]]
    decisions: dict[float, NDArray[np.bool_]]
    describe: dict[float, dict[str, Any]]


def _score(name: str, fit: Sequence[Session] | None, sessions: Sequence[Session]) -> _Scored:
    return _apply(_scorer(name, fit), sessions)


def _apply(scorer: _Scorer, sessions: Sequence[Session]) -> _Scored:
    scores = scorer.scores(sessions)
    return _Scored(
        scores,
        {d: scorer.decide(scores[d], d) for d in TC4TL_DISTANCES},
        {d: scorer.describe(d) for d in TC4TL_DISTANCES},
    )


def _groups(sessions: Sequence[Session]) -> NDArray[np.str_] | None:
    """Redraw whole configurations when there are several: their sessions share a carriage (a body, a
    pocket) and err together, so redrawing sessions alone would claim more certainty than they hold."""
    keys = np.array([f"{s.dataset}\x00{s.config}" for s in sessions])
    return keys if np.unique(keys).size >= 2 else None


def _nan_if_one_class(labels: NDArray[np.bool_], value: float) -> float:
    return value if labels.any() and (~labels).any() else float("nan")


def _file_table(
    sessions: Sequence[Session], scored: Mapping[str, _Scored]
) -> tuple[list[dict[str, Any]], dict[float, NDArray[np.float64]]]:
    """Rows for one file, and per distance the bootstrap draws (rounds, estimators) of every
    estimator's nDCF on the same redraws (paired)."""
    names = list(scored)
    groups = _groups(sessions)
    draws: dict[float, NDArray[np.float64]] = {}
    rows: list[dict[str, Any]] = [{"name": n, "sessions": len(sessions)} for n in names]
    for d in TC4TL_DISTANCES:
        labels = _positive(sessions, d)
        both = bool(labels.any() and (~labels).any())
        draws[d] = (
            bootstrap_ndcf([scored[n].decisions[d] for n in names], labels, groups)
            if both
            else np.zeros((0, len(names)))
        )
        for e, (name, row) in enumerate(zip(names, rows, strict=True)):
            point = operating_point(scored[name].decisions[d], labels)
            row[f"auc_{d}"] = roc_auc(scored[name].scores[d], labels)
            row[f"ndcf_{d}"] = _nan_if_one_class(labels, point.ndcf)
            row[f"ndcf_{d}_ci"] = _percentiles(draws[d][:, e])
            row[f"tpr_{d}"] = point.tpr
            row[f"fpr_{d}"] = point.fpr
            row[f"positives_{d}"] = int(labels.sum())
            row[f"decision_{d}"] = scored[name].describe[d]
    for row in rows:
        row["auc"] = row["auc_1.8"]
        row["bootstrap_unit"] = "configuration" if groups is not None else "session"
    return rows, draws


def _percentiles(draws: NDArray[np.float64]) -> list[float]:
    if draws.size == 0:
        return [float("nan"), float("nan")]
    low, high = np.percentile(draws, [2.5, 97.5])
    return [float(low), float(high)]


def _versus(rows: list[dict[str, Any]], draws: Mapping[float, NDArray[np.float64]], reference: str) -> None:
    """Give ``reference``'s row ``versus``: its paired nDCF difference to every other row (negative
    favours ``reference``), with a bootstrap interval and how often it is lower."""
    names = [r["name"] for r in rows]
    if reference not in names or len(names) < 2:
        return
    a = names.index(reference)
    versus = []
    for b, name in enumerate(names):
        if b == a:
            continue
        for d in TC4TL_DISTANCES:
            diff = draws[d][:, a] - draws[d][:, b] if draws[d].size else np.zeros(0)
            low, high = _percentiles(diff)
            versus.append(
                {"name": name, "distance": d, "difference": rows[a][f"ndcf_{d}"] - rows[b][f"ndcf_{d}"],
                 "low": low, "high": high,
                 "share_lower": float(np.mean(diff < 0)) if diff.size else float("nan")}
            )  # fmt: skip
    rows[a]["versus"] = versus


def _pooled(
    tables: Mapping[str, tuple[list[dict[str, Any]], dict[float, NDArray[np.float64]]]],
) -> tuple[list[dict[str, Any]], dict[float, NDArray[np.float64]]]:
    """Every file weighs the same: each figure is the mean of the files' (those where it is defined);
    the redraws are each file's own, averaged round by round (paired across estimators)."""
    first = next(iter(tables.values()))[0]
    rows = [{"name": r["name"], "sessions": 0, "files": []} for r in first]
    draws: dict[float, NDArray[np.float64]] = {}
    for d in TC4TL_DISTANCES:
        usable = [t[1][d] for t in tables.values() if t[1][d].size]
        rounds = min((x.shape[0] for x in usable), default=0)
        draws[d] = np.mean([x[:rounds] for x in usable], axis=0) if usable else np.zeros((0, len(rows)))
        for e, row in enumerate(rows):
            for metric in ("auc", "ndcf", "tpr", "fpr"):
                values = [t[0][e][f"{metric}_{d}"] for t in tables.values()]
                finite = [v for v in values if np.isfinite(v)]
                row[f"{metric}_{d}"] = float(np.mean(finite)) if finite else float("nan")
            row[f"ndcf_{d}_ci"] = _percentiles(draws[d][:, e])
    for row in rows:
        row["auc"] = row["auc_1.8"]
        row["sessions"] = sum(t[0][0]["sessions"] for t in tables.values())
        row["files"] = list(tables)
        row["bootstrap_unit"] = "configuration within each file"
    return rows, draws


def _assemble(
    files: Mapping[str, Sequence[Session]],
    scored: Mapping[str, Mapping[str, _Scored]],
    reference: str,
    extra: Mapping[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Per-file rows (with ``file``), then pooled rows when there are several files."""
    tables = {}
    for file, sessions in files.items():
        rows, draws = _file_table(sessions, scored[file])
        _versus(rows, draws, reference)
        counts = fallback_counts(sessions)
        for row in rows:
            row["file"] = file
            row["calibration"] = counts
            row.update((extra or {}).get(row["name"], {}))
            row["default"] = row["name"] == reference
        tables[file] = (rows, draws)
    out = [row for rows, _ in tables.values() for row in rows]
    if len(tables) > 1:
        pooled, draws = _pooled(tables)
        _versus(pooled, draws, reference)
        for row in pooled:
            row["file"] = "pooled"
            row.update((extra or {}).get(row["name"], {}))
            row["default"] = row["name"] == reference
        out += pooled
    return out


def _by_file(sessions: Sequence[Session]) -> dict[str, list[Session]]:
    files: dict[str, list[Session]] = {}
    for s in sessions:
        files.setdefault(s.dataset, []).append(s)
    return files


def evaluate(
    sessions: Sequence[Session],
    fit: Sequence[Session] | None = None,
    names: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Per estimator (per scored file, then pooled when several): AUC (at each TC4TL distance; ``auc``
    = at 1.8 m), nDCF with its bootstrap interval and TPR/FPR from decisions; the default estimator's
    row (``default``: true) compares it with the others (``versus``)."""
    return evaluate_files(_by_file(sessions), fit, names, progress)


def evaluate_files(
    files: Mapping[str, Sequence[Session]],
    fit: Sequence[Session] | None = None,
    names: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """:func:`evaluate` with the scored sessions given file by file."""
    chosen = _check_names(names)
    scored: dict[str, dict[str, _Scored]] = {f: {} for f in files}
    for name in chosen:
        if progress:
            progress(name)
        scorer = _scorer(name, fit)
        for file, sessions in files.items():
            scored[file][name] = _apply(scorer, sessions)
    rows = _assemble(files, scored, DEFAULT_ESTIMATOR)
    for row in rows:
        row["fitted"] = bool(fit)
    return rows


def labelled(sessions: Sequence[Session], d: float) -> bool:
    """Whether the sessions hold both a positive and a negative at ``d`` (metrics are defined)."""
    labels = _positive(sessions, d)
    return bool(labels.any() and (~labels).any())


class _LodoCache:
    """Held-out results by (estimator, files fitted on, file scored): inner folds of two outer folds
    fit on the same files, so each fit is made and scored once."""

    def __init__(self, files: Mapping[str, Sequence[Session]]) -> None:
        self.files = files
        self.results: dict[tuple[str, frozenset[str], str], _Scored] = {}

    def get(self, name: str, fit_files: frozenset[str], scored: str) -> _Scored:
        key = (name, fit_files, scored)
        if key not in self.results:
            fit = [s for f in sorted(fit_files) for s in self.files[f]]
            self.results[key] = _score(name, fit, self.files[scored])
        return self.results[key]


def _select(
    cache: _LodoCache, pool: frozenset[str], scored_files: Sequence[str], candidates: Sequence[str]
) -> tuple[str, dict[str, float]]:
    """The candidate with the least equal-weight nDCF at 1.8 m over a leave-one-dataset-out within
    ``pool`` (each of ``scored_files`` in it scored by a fit on the rest of the pool)."""
    figures: dict[str, float] = {}
    for name in candidates:
        values = []
        for held in scored_files:
            result = cache.get(name, pool - {held}, held)
            labels = _positive(cache.files[held], SELECTION_DISTANCE)
            values.append(operating_point(result.decisions[SELECTION_DISTANCE], labels).ndcf)
        figures[name] = float(np.mean(values))
    best = min(candidates, key=lambda n: (figures[n], candidates.index(n)))
    return best, figures


def leave_one_dataset_out(
    files: Mapping[str, Sequence[Session]],
    fit_only: Mapping[str, Sequence[Session]] | None = None,
    names: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
    candidates: Sequence[str] = CANDIDATES,
) -> list[dict[str, Any]]:
    """Each file of ``files`` scored by models and thresholds fitted on all the other files (``files``
    and ``fit_only``); per-file tables plus the equal-weight pooled table, and the ``nested-default``
    row (the candidate chosen without the held-out file; ``chosen`` names it per file).

    Files with one class only at 1.8 m are never scored for the choice (they still fit)."""
    everything = {**(fit_only or {}), **files}
    if len(everything) < 2:
        raise ValueError("leave-one-dataset-out needs at least 2 files")
    chosen_names = _check_names(names)
    cache = _LodoCache(everything)
    pool = frozenset(everything)
    scored: dict[str, dict[str, _Scored]] = {f: {} for f in files}
    for name in chosen_names:
        if progress:
            progress(name)
        for file in files:
            scored[file][name] = cache.get(name, pool - {file}, file)
    two_sided = [f for f in everything if labelled(everything[f], SELECTION_DISTANCE)]
    choices: dict[str, dict[str, Any]] = {}
    if len(two_sided) >= 2:
        if progress:
            progress(f"{NESTED} (choosing among {', '.join(candidates)} without each held-out file)")
        for file in files:
            inner = [f for f in two_sided if f != file]
            best, figures = _select(cache, pool - {file}, inner, candidates)
            scored[file][NESTED] = cache.get(best, pool - {file}, file)
            choices[file] = {"chosen": best, "inner_ndcf_1.8": figures}
    chosen_by_file = {f: c["chosen"] for f, c in choices.items()}
    extra = {NESTED: {"chosen": chosen_by_file}} if choices else {}
    rows = _assemble(files, scored, DEFAULT_ESTIMATOR, extra)
    for row in rows:
        row["fitted"] = True
        if row["name"] == NESTED and row["file"] in choices:
            row["selection"] = choices[row["file"]]
    return rows


def attenuation_thresholds(sessions: Sequence[Session]) -> dict[str, dict[float, float]]:
    """Per baseline and TC4TL distance, the session attenuation threshold (dB; "within" when the
    statistic is <= it) with the least nDCF on ``sessions``: what ``make fit`` ships."""
    out = {}
    for name in BASELINES:
        scorer = _BaselineScorer(name, sessions)
        out[name] = {d: -scorer.thresholds[d] for d in TC4TL_DISTANCES}
    return out


def cross_validate(
    sessions: Sequence[Session],
    names: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Leave one configuration out (within one file): for each configuration, fit on all the others and
    decide on it; every held-out decision (and score, for AUC) pooled into one figure per estimator."""
    configs = sorted({s.key for s in sessions})
    if len(configs) < 2:
        raise ValueError("cross-validation needs at least 2 configurations")
    chosen = _check_names(names)
    ordered = [s for c in configs for s in sessions if s.key == c]
    scored: dict[str, _Scored] = {}
    for name in chosen:
        if progress:
            progress(name)
        parts = [_score(name, [s for s in sessions if s.key != c], [s for s in ordered if s.key == c])
                 for c in configs]  # fmt: skip
        scored[name] = _Scored(
            {d: np.concatenate([p.scores[d] for p in parts]) for d in TC4TL_DISTANCES},
            {d: np.concatenate([p.decisions[d] for p in parts]) for d in TC4TL_DISTANCES},
            {d: {} for d in TC4TL_DISTANCES},
        )
    rows, draws = _file_table(ordered, scored)
    _versus(rows, draws, DEFAULT_ESTIMATOR)
    for row in rows:
        row.update(fitted=True, folds=len(configs), default=row["name"] == DEFAULT_ESTIMATOR)
    return rows
