"""The probabilistic estimator: P(close contact) = P(distance <= 2 m AND time within it >= 15 min).

Channel model (in attenuation, dB), for scan i of one encounter (one counterpart, one UTC day):

    mean attenuation_i = A0 + 10 n log10(d_w) + delta + e_i,   scan i in exposure window w
    delta ~ N(0, offset_sigma^2 + calibration_sigma^2)      one per encounter (carriage, body, room, device)
    e_i   ~ N(0, fading_sigma^2 / packets_i + floor_sigma^2) per scan (fast fading; not all averages away)
    d_w   ~ log-uniform on [min_distance, max_distance]     per exposure window (<= 30 min; people move
                                                            between windows, and keep a distance within one)

and, for the fast fading within each scan (consecutive packets hop between advertising channels):

    consecutive-packet difference ~ Laplace(0, s_w)         within a scan, in window w
    ln s_w = ln fade_at_1m + fade_slope log10(d_w) + eta
    eta ~ N(0, fade_sigma^2)                                one per encounter

Nearer phones have a stronger line of sight (a higher Rician K-factor), so their packets fade less.
The per-encounter offset moves every packet alike and cannot fake that: on real recordings (MIT
Matrix Data, found by exploring all of it) the mean |difference| grows with distance in every carriage,
while the mean RSSI is shifted by up to ~30 dB by carriage. ``fade_slope`` is 0 (the term inert) until
``fit_channel_model`` learns it from recordings: no published figure exists for it.

Why not the NHS smoother: it treats every reading as independent noise, so a long encounter looks
certain even when the whole encounter is offset by a pocket or a body (the dominant error, ~8 dB).
Here the shared offset and fading deviation are integrated out on a grid: their posterior is exact,
so the probability stays honest however many packets arrive. Given (delta, eta), windows are
independent; the time within ``distance`` is a Poisson-binomial sum of window durations, whose tail
P(T >= minutes) is computed exactly by dynamic programming in 10-second units, then averaged.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from proximity.errors import EstimationParameterError
from proximity.estimation.windows import WINDOW_SECONDS, ScanInstances, scan_instances

__all__ = [
    "CALIBRATION_SIGMA_DB",
    "ChannelModel",
    "ContactEstimate",
    "estimate_contact",
    "fading_loglik",
    "fit_channel_model",
    "p_within_at",
]

CALIBRATION_SIGMA_DB = (5.0, 4.0, 3.0, 2.0)  # by GAEN calibration confidence 0 (fleet) .. 3 (exact)
_DISTANCE_POINTS = 96
_OFFSET_POINTS = 41
_DEVIATION_POINTS = 15
_MIN_FADE_PAIRS = 20  # a session's fading depth is fitted only from this many consecutive pairs
_MIN_FADE_SIGMA = 0.02
_UNIT_SECONDS = 10.0
_MODEL_FIELDS = ("attenuation_at_1m", "path_loss_exponent", "offset_sigma", "fading_sigma", "floor_sigma",
                 "min_distance", "max_distance", "fade_at_1m", "fade_slope", "fade_sigma")  # fmt: skip
_POSITIVE_FIELDS = frozenset(_MODEL_FIELDS) - {"attenuation_at_1m", "fade_slope"}


@dataclass(frozen=True, slots=True)
class ChannelModel:
    """Parameters of the channel model; defaults are the published facts (spec: rssi-and-simulation).

    ``attenuation_at_1m`` 36 dB on GAEN's scale = the fleet calibrated TX -24 dBm - (RSSI at 1 m
    -63 dBm + the fleet RSSI correction +3 dB);
    path-loss exponent 1.2 phone to phone indoors; per-encounter offset 8 dB; per-packet fading 6.5 dB.
    Fading depth: ``fade_at_1m`` (mean |consecutive difference| at 1 m, dB), ``fade_slope`` (change of
    its natural log per decade of distance; 0 = no evidence from fading, the default) and
    ``fade_sigma`` (per-encounter spread of that log); learned from recordings by fit_channel_model
    (the defaults of the other two are placeholders, unused while the slope is 0). Fitted on packets
    tens of ms apart (the MIT recordings), the line need not hold for another scan cadence.
    """

    attenuation_at_1m: float = 36.0
    path_loss_exponent: float = 1.2
    offset_sigma: float = 8.0
    fading_sigma: float = 6.5
    floor_sigma: float = 2.0
    min_distance: float = 0.3
    max_distance: float = 10.0
    fade_at_1m: float = 3.0
    fade_slope: float = 0.0
    fade_sigma: float = 0.15

    def __post_init__(self) -> None:
        for name in _MODEL_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            if not math.isfinite(value):
                raise EstimationParameterError(name, value, "a finite number")
            if name in _POSITIVE_FIELDS and not float(value) > 0:
                raise EstimationParameterError(name, value, "a positive number")
        if not self.max_distance > self.min_distance:
            raise EstimationParameterError(
                "max_distance", self.max_distance, f"greater than min_distance {self.min_distance!r}"
            )

    def prior_below(self, distance: float) -> float:
        """Prior P(d <= distance) under the log-uniform prior."""
        lo, hi = math.log(self.min_distance), math.log(self.max_distance)
        return min(max((math.log(distance) - lo) / (hi - lo), 0.0), 1.0)


@dataclass(frozen=True, slots=True)
class ContactEstimate:
    """What the probabilistic estimator concludes about one encounter (one counterpart, one day)."""

    probability: float  # P(within distance for >= minutes)
    p_within: float  # time-weighted P(d <= distance): how near, ignoring duration
    distance_m: float  # posterior median distance (time-weighted over scans)
    distance_low_m: float  # 10% quantile
    distance_high_m: float  # 90% quantile
    minutes_within: float  # expected minutes within distance
    minutes_within_sd: float
    minutes_observed: float  # sum of seconds since last scan / 60
    offset_db: float  # posterior mean of the per-encounter offset
    scans: int
    windows: int


def estimate_contact(
    scans: ScanInstances,
    model: ChannelModel | None = None,
    *,
    distance: float = 2.0,
    minutes: float = 15.0,
    calibration_confidence: int = 0,
) -> ContactEstimate:
    """The posterior for one encounter's scan instances (all on one day, one counterpart).

    ``minutes`` = 0 is a rule any contact meets: probability 1 (0 without scans: no contact).
    """
    if not (math.isfinite(distance) and distance > 0):
        raise EstimationParameterError("distance", distance, "a positive number of metres")
    if not (math.isfinite(minutes) and minutes >= 0):
        raise EstimationParameterError("minutes", minutes, "a finite number of minutes >= 0")
    model = model or ChannelModel()
    if len(scans) == 0:
        return ContactEstimate(0.0, 0.0, math.nan, math.nan, math.nan, 0.0, 0.0, 0.0, 0.0, 0, 0)
    post = _posterior(scans, model, calibration_confidence)
    log_d, offsets, window_of, windows = post.log_d, post.offsets, post.window_of, post.windows
    lik_mean, lik_fade, total, w, weights = post.lik_mean, post.lik_fade, post.total, post.w, post.weights
    near = log_d <= math.log10(distance)
    states = w.size
    total_near = np.einsum("wkg,whg->wkh", lik_mean[:, :, near], lik_fade[:, :, near])
    p_near = (total_near / total).reshape(windows, states)  # P(d_w <= distance | offset, deviation)

    seconds = np.bincount(window_of, weights=scans.seconds_since_last_scan, minlength=windows).astype(
        np.float64
    )
    share = seconds / seconds.sum()
    p_window = p_near @ weights  # (W,)
    p_within = float(share @ p_window)

    expected_k = seconds @ p_near  # (states,) expected seconds within, given offset and deviation
    var_k = (seconds**2) @ (p_near * (1 - p_near))
    mean_seconds = float(weights @ expected_k)
    sd_seconds = math.sqrt(max(float(weights @ var_k + weights @ (expected_k - mean_seconds) ** 2), 0.0))

    probability = 1.0 if minutes == 0 else float(weights @ _tail_at_least(p_near, seconds, minutes * 60.0))

    # Time-weighted posterior over distance, for a point estimate with an interval.
    scaled = np.einsum("wkh,whg->wkg", w[None, :, :] / total, lik_fade)
    post_d = (scaled * lik_mean).sum(axis=1)  # (W, G)
    pooled = share @ post_d
    cdf = np.cumsum(pooled) / pooled.sum()

    def quantile(q: float) -> float:
        return float(10 ** np.interp(q, cdf, log_d))

    return ContactEstimate(
        probability=probability,
        p_within=p_within,
        distance_m=quantile(0.5),
        distance_low_m=quantile(0.1),
        distance_high_m=quantile(0.9),
        minutes_within=mean_seconds / 60.0,
        minutes_within_sd=sd_seconds / 60.0,
        minutes_observed=float(seconds.sum()) / 60.0,
        offset_db=float(w.sum(axis=1) @ offsets),
        scans=len(scans),
        windows=windows,
    )


@dataclass(frozen=True, slots=True, eq=False)
class _Posterior:
    log_d: NDArray[np.float64]
    offsets: NDArray[np.float64]
    window_of: NDArray[np.int64]
    windows: int
    lik_mean: NDArray[np.float64]  # (W, K, G)
    lik_fade: NDArray[np.float64]  # (W, H, G)
    total: NDArray[np.float64]  # (W, K, H): each window's likelihood, its distance integrated out
    w: NDArray[np.float64]  # (K, H) posterior of the shared (offset, deviation)
    weights: NDArray[np.float64]  # the same, flat


def _posterior(scans: ScanInstances, model: ChannelModel, calibration_confidence: int) -> _Posterior:
    """The grid posterior of one encounter's shared offset and fading deviation (see the module)."""
    confidence = min(max(int(calibration_confidence), 0), 3)
    sigma_offset = math.hypot(model.offset_sigma, CALIBRATION_SIGMA_DB[confidence])
    log_d = np.linspace(math.log10(model.min_distance), math.log10(model.max_distance), _DISTANCE_POINTS)
    offsets = np.linspace(-4.0 * sigma_offset, 4.0 * sigma_offset, _OFFSET_POINTS)
    window_of = _window_index(scans)
    windows = int(window_of.max()) + 1

    # Mean attenuation: (W, K, G) log-likelihood of each window's distance g given offset k.
    a = scans.mean_attenuation[:, None, None]  # (I, 1, 1)
    var = (model.fading_sigma**2 / np.maximum(scans.packets, 1) + model.floor_sigma**2)[:, None, None]
    mu = model.attenuation_at_1m + 10.0 * model.path_loss_exponent * log_d  # (G,)
    resid = a - mu[None, None, :] - offsets[None, :, None]  # (I, K, G)
    loglik_scan = -0.5 * resid**2 / var - 0.5 * np.log(2 * np.pi * var)
    loglik = np.zeros((windows, offsets.size, log_d.size))
    np.add.at(loglik, window_of, loglik_scan)
    peak_mean = loglik.max(axis=2)  # (W, K)
    lik_mean = np.exp(loglik - peak_mean[:, :, None])

    # Fading depth: (W, H, G) log-likelihood given the encounter's fading deviation h (1 state: inert).
    deviations, loglik_fade = _fading_loglik(scans, model, window_of, windows, log_d)
    peak_fade = loglik_fade.max(axis=2)  # (W, H)
    lik_fade = np.exp(loglik_fade - peak_fade[:, :, None])

    # Per window, integrate its distance out (log-uniform prior = uniform on the grid); then the
    # shared (offset, deviation) pair has an exact posterior on its grid.
    total = np.maximum(np.einsum("wkg,whg->wkh", lik_mean, lik_fade), 1e-300)  # (W, K, H)
    log_z = np.log(total) + peak_mean[:, :, None] + peak_fade[:, None, :]
    log_prior = -0.5 * (
        (offsets / sigma_offset)[:, None] ** 2 + (deviations / model.fade_sigma)[None, :] ** 2
    )
    log_w = log_prior + log_z.sum(axis=0)  # (K, H)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()  # (K, H)
    return _Posterior(log_d, offsets, window_of, windows, lik_mean, lik_fade, total, w, w.reshape(w.size))


