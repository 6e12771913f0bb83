"""Judge a counterpart's sightings: the default (mean attenuation), probabilistic and the presets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from proximity.estimation.estimators import estimator_names, verdict


@dataclass(frozen=True)
class Counterpart:
    """Anything with float64 times, rssi and tx_power (NaN = unknown), like the matcher's KeyMatch."""

    times: NDArray[np.float64]
    rssi: NDArray[np.float64]
    tx_power: NDArray[np.float64]


rng = np.random.default_rng(7)
T0 = 1_596_880_800.0  # 2020-08-08T10:00:00Z
# 25 minutes, a 4-second scan every minute, a per-encounter offset and per-packet fading.
times = np.concatenate([T0 + 60 * m + rng.uniform(0, 4, 12) for m in range(25)])
for label, rssi_at_encounter in (("near (about 1 m)", -62.0), ("far (about 4 m)", -80.0)):
    offset = rng.normal(0, 4)
    rssi = np.round(rssi_at_encounter + offset + rng.normal(0, 6.5, times.size))
    counterpart = Counterpart(times, rssi, np.full(times.size, np.nan))
    print(f"{label}:")
    for name in estimator_names():
        v = verdict(counterpart, name)
        extra = ""
        if v["probability"] is not None:
            extra = (
                f"  P={v['probability']:.2f}  distance {v['distance_m']:.1f} m "
                f"[{v['distance_low_m']:.1f}-{v['distance_high_m']:.1f}]  "
                f"{v['minutes_within']:.0f}±{v['minutes_within_sd']:.0f} min within 2 m"
            )
        print(
            f"  {name:14s} close={v['close_contact']!s:5s} score={v['score']:.2f} "
            f"median attenuation {v['attenuation_median_db']:.0f} dB{extra}"
        )
