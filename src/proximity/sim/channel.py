"""The radio channel between two phones, as bad as reality, with no distance cut-off (docs/simulation.md).

    rssi = rssi_at_1m - path_loss(d) - body(carriage_tx) - body(carriage_rx) - bodies_between * body_loss
           + device_tx + device_rx + encounter_offset(d) + fading(d) * z

The near field (to ``breakpoint`` m) is the channel's OWN fit on the recordings, shipped in
``sim/data/channel.json`` (scripts/fit_channel.py, ``make fit-channel``; it reads nothing of the
estimators' fit): path-loss exponent, level at 1 m, the spread between encounters and the packets'
fading depth. Beyond the breakpoint: the IEEE 802.11 TGn indoor channel models B/C (Erceg et al.,
IEEE 802.11-03/940r4, 2004): slope 3.5, shadow fading 3 dB before the breakpoint and 5 dB after it
(so ``far_shadow_sigma`` = sqrt(5^2 - 3^2) = 4 dB is added to the encounter spread), and NLOS
(Rayleigh) fading after it, whose spread in dB is 5.57 dB (``far_fading_sigma``): fading depth grows
with distance from the fitted near-field depth to Rayleigh's over one octave past the breakpoint.

A packet is heard when its RSSI clears the receiver's sensitivity, with loss rising steeply near it (a
normal CDF of ``sensitivity_width`` dB), on top of a flat ``packet_loss``. No distance is chosen: the
neighbour search uses :func:`hearing_radius`, where P(heard) under this model (averaged over the run's
device and carriage pairs) falls below ``p_heard_floor`` (1e-4).

``encounter_offset`` is drawn per encounter: hashed from (seed, pair, encounter number), where an
encounter starts when the later of the two arrives and lasts ``encounter_seconds`` (posture and
orientation change after that), so no boundary is clock-aligned and no pair state is stored.
Carriage changes during the day (:func:`carriage_schedule`); ``fading`` is fresh per packet. Whether a
packet is heard is drawn first with the fading integrated out (:func:`heard_chance`), and only a heard
packet's fading is then drawn given that it was heard (:func:`heard_fading`): the same distribution, but
the many pairs a scanner never hears cost one comparison each, not a fading draw.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.estimation.calibration import FLEET_RSSI_CORRECTION_DB, FLEET_TX_POWER_DBM
from proximity.sim.streams import hash_normal, normal_quantile

__all__ = [
    "CARRIAGES",
    "ChannelParams",
    "carriage_schedule",
    "fitted_channel",
    "heard_chance",
    "heard_fading",
    "hearing_probability",
    "hearing_radius",
    "link_level",
    "mean_hearing_probability",
    "pair_hearing_radii",
]

CHANNEL_FILE = "data/channel.json"


@cache
def fitted_channel() -> dict[str, Any]:
    """The channel's own fit on the recordings (package data written by scripts/fit_channel.py)."""
    text = resources.files("proximity.sim").joinpath(CHANNEL_FILE).read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


# Carriage states and the body loss each end adds (dB); a pair's loss is the sum (0..28 dB). The spec's
# measured hand/hand vs shirt-pocket/back-pocket gap at 6 ft is 29 dB (MIT PACT); the weights are assumed.
CARRIAGES = ("hand", "shirt_pocket", "front_pocket", "back_pocket", "bag")
CARRIAGE_LOSS_DB = (0.0, 4.0, 6.0, 14.0, 8.0)
CARRIAGE_WEIGHTS = (0.3, 0.15, 0.25, 0.15, 0.15)
DEVICE_SIGMA = 1.5


def _carriage_moments(loss: tuple[float, ...], weights: tuple[float, ...]) -> tuple[float, float]:
    """(mean, variance) of one end's carriage loss under ``weights``."""
    w = np.asarray(weights, np.float64) / sum(weights)
    x = np.asarray(loss, np.float64)
    mean = float(w @ x)
    return mean, float(w @ (x - mean) ** 2)