def p_within_at(
    scans: ScanInstances,
    model: ChannelModel,
    distances: Sequence[float],
    *,
    calibration_confidence: int = 0,
) -> NDArray[np.float64]:
    """Time-weighted P(d <= each of ``distances``) for one encounter, the posterior computed once
    (what :func:`estimate_contact` reports as ``p_within``, for several distances)."""
    if len(scans) == 0:
        return np.zeros(len(distances))
    post = _posterior(scans, model, calibration_confidence)
    seconds = np.bincount(post.window_of, weights=scans.seconds_since_last_scan, minlength=post.windows)
    share = seconds / seconds.sum()
    out = []
    for distance in distances:
        near = post.log_d <= math.log10(distance)
        total_near = np.einsum("wkg,whg->wkh", post.lik_mean[:, :, near], post.lik_fade[:, :, near])
        p_near = (total_near / post.total).reshape(post.windows, post.w.size)
        out.append(float(share @ (p_near @ post.weights)))
    return np.asarray(out)


def fading_loglik(abs_sum: ArrayLike, pairs: ArrayLike, scale_db: ArrayLike) -> NDArray[np.float64]:
    """Log-likelihood of ``pairs`` consecutive-packet differences whose |values| sum to ``abs_sum``
    when each is Laplace(0, ``scale_db``) (mean |difference| = ``scale_db``); broadcasts.

    Laplace, not normal: deep fades make the differences heavy-tailed, and the sum of |differences|
    (a robust spread) is then the sufficient statistic, so a scan needs only (sum, pairs)."""
    scale = np.asarray(scale_db, np.float64)
    return np.asarray(-np.asarray(pairs, np.float64) * np.log(2.0 * scale) - np.asarray(abs_sum) / scale)


