"""The radio channel between two phones, as bad as reality (spec: rssi-and-simulation).

    rssi = rssi_at_1m - 10 n log10(d) - body(carriage_tx) - body(carriage_rx)
           + device_tx + device_rx + encounter_offset + fading

``encounter_offset`` persists for a pair over an ``encounter_seconds`` epoch (carriage shifts,
orientation, the room), drawn by hashing (seed, pair, epoch) so no pair state is stored; ``fading``
is fresh per packet. Packets are lost with ``packet_loss`` and below ``sensitivity_dbm``. Defaults
reproduce the MIT recordings' separability of 1.83 m vs 3.66 m (tests/test_sim_channel.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from proximity.sim.streams import hash_normal

__all__ = ["CARRIAGES", "ChannelParams", "received_rssi"]

# Carriage states and the body loss each end adds (dB); a pair's loss is the sum (0..28 dB).
CARRIAGES = ("hand", "shirt_pocket", "front_pocket", "back_pocket", "bag")
CARRIAGE_LOSS_DB = (0.0, 4.0, 6.0, 14.0, 8.0)
CARRIAGE_WEIGHTS = (0.3, 0.15, 0.25, 0.15, 0.15)


@dataclass(frozen=True, slots=True)
class ChannelParams:
    """Channel parameters (dB, m, s). ``device_sigma`` is each phone's residual offset (transmitter and
    receiver) on top of what its model's calibration row implies (sim/devicemodels.py)."""

    rssi_at_1m: float = -63.0
    path_loss_exponent: float = 1.2
    encounter_sigma: float = 4.0
    encounter_seconds: float = 1800.0
    fading_sigma: float = 7.0
    device_sigma: float = 1.5
    carriage_loss: tuple[float, ...] = CARRIAGE_LOSS_DB
    carriage_weights: tuple[float, ...] = CARRIAGE_WEIGHTS
    packet_loss: float = 0.1
    sensitivity_dbm: float = -100.0
    max_range: float = 10.0
    min_distance: float = 0.2

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float | int) and not math.isfinite(value):
                raise ValueError(f"channel {f.name} must be finite, got {value!r}")
        for name in ("path_loss_exponent", "encounter_seconds", "max_range", "min_distance"):
            if getattr(self, name) <= 0:
                raise ValueError(f"channel {name} must be positive, got {getattr(self, name)!r}")
        for name in ("encounter_sigma", "fading_sigma", "device_sigma"):
            if getattr(self, name) < 0:
                raise ValueError(f"channel {name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.packet_loss < 1.0:
            raise ValueError(f"packet_loss must be in [0, 1), got {self.packet_loss!r}")
        if len(self.carriage_loss) != len(CARRIAGES) or len(self.carriage_weights) != len(CARRIAGES):
            raise ValueError(f"carriage_loss and carriage_weights need one entry per carriage {CARRIAGES}")
        if any(w < 0 for w in self.carriage_weights) or sum(self.carriage_weights) <= 0:
            raise ValueError("carriage_weights must be non-negative and not all zero")

    def draw_carriage(self, rng: np.random.Generator, n: int) -> NDArray[np.int8]:
        p = np.asarray(self.carriage_weights, np.float64)
        return rng.choice(len(CARRIAGES), size=n, p=p / p.sum()).astype(np.int8)


def received_rssi(
    params: ChannelParams,
    distance: NDArray[np.float64],
    tx: NDArray[np.int64],
    rx: NDArray[np.int64],
    times: NDArray[np.float64],
    *,
    carriage: NDArray[np.int8],
    device_tx: NDArray[np.float64],
    device_rx: NDArray[np.float64],
    encounter_key: np.uint64,
    fading: np.random.Generator,
) -> NDArray[np.float64]:
    """RSSI (dBm, float) of one packet per (tx, rx) pair at ``distance`` and ``times``."""
    d = np.maximum(distance, params.min_distance)
    loss = np.asarray(params.carriage_loss, np.float64)
    lo, hi = np.minimum(tx, rx), np.maximum(tx, rx)
    epoch = np.floor(times / params.encounter_seconds).astype(np.int64)
    offset = hash_normal(encounter_key, lo, hi, epoch) * params.encounter_sigma
    return (
        params.rssi_at_1m
        - 10.0 * params.path_loss_exponent * np.log10(d)
        - loss[carriage[tx]]
        - loss[carriage[rx]]
        + device_tx[tx]
        + device_rx[rx]
        + offset
        + fading.standard_normal(d.shape[0]) * params.fading_sigma
    )
