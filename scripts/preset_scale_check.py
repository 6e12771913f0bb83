"""Are the presets handicapped by the attenuation scale of the recordings? A sensitivity check.

The presets' buckets are fixed in dB, and the MIT iPhones' attenuation (TX 8 dBm - RSSI - fleet
correction) need not sit on the scale the buckets were tuned for. Here each preset also fits a
calibration offset (-30..+10 dB, 1 dB steps, added to every attenuation) together with its threshold,
on the fit data only, then decides on the held-out data, by the same three protocols as the README.

usage: python scripts/preset_scale_check.py [data/mit-matrix-rssi.csv.gz]
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from proximity.estimation.evaluation import POSITIVE_MARGIN_M, Session, parse_recordings, split_by_config
from proximity.estimation.presets import PRESETS, Preset
from proximity.estimation.scoring import fit_threshold, ndcf, roc_auc
from proximity.estimation.windows import scan_instances

OFFSETS_DB = np.arange(-30.0, 11.0, 1.0)
DISTANCE_M = 1.8


def rates(preset: Preset, sessions: Sequence[Session], offset: float) -> NDArray[np.float64]:
    return np.array(
        [
            preset.rate(scan_instances(s.times, s.attenuation() + offset, s.rssi, first_scan_seconds=None))
            for s in sessions
        ]
    )


def labels(sessions: Sequence[Session]) -> NDArray[np.bool_]:
    return np.array([s.distance_m <= DISTANCE_M + POSITIVE_MARGIN_M for s in sessions])


def fit(preset: Preset, sessions: Sequence[Session]) -> tuple[float, float]:
    """(offset, threshold) with the least nDCF on ``sessions``; ties: the middle offset."""
    y = labels(sessions)
    costs, choices = [], []
    for offset in OFFSETS_DB:
        r = rates(preset, sessions, float(offset))
        threshold = fit_threshold(r, y)
        costs.append(ndcf(r >= threshold, y))
        choices.append((float(offset), threshold))
    best = [c for c, cost in zip(choices, costs, strict=True) if cost <= min(costs) + 1e-12]
    return best[len(best) // 2]


def held_out(
    preset: Preset, fit_on: Sequence[Session], scored: Sequence[Session]
) -> tuple[NDArray[np.bool_], NDArray[np.float64], float]:
    offset, threshold = fit(preset, fit_on)
    r = rates(preset, scored, offset)
    return r >= threshold, r, offset


def main(path: str) -> None:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        sessions = parse_recordings(handle.read())
    a, b = split_by_config(sessions)
    configs = sorted({s.config for s in sessions})
    print("preset: nDCF at 1.8 m held out (AUC; fitted offset): fold A | fold B | leave-one-out")
    for name, preset in PRESETS.items():
        cells = []
        for fit_on, scored in ((a, b), (b, a)):
            decided, r, offset = held_out(preset, fit_on, scored)
            y = labels(scored)
            cells.append(f"{ndcf(decided, y):.3f} ({roc_auc(r, y):.3f}; {offset:+.0f} dB)")
        decisions, scores, ordered = [], [], []
        for config in configs:
            test = [s for s in sessions if s.config == config]
            decided, r, _ = held_out(preset, [s for s in sessions if s.config != config], test)
            decisions.append(decided)
            scores.append(r)
            ordered += test
        y = labels(ordered)
        cells.append(f"{ndcf(np.concatenate(decisions), y):.3f} ({roc_auc(np.concatenate(scores), y):.3f})")
        print(f"{name}: {' | '.join(cells)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/mit-matrix-rssi.csv.gz")
