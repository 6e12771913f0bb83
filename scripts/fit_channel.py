"""Fit the simulator's near-field channel on the recordings (data/*.csv.gz) into the package file
src/proximity/sim/data/channel.json (`make fit-channel`; a test checks the committed file is what this
writes). Independent of the estimators' own fit (scripts/fit_defaults.py -> estimation/data/fitted.json):
this script reads neither that file nor the estimators' model defaults (tests/test_channel_fit.py).

The generative model the simulator draws from, on GAEN's attenuation scale (each side's calibration
applied, as the estimators see packets), per session s of configuration c at distance d:

    packet attenuation = level + 10 n log10(d) + carriage(c) + encounter(s) + fading(d) * z

It is fitted by matching, per data set and distance, the three things a session shows: the mean of its
packets, how session means spread around that mean, and how packets spread within a session.

- ``n``: the slope of session means on 10 log10 d *within each configuration* (configuration fixed
  effects: carriage, phones and room held fixed), per data set; the shipped figure is the median over
  the sets that vary the distance (a set is one rig, so sets count equally).
- ``level`` (dB at 1 m): per set, the mean of (session mean - 10 n log10 d); the median over sets.
- ``between_encounter_sigma``: the spread of session means around each set's line (root mean square over
  sets): what carriage, phones, rooms and each encounter's posture add. The simulator splits it into its
  carriage pairs, device residuals and the per-encounter offset (whatever is left).
- ``within_configuration_sigma``: the same spread within (configuration, distance): the per-encounter
  offset that remains when carriage and phones are fixed (reported, a floor for the encounter term).
- Fading depth: the standard deviation of packets within a session, log-linear in distance
  (ln sigma = ln sigma_1m + slope ln d, one intercept per set, common slope); shipped are the median of
  the sets' intercepts and the common slope.

Sessions: 0.2-4.6 m (the recordings' range), at least ``MIN_PACKETS`` packets.
Usage: python scripts/fit_channel.py [--out FILE] data/*.csv.gz   (about a minute)
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from proximity.estimation.recordings import parse_recordings

NEAR_LIMIT_M = 4.6
MIN_DISTANCE_M = 0.2
MIN_PACKETS = 5
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "src" / "proximity" / "sim" / "data" / "channel.json"

Array = NDArray[np.float64]


def sessions_of(path: Path) -> dict[str, Array]:
    """Per usable session of one file: config index, distance, mean and SD of its packets' attenuation."""
    with gzip.open(path, "rt", newline="") as handle:
        sessions = parse_recordings(handle.read(), path.name)
    configs: dict[str, int] = {}
    rows: list[tuple[float, float, float, float]] = []
    for s in sessions:
        att = s.attenuation()
        if MIN_DISTANCE_M <= s.distance_m <= NEAR_LIMIT_M and att.size >= MIN_PACKETS:
            config = configs.setdefault(s.config, len(configs))
            rows.append((config, s.distance_m, float(att.mean()), float(att.std(ddof=1))))
    table = np.asarray(rows, np.float64).reshape(-1, 4)
    return {"config": table[:, 0], "distance": table[:, 1], "mean": table[:, 2], "sd": table[:, 3]}


def _demean(values: Array, groups: Array) -> Array:
    _, inverse = np.unique(groups, return_inverse=True)
    counts = np.bincount(inverse)
    out: Array = values - np.bincount(inverse, values)[inverse] / counts[inverse]
    return out


def within_config_slope(s: dict[str, Array]) -> float | None:
    """Slope of session mean on 10 log10 d with one intercept per configuration (None: no distance
    varies within any configuration)."""
    x = _demean(10.0 * np.log10(s["distance"]), s["config"])
    y = _demean(s["mean"], s["config"])
    if float(x @ x) < 1e-6 * max(x.size, 1):
        return None
    return float(x @ y / (x @ x))


def within_group_sigma(values: Array, groups: Array) -> float:
    """Pooled standard deviation within groups (groups of one contribute nothing)."""
    _, inverse = np.unique(groups, return_inverse=True)
    counts = np.bincount(inverse)
    shared = counts[inverse] > 1
    dof = int(shared.sum()) - int(np.count_nonzero(counts > 1))
    residual = _demean(values, groups)[shared]
    return float(np.sqrt(residual @ residual / dof)) if dof > 0 else float("nan")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _rms(values: Iterable[float]) -> float:
    finite = [float(v) for v in values if np.isfinite(v)]
    return float(np.sqrt(np.mean(np.square(finite))))


def fit(sets: dict[str, dict[str, Array]]) -> dict[str, object]:
    slopes = {name: within_config_slope(s) for name, s in sets.items()}
    fitted_slopes = [v for v in slopes.values() if v is not None]
    exponent = float(np.median(fitted_slopes))
    levels, between, within, ln_sd, ln_d, set_index = {}, {}, {}, [], [], []
    for k, (name, s) in enumerate(sets.items()):
        x = 10.0 * np.log10(s["distance"])
        residual = s["mean"] - exponent * x
        levels[name] = float(residual.mean())
        between[name] = float(residual.std(ddof=1))
        cell = s["config"] * 1e4 + np.round(s["distance"], 2)
        within[name] = within_group_sigma(s["mean"], cell)
        keep = s["sd"] > 0
        ln_sd.append(np.log(s["sd"][keep]))
        ln_d.append(np.log(s["distance"][keep]))
        set_index.append(np.full(int(keep.sum()), k))
    # fading: common slope of ln(sd) on ln(d) with one intercept per set
    y, x, g = np.concatenate(ln_sd), np.concatenate(ln_d), np.concatenate(set_index)
    xd, yd = _demean(x, g), _demean(y, g)
    fade_slope = float(xd @ yd / (xd @ xd))
    intercepts = [float(np.mean(y[g == k] - fade_slope * x[g == k])) for k in range(len(sets))]
    fading_at_1m = float(np.exp(np.median(intercepts)))
    return {
        "about": "written by scripts/fit_channel.py (make fit-channel); GAEN attenuation scale, dB, m",
        "files": sorted(sets),
        "sessions": int(sum(s["mean"].size for s in sets.values())),
        "range_m": [MIN_DISTANCE_M, NEAR_LIMIT_M],
        "path_loss_exponent": round(exponent, 4),
        "attenuation_at_1m": round(float(np.median(list(levels.values()))), 4),
        "between_encounter_sigma": round(_rms(between.values()), 4),
        "within_configuration_sigma": round(_rms(within.values()), 4),
        "fading_at_1m": round(fading_at_1m, 4),
        "fading_slope": round(fade_slope, 4),
        "per_file": {
            name: {
                "within_config_exponent": _rounded(slopes[name]),
                "attenuation_at_1m": round(levels[name], 4),
                "between_encounter_sigma": round(between[name], 4),
                "within_configuration_sigma": round(within[name], 4),
                "fading_at_1m": round(float(np.exp(intercepts[k])), 4),
                "sessions": int(sets[name]["mean"].size),
            }
            for k, name in enumerate(sets)
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    sets = {p.name.split(".")[0]: sessions_of(p) for p in sorted(args.files, key=lambda p: p.name)}
    document = fit(sets)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    print(json.dumps({k: v for k, v in document.items() if k != "per_file"}, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
