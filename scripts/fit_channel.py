"""Fit the simulator's near-field channel on the recordings (data/*.csv.gz), independently of the
estimators' own fit (scripts/fit_defaults.py): prints rssi_at_1m and the path-loss exponent that
src/proximity/sim/channel.py ships (NEAR_RSSI_AT_1M, NEAR_EXPONENT, FITTED_FADING_SIGMA and the total
between-encounter spread FITTED_ENCOUNTER_SPREAD that carriage, devices and the encounter offset share).

Per session (one receiver hearing one beacon at one fixed distance, 0.2-4.6 m, at least 2 packets):
the mean GAEN attenuation (each side's calibration applied). Fit: mean attenuation = a_set + 10 n
log10(d), one intercept per data set (rooms, rigs and bodies differ between sets; the slope is what
distance does within a set), each set weighted equally. RSSI at 1 m is read back on the reference
scale: the fleet calibrated TX - (mean of the sets' intercepts) - the fleet RSSI correction.

Usage: python scripts/fit_channel.py data/*.csv.gz   (about a minute; herald_edison is 2.2 M packets)
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

from proximity.estimation.calibration import FLEET_RSSI_CORRECTION_DB, FLEET_TX_POWER_DBM
from proximity.estimation.recordings import parse_recordings

NEAR_LIMIT_M = 4.6


def session_means(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """(10 log10 d, mean attenuation) of each usable session in one file, and the median spread of
    packets within a session (fading, dB)."""
    with gzip.open(path, "rt") as handle:
        sessions = parse_recordings(handle.read(), path.name)
    x, y, within = [], [], []
    for s in sessions:
        att = s.attenuation()
        if 0.2 <= s.distance_m <= NEAR_LIMIT_M and att.size >= 2:
            x.append(10.0 * np.log10(s.distance_m))
            y.append(float(att.mean()))
            within.append(float(att.std(ddof=1)))
    return np.asarray(x), np.asarray(y), float(np.median(within)) if within else float("nan")


def fit(sets: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float, float]:
    """(rssi_at_1m, exponent, residual spread of session means): a common slope with one intercept per
    set, sets weighted equally."""
    usable = [(x, y) for x, y in sets if x.size >= 2 and np.ptp(x) > 0]
    k = len(usable)
    rows, target, weight = [], [], []
    for i, (x, y) in enumerate(usable):
        design = np.zeros((x.size, k + 1))
        design[:, i] = 1.0
        design[:, k] = x
        rows.append(design)
        target.append(y)
        weight.append(np.full(x.size, 1.0 / x.size))
    a, b, w = np.concatenate(rows), np.concatenate(target), np.sqrt(np.concatenate(weight))
    coef = np.linalg.lstsq(a * w[:, None], b * w, rcond=None)[0]
    intercept = float(np.mean(coef[:k]))
    residual = float(np.sqrt(np.sum((a @ coef - b) ** 2 * w**2) / np.sum(w**2)))
    return FLEET_TX_POWER_DBM - intercept - FLEET_RSSI_CORRECTION_DB, float(coef[k]), residual


def main(paths: list[str]) -> None:
    found = [session_means(Path(p)) for p in paths]
    for p, (x, _, within) in zip(paths, found, strict=True):
        print(f"{Path(p).name}: {x.size} sessions within {NEAR_LIMIT_M} m, packets spread {within:.2f} dB")
    rssi_at_1m, exponent, residual = fit([(x, y) for x, y, _ in found])
    fading = float(np.nanmean([w for _, _, w in found]))
    print(f"NEAR_RSSI_AT_1M = {rssi_at_1m:.1f}\nNEAR_EXPONENT = {exponent:.2f}")
    print(f"FITTED_FADING_SIGMA = {fading:.1f}\nFITTED_ENCOUNTER_SPREAD = {residual:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