def _from_fit() -> tuple[float, float, float, float, float]:
    """(rssi_at_1m, exponent, encounter_sigma, fading_sigma, fading_slope) from the channel's fit.

    The recordings' level is their mix of carriages, on the attenuation scale of the fleet phone: the
    simulator subtracts its own carriage losses, so it adds their mean back. The recordings' spread of
    encounter means is what carriage pairs, device residuals and the per-encounter offset share: the
    offset takes what the other two leave (never less than the spread within one configuration)."""
    fit = fitted_channel()
    mean, var = _carriage_moments(CARRIAGE_LOSS_DB, CARRIAGE_WEIGHTS)
    rssi_at_1m = FLEET_TX_POWER_DBM - FLEET_RSSI_CORRECTION_DB - fit["attenuation_at_1m"] + 2 * mean
    left = fit["between_encounter_sigma"] ** 2 - 2 * var - 2 * DEVICE_SIGMA**2
    encounter = max(math.sqrt(max(left, 0.0)), fit["within_configuration_sigma"])
    return (round(rssi_at_1m, 2), fit["path_loss_exponent"], round(encounter, 2), fit["fading_at_1m"],
            fit["fading_slope"])  # fmt: skip


NEAR_RSSI_AT_1M, NEAR_EXPONENT, ENCOUNTER_SIGMA, FADING_SIGMA, FADING_SLOPE = _from_fit()
# Far field: IEEE 802.11 TGn channel models B/C (Erceg et al. 2004): a 5 m breakpoint, slope 3.5 after
# it; shadow fading 3 -> 5 dB and Rician -> Rayleigh fading across it. The recordings end at 4.6 m.
FAR_EXPONENT = 3.5
BREAKPOINT_M = 5.0
FAR_SHADOW_SIGMA = 4.0  # sqrt(5^2 - 3^2): TGn's extra shadow-fading spread past the breakpoint
RAYLEIGH_DB_SIGMA = 5.57  # standard deviation of 10 log10 of an exponential (Rayleigh power) variable
# Other people's bodies on the line of sight (sim/bodies.py): loss per body and the corridor's width.
# BODY_LOSS_DB is a PLACEHOLDER, not a published figure: no readable source gives a measured loss per
# person between two phones at 2.4 GHz (docs/simulation.md, "The per-body figure", with 0-20 dB runs).
BODY_LOSS_DB = 5.0
BODY_CORRIDOR_M = 0.5