def _fading_loglik(
    scans: ScanInstances,
    model: ChannelModel,
    window_of: NDArray[np.int64],
    windows: int,
    log_d: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(deviation grid, (W, H, G) log-likelihood) of the fading-depth term.

    ln scale = ln fade_at_1m + fade_slope log10(d_w) + eta, eta ~ N(0, fade_sigma^2) per encounter;
    each consecutive-packet difference within a scan ~ Laplace(0, scale). Per window the sums of
    |differences| and of pairs are sufficient. Inert (one state, zero) without pairs or slope.
    """
    abs_sum, pairs = scans.fading()
    if model.fade_slope == 0.0 or int(pairs.sum()) == 0:
        return np.zeros(1), np.zeros((windows, 1, log_d.size))
    deviations = np.linspace(-4.0 * model.fade_sigma, 4.0 * model.fade_sigma, _DEVIATION_POINTS)
    log_scale = math.log(model.fade_at_1m) + model.fade_slope * log_d[None, :] + deviations[:, None]  # (H, G)
    k = np.bincount(window_of, weights=pairs.astype(np.float64), minlength=windows)
    s = np.bincount(window_of, weights=abs_sum, minlength=windows)
    return deviations, fading_loglik(s[:, None, None], k[:, None, None], np.exp(log_scale)[None, :, :])


def _window_index(scans: ScanInstances) -> NDArray[np.int64]:
    """Which exposure window (<= 30 min from its first scan) each scan falls in."""
    index = np.zeros(len(scans), np.int64)
    first = 0
    for i in range(1, len(scans)):
        if scans.start[i] - scans.start[first] >= WINDOW_SECONDS:
            first = i
            index[i] = index[i - 1] + 1
        else:
            index[i] = index[i - 1]
    return index


def _tail_at_least(
    p_near: NDArray[np.float64], seconds: NDArray[np.float64], need: float
) -> NDArray[np.float64]:
    """P(sum of seconds_i * Bernoulli(p_ik) >= need) for each state k, by a saturating DP.

    Durations count in units of need / ceil(need / 10 s) (<= 10 s; ``need`` is a whole number of
    them) and window i gets the difference of the ROUNDED CUMULATIVE duration at i and i-1: the total
    is exact and a run of consecutive windows errs by at most one unit however many windows it has
    (rounding each window alone let 300 windows of 4 s count as 0 s). ``need`` <= 0: always met.
    """
    if need <= 0:
        return np.ones(p_near.shape[1])
    secs = np.maximum(np.asarray(seconds, np.float64), 0.0)
    if float(secs.sum()) < need:
        return np.zeros(p_near.shape[1])
    states = max(math.ceil(need / _UNIT_SECONDS), 1)
    unit = need / states
    units = np.diff(np.floor(np.cumsum(secs) / unit + 0.5), prepend=0.0).astype(np.int64)
    dist = np.zeros((p_near.shape[1], states + 1))
    dist[:, 0] = 1.0
    for i in range(p_near.shape[0]):
        step = int(min(units[i], states))
        if step <= 0:
            continue
        p = p_near[i][:, None]
        moved = np.zeros_like(dist)
        moved[:, step:] = dist[:, :-step]
        moved[:, states] += dist[:, states + 1 - step : states].sum(axis=1) if step > 1 else 0.0
        moved[:, states] += dist[:, states]
        dist = (1 - p) * dist + p * moved
    return dist[:, states]


def fit_channel_model(
    sessions: Sequence[tuple[NDArray[np.float64], NDArray[np.float64], float]],
    base: ChannelModel | None = None,
) -> ChannelModel:
    """Fit the channel model to recordings at known distances: (times, attenuation, distance_m) each.

    A0 and n by least squares of each session's mean attenuation on 10 log10(d) (n kept in
    [0.5, 4]); fading from the spread of packets around their scan's mean; the per-encounter offset
    from what the distance does not explain; the distance prior spans the distances seen, widened 25%;
    the fading-depth line from each session's mean |consecutive difference| (:func:`_fit_fading`).
    Only packets with a finite time AND a finite attenuation count; sessions whose distance is not a
    positive finite number, or with fewer than 2 usable packets, are skipped.
    """
    base = base or ChannelModel()
    means, logs, within, scan_spread = [], [], [], []
    fade_logs, fade_scale, fade_pairs = [], [], []
    for times, attenuation, dist in sessions:
        times, attenuation = np.asarray(times, np.float64), np.asarray(attenuation, np.float64)
        keep = np.isfinite(times) & np.isfinite(attenuation)
        if keep.sum() < 2 or not (math.isfinite(dist) and dist > 0):
            continue
        scans = scan_instances(times[keep], attenuation[keep], first_scan_seconds=None)
        means.append(float(np.mean(attenuation[keep])))
        logs.append(10.0 * math.log10(dist))
        order = np.argsort(times[keep], kind="stable")
        a = attenuation[keep][order]
        scan_of = np.repeat(np.arange(len(scans)), scans.packets)
        within.append(float(np.mean((a - scans.mean_attenuation[scan_of]) ** 2)))
        if len(scans) > 1:
            scan_spread.append(float(np.var(scans.mean_attenuation)))
        abs_sum, pairs = scans.fading()
        if int(pairs.sum()) >= _MIN_FADE_PAIRS and float(abs_sum.sum()) > 0:
            fade_logs.append(math.log10(dist))
            fade_scale.append(math.log(float(abs_sum.sum()) / int(pairs.sum())))  # Laplace MLE
            fade_pairs.append(int(pairs.sum()))
    if len(means) < 3:
        raise ValueError(f"fitting the channel model needs at least 3 usable sessions, got {len(means)}")
    x, y = np.asarray(logs), np.asarray(means)
    slope, intercept = np.polyfit(x, y, 1) if np.ptp(x) > 0 else (base.path_loss_exponent, float(y.mean()))
    n = float(np.clip(slope, 0.5, 4.0))
    intercept = float(np.mean(y - n * x))
    fading = math.sqrt(float(np.mean(within)))
    floor = math.sqrt(max(float(np.mean(scan_spread)) if scan_spread else base.floor_sigma**2, 1.0))
    offset = math.sqrt(max(float(np.mean((y - intercept - n * x) ** 2)), 1.0))
    distances = 10 ** (x / 10.0)
    fade = _fit_fading(np.asarray(fade_logs), np.asarray(fade_scale), np.asarray(fade_pairs), base)
    return replace(
        base,
        **fade,
        attenuation_at_1m=intercept,
        path_loss_exponent=n,
        offset_sigma=offset,
        fading_sigma=fading,
        floor_sigma=floor,
        min_distance=float(distances.min()) / 1.25,
        max_distance=float(distances.max()) * 1.25,
    )


def _fit_fading(
    log_d: NDArray[np.float64],
    log_scale: NDArray[np.float64],
    pairs: NDArray[np.int64],
    base: ChannelModel,
) -> dict[str, float]:
    """ln(mean |consecutive difference|) per session on log10(distance) by least squares; the
    encounter spread is what the line leaves, less the estimate's own noise (var ln of a Laplace
    scale MLE from k pairs ~ 1/k). Too few sessions or one distance: the base model's (inert) term."""
    if log_d.size < 3 or np.ptp(log_d) == 0:
        return {"fade_at_1m": base.fade_at_1m, "fade_slope": base.fade_slope, "fade_sigma": base.fade_sigma}
    slope, intercept = np.polyfit(log_d, log_scale, 1)
    resid = log_scale - intercept - slope * log_d
    spread = float(np.mean(resid**2)) - float(np.mean(1.0 / pairs))
    return {
        "fade_at_1m": math.exp(float(intercept)),
        "fade_slope": float(slope),
        "fade_sigma": math.sqrt(max(spread, _MIN_FADE_SIGMA**2)),
    }
