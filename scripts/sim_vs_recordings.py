"""Per-encounter AUC at 1.83 m vs 3.66 m: the simulator's fixed-distance sessions next to the recordings'
(the `evaluate` protocol: one score per encounter, the default estimator's), each with a 95 % bootstrap
interval over encounters. The channel is fitted on these recordings, so the comparison is in-sample.

Usage: python scripts/sim_vs_recordings.py [SESSIONS_PER_DISTANCE] [P_HEARD_FLOOR]
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

from proximity.estimation import estimate_batch
from proximity.estimation.recordings import parse_recordings
from proximity.sim.calibration import fixed_distance_sessions
from proximity.sim.channel import ChannelParams
from proximity.sim.intervals import auc_interval

NEAR, FAR = 1.829, 3.658
DATA = Path(__file__).resolve().parent.parent / "data"
FILES = ("mit-matrix-rssi.csv.gz", "kri_anechoic.csv.gz", "range_angle.csv.gz")  # sets with both distances


def _at(d: float, target: float) -> bool:
    return abs(d - target) < 0.02


def recorded(files: tuple[str, ...] = FILES) -> tuple[list[float], list[bool]]:
    """Each recorded session at 1.83 or 3.66 m scored by minus its mean attenuation (calibrated)."""
    scores, labels = [], []
    for name in files:
        with gzip.open(DATA / name, "rt") as handle:
            for s in parse_recordings(handle.read(), name):
                if (_at(s.distance_m, NEAR) or _at(s.distance_m, FAR)) and s.rssi.size >= 2:
                    scores.append(-float(s.attenuation().mean()))
                    labels.append(_at(s.distance_m, NEAR))
    return scores, labels


def simulated(per_distance: int, channel: ChannelParams) -> tuple[list[float], list[bool]]:
    """2-minute simulated sessions at the two distances, judged by the default estimator in one batch."""
    sessions = fixed_distance_sessions([NEAR] * per_distance + [FAR] * per_distance, channel=channel)
    kept = [(k, d, r) for k, (d, r) in enumerate(sessions) if r.size >= 2]
    times = np.concatenate([np.arange(r.size, dtype=np.float64) for _, _, r in kept])
    rssi = np.concatenate([r for _, _, r in kept])
    encounter = np.concatenate([np.full(r.size, k) for k, _, r in kept])
    verdicts = estimate_batch(times, rssi, np.full(times.size, np.nan), encounter)
    return verdicts.score.tolist(), [_at(d, NEAR) for _, d, _ in kept]


def main() -> None:
    per_distance = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    channel = ChannelParams(p_heard_floor=float(sys.argv[2])) if len(sys.argv) > 2 else ChannelParams()
    runs = [("recordings", recorded())]
    runs += [(f"  {name.split('.')[0]}", recorded((name,))) for name in FILES]  # each set alone
    runs.append(("simulator", simulated(per_distance, channel)))
    for what, (scores, labels) in runs:
        auc, low, high = auc_interval(scores, labels)
        print(
            f"{what:18s} per-encounter AUC 1.83 vs 3.66 m: {auc:.3f} [{low:.3f}, {high:.3f}]"
            f" ({len(labels)} encounters)"
        )


if __name__ == "__main__":
    main()