@dataclass(frozen=True, slots=True)
class ChannelParams:
    """Channel parameters (dB, m, s). ``device_sigma`` is each phone's residual offset (transmitter and
    receiver) on top of what its model's calibration row implies (sim/devicemodels.py). The near-field
    defaults come from ``sim/data/channel.json`` (the channel's own fit; see the module docstring)."""

    rssi_at_1m: float = NEAR_RSSI_AT_1M
    path_loss_exponent: float = NEAR_EXPONENT
    far_exponent: float = FAR_EXPONENT
    breakpoint: float = BREAKPOINT_M
    encounter_sigma: float = ENCOUNTER_SIGMA
    far_shadow_sigma: float = FAR_SHADOW_SIGMA
    encounter_seconds: float = 1800.0
    fading_sigma: float = FADING_SIGMA  # packets' spread at 1 m (dB)
    fading_slope: float = FADING_SLOPE  # d ln(fading depth) / d ln(distance) in the near field
    far_fading_sigma: float = RAYLEIGH_DB_SIGMA
    device_sigma: float = DEVICE_SIGMA
    carriage_loss: tuple[float, ...] = CARRIAGE_LOSS_DB
    carriage_weights: tuple[float, ...] = CARRIAGE_WEIGHTS
    carriage_stay: float = 0.7  # P(a phone stays where it was carried) from one hour to the next (assumed)
    body_loss: float = BODY_LOSS_DB  # dB per other person on the line of sight (near field; sim/bodies.py)
    body_corridor: float = BODY_CORRIDOR_M  # m: width of the line of sight a body blocks
    packet_loss: float = 0.1
    sensitivity_dbm: float = -100.0  # a BLE phone receiver class default (the core spec asks -70)
    sensitivity_width: float = 2.0  # dB: the waterfall, 16 % lost 2 dB above the floor, 84 % 2 dB below
    p_heard_floor: float = 1e-4  # the neighbour radius: where P(heard) falls below this
    min_distance: float = 0.2

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float | int) and not math.isfinite(value):
                raise ValueError(f"channel {f.name} must be finite, got {value!r}")
        for name in ("path_loss_exponent", "far_exponent", "breakpoint", "encounter_seconds", "min_distance",
                     "sensitivity_width", "body_corridor"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"channel {name} must be positive, got {getattr(self, name)!r}")
        for name in ("encounter_sigma", "far_shadow_sigma", "fading_sigma", "far_fading_sigma",
                     "device_sigma", "body_loss"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"channel {name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.packet_loss < 1.0:
            raise ValueError(f"packet_loss must be in [0, 1), got {self.packet_loss!r}")
        if not 0.0 <= self.carriage_stay <= 1.0:
            raise ValueError(f"carriage_stay must be in [0, 1], got {self.carriage_stay!r}")
        if not 0.0 < self.p_heard_floor < 0.5:
            raise ValueError(f"p_heard_floor must be in (0, 0.5), got {self.p_heard_floor!r}")
        if len(self.carriage_loss) != len(CARRIAGES) or len(self.carriage_weights) != len(CARRIAGES):
            raise ValueError(f"carriage_loss and carriage_weights need one entry per carriage {CARRIAGES}")
        if any(w < 0 for w in self.carriage_weights) or sum(self.carriage_weights) <= 0:
            raise ValueError("carriage_weights must be non-negative and not all zero")

    def draw_carriage(self, rng: np.random.Generator, n: int) -> NDArray[np.int8]:
        p = np.asarray(self.carriage_weights, np.float64)
        return rng.choice(len(CARRIAGES), size=n, p=p / p.sum()).astype(np.int8)

    def path_loss(self, distance: NDArray[np.float64]) -> NDArray[np.float64]:
        """Two-slope path loss (dB relative to 1 m): fitted near field, TGn far field past the breakpoint."""
        d = np.maximum(distance, self.min_distance)
        near = 10.0 * self.path_loss_exponent * np.log10(np.minimum(d, self.breakpoint))
        far = 10.0 * self.far_exponent * np.log10(np.maximum(d, self.breakpoint) / self.breakpoint)
        out: NDArray[np.float64] = near + far
        return out

    def _past_breakpoint(self, distance: NDArray[np.float64]) -> NDArray[np.float64]:
        """0 up to the breakpoint, 1 from twice it on, linear in log distance between (LOS to NLOS)."""
        d = np.maximum(np.asarray(distance, np.float64), self.min_distance)
        out: NDArray[np.float64] = np.clip(np.log2(d / self.breakpoint), 0.0, 1.0)
        return out

    def fading_depth(
        self, distance: NDArray[np.float64], past: NDArray[np.float64] | None = None
    ) -> NDArray[np.float64]:
        """Per-packet fading spread (dB) at ``distance``: the fitted near-field line up to the breakpoint,
        growing to Rayleigh's spread past it (never below the near-field value there). ``past``: the
        distance's :meth:`_past_breakpoint`, when the caller has it."""
        d = np.maximum(np.asarray(distance, np.float64), self.min_distance)
        near = self.fading_sigma * np.power(np.minimum(d, self.breakpoint), self.fading_slope)
        far = np.maximum(near, self.far_fading_sigma)
        w = self._past_breakpoint(d) if past is None else past
        out: NDArray[np.float64] = (1.0 - w) * near + w * far
        return out

    def encounter_spread(
        self, distance: NDArray[np.float64], past: NDArray[np.float64] | None = None
    ) -> NDArray[np.float64]:
        """Per-encounter offset spread (dB): the fitted near-field figure, plus TGn's extra shadow fading
        past the breakpoint (in quadrature)."""
        w = self._past_breakpoint(distance) if past is None else past
        out: NDArray[np.float64] = np.sqrt(self.encounter_sigma**2 + w * self.far_shadow_sigma**2)
        return out


def carriage_schedule(
    params: ChannelParams, rng: np.random.Generator, n: int, hours: int
) -> NDArray[np.int8]:
    """Where each of ``n`` phones is carried in each of ``hours`` hours, shape (n, hours): a Markov chain
    that keeps the phone where it was with probability ``carriage_stay`` and otherwise draws afresh from
    ``carriage_weights`` (so every hour has the same mix). Drawn once per run, for all agents."""
    hours = max(1, hours)
    out = np.empty((n, hours), np.int8)
    out[:, 0] = params.draw_carriage(rng, n)
    for h in range(1, hours):
        fresh = params.draw_carriage(rng, n)
        stay = rng.random(n) < params.carriage_stay
        out[:, h] = np.where(stay, out[:, h - 1], fresh)
    return out


def hearing_probability(params: ChannelParams, margin: NDArray[np.float64]) -> NDArray[np.float64]:
    """P(a packet is received) given its RSSI's margin above the sensitivity floor (dB): the flat
    loss, times the receiver's waterfall near the floor (a normal CDF of ``sensitivity_width`` dB)."""
    out: NDArray[np.float64] = (1.0 - params.packet_loss) * _phi(margin / params.sensitivity_width)
    return out


def mean_hearing_probability(
    params: ChannelParams, distance: float, pair_offsets: NDArray[np.float64]
) -> float:
    """P(heard) at ``distance`` averaged over pairs whose fixed offsets (devices, carriages; dB) are
    ``pair_offsets``: encounter offset, fading and the floor's waterfall are Gaussian, so each pair's
    probability is one normal CDF. Bodies on the line of sight only lower it (ignored: an upper bound)."""
    at = np.array([distance])
    spread = math.hypot(
        float(params.encounter_spread(at)[0]), float(params.fading_depth(at)[0]), params.sensitivity_width
    )
    mean = params.rssi_at_1m - float(params.path_loss(at)[0]) + pair_offsets
    return float((1.0 - params.packet_loss) * np.mean(_phi((mean - params.sensitivity_dbm) / spread)))


def hearing_radius(params: ChannelParams, pair_offsets: NDArray[np.float64]) -> float:
    """The distance beyond which a packet is heard with probability below ``p_heard_floor`` (averaged
    over the run's device and carriage pairs, ``pair_offsets``): the neighbour search radius, derived
    from the model, not chosen. Bisection on log distance (P(heard) falls with distance)."""
    low, high = math.log(params.min_distance), math.log(1e6)
    if mean_hearing_probability(params, math.exp(low), pair_offsets) < params.p_heard_floor:
        return params.min_distance
    for _ in range(60):
        mid = 0.5 * (low + high)
        if mean_hearing_probability(params, math.exp(mid), pair_offsets) < params.p_heard_floor:
            high = mid
        else:
            low = mid
    return math.exp(high)


def pair_hearing_radii(params: ChannelParams, offsets: NDArray[np.float64]) -> NDArray[np.float64]:
    """:func:`hearing_radius` of each single pair whose fixed offsets are ``offsets`` (dB), all bisected at
    once (the per-pair radius table of sim/reach.py: one vectorised bisection, not one per entry)."""
    o = np.asarray(offsets, np.float64)
    low = np.full(o.shape, math.log(params.min_distance))
    high = np.full(o.shape, math.log(1e6))

    def heard(log_d: NDArray[np.float64]) -> NDArray[np.float64]:
        at = np.exp(log_d)
        spread = np.hypot(
            np.hypot(params.encounter_spread(at), params.fading_depth(at)), params.sensitivity_width
        )
        z = (params.rssi_at_1m - params.path_loss(at) + o - params.sensitivity_dbm) / spread
        out: NDArray[np.float64] = (1.0 - params.packet_loss) * _phi(z)
        return out

    silent = heard(low) < params.p_heard_floor
    for _ in range(60):
        mid = 0.5 * (low + high)
        below = heard(mid) < params.p_heard_floor
        high = np.where(below, mid, high)
        low = np.where(below, low, mid)
    out: NDArray[np.float64] = np.where(silent, params.min_distance, np.exp(high))
    return out


def _phi(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """The standard normal CDF in numpy alone (Abramowitz & Stegun 7.1.26 for erfc, |error| < 1.5e-7)."""
    x = np.abs(np.asarray(z, np.float64)) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    upper = 0.5 * poly * np.exp(-x * x)  # P(Z > |z|)
    out: NDArray[np.float64] = np.where(np.asarray(z) >= 0, 1.0 - upper, upper)
    return out


def link_level(
    params: ChannelParams,
    distance: NDArray[np.float64],
    tx: NDArray[np.int64],
    rx: NDArray[np.int64],
    encounter: NDArray[np.int64],
    *,
    carriage_tx: NDArray[np.int8],
    carriage_rx: NDArray[np.int8],
    device_tx: NDArray[np.float64],
    device_rx: NDArray[np.float64],
    encounter_key: np.uint64,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(level, fading depth) of each (tx, rx) link at ``distance``: the mean RSSI of its packets (dBm)
    before bodies and fading, with the pair's offset of its encounter ``encounter`` (one hashed draw per
    (pair, encounter)), and the spread of its per-packet fading (dB)."""
    loss = np.asarray(params.carriage_loss, np.float64)
    lo, hi = np.minimum(tx, rx), np.maximum(tx, rx)
    past = params._past_breakpoint(distance)  # once for both spreads
    offset = hash_normal(encounter_key, lo, hi, encounter) * params.encounter_spread(distance, past)
    level = (
        params.rssi_at_1m
        - params.path_loss(distance)
        - loss[carriage_tx]
        - loss[carriage_rx]
        + device_tx[tx]
        + device_rx[rx]
        + offset
    )
    return level, params.fading_depth(distance, past)


def _total_spread(params: ChannelParams, depth: NDArray[np.float64]) -> NDArray[np.float64]:
    """The spread of fading plus the receiver's waterfall (dB): both are normal, so they add in quadrature."""
    out: NDArray[np.float64] = np.sqrt(depth * depth + params.sensitivity_width * params.sensitivity_width)
    return out


def heard_chance(
    params: ChannelParams, level: NDArray[np.float64], depth: NDArray[np.float64]
) -> NDArray[np.float64]:
    """P(a packet of a link at ``level`` with fading ``depth`` is received), the fading integrated out:
    the flat loss times P(level + depth z + width e > sensitivity) for independent standard normals."""
    out: NDArray[np.float64] = (1.0 - params.packet_loss) * _phi(
        (level - params.sensitivity_dbm) / _total_spread(params, depth)
    )
    return out


def heard_fading(
    params: ChannelParams, depth: NDArray[np.float64], heard: NDArray[np.float64], fresh: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The fading (dB) of packets that were heard, drawn given that they were: ``heard`` is the uniform
    that decided it (``heard < heard_chance``), ``fresh`` an independent uniform. With z the packet's
    standard normal fading and e the waterfall's noise, s = depth z + width e cleared the floor, and
    ``heard / (1 - packet_loss)`` is uniform below P(s clears it), so s is its upper quantile; z given s is
    normal (mean depth s / S^2, spread width / S, S^2 = depth^2 + width^2). The same distribution as
    drawing z first and then the reception, but only heard packets need their fading drawn; and it does
    not depend on the level, so other people's bodies (which lower the level) leave it as it is."""
    spread = _total_spread(params, depth)
    s = -spread * normal_quantile(heard / (1.0 - params.packet_loss))
    z = depth * s / (spread * spread) + params.sensitivity_width / spread * normal_quantile(fresh)
    out: NDArray[np.float64] = depth * z
    return out
