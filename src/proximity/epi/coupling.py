"""Micro -> macro: what the BLE simulator says each Covasim layer's app tracing can do.

Each Covasim layer reads one or more venue scenarios (simulations/*.toml), mixed with stated weights
(h <- home, s <- classroom, w <- office, c <- market and bus). In each venue the real simulator (the
public :func:`proximity.sim.sweep`, every phone carrying the app, the shipped default estimator, the
epidemic scenario's scheme and OS mix) gives per seed: directional notifiable contacts (2 per true
contact where both carry the app), those notified, and false notifications. Per layer:

- ``p_detect``: notified / notifiable, P(the radio and the matcher notify a true contact | both carry
  the app), a ratio of sums over seeds with a percentile bootstrap over seeds;
- ``false_rate``: false notifications per notifiable (true, app-app, directional) contact, same way;
- the delay from a diagnosis to the phone's notification (upload, server publication, the phone's
  download interval; matching itself takes well under a second) is a stated model, not a radio
  measurement: its distribution is drawn by Monte Carlo and turned into the probability of each day
  offset (a diagnosis at a uniform hour of the working day plus the delay; see tracing.py).

The result is a JSON file with its provenance (:func:`measure` writes it; ``make coupling``).
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from proximity.errors import ProximityError

__all__ = [
    "LAYERS",
    "CouplingError",
    "DelayModel",
    "LayerCoupling",
    "bootstrap_ratio",
    "day_offsets",
    "load_coupling",
]

LAYERS = ("h", "s", "w", "c")  # Covasim's hybrid layers: household, school, work, community
BOOTSTRAP_DRAWS = 4000
LEVEL = 0.95


class CouplingError(ProximityError, ValueError):
    """A coupling file (or the venue mapping it is measured for) that cannot be used."""


@dataclass(frozen=True, slots=True)
class DelayModel:
    """Hours from a diagnosis to a contact's phone showing the notification (each part uniform on
    [0, interval] except the fixed upload delay); diagnoses arrive uniformly over ``diagnosis_hours``
    of the day (local time), which is what splits a delay between day 0 and later days."""

    upload_hours: float = 2.0
    publish_interval_hours: float = 2.0
    download_interval_hours: float = 4.0
    matching_hours: float = 0.0
    diagnosis_hours: tuple[float, float] = (8.0, 20.0)

    def __post_init__(self) -> None:
        for name in ("upload_hours", "publish_interval_hours", "download_interval_hours", "matching_hours"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= 24 * 14):
                raise CouplingError(f"delay {name} must be a number of hours in [0, 336], got {value!r}")
        low, high = self.diagnosis_hours
        if not 0 <= low <= high <= 24:
            raise CouplingError(
                f"diagnosis_hours must be [low, high] within [0, 24], got {self.diagnosis_hours}"
            )

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """(delays in hours, diagnosis hour of day) for ``n`` notifications."""
        delay = (
            self.upload_hours
            + rng.uniform(0, self.publish_interval_hours, n)
            + rng.uniform(0, self.download_interval_hours, n)
            + self.matching_hours
        )
        return delay, rng.uniform(*self.diagnosis_hours, n)


def day_offsets(model: DelayModel, draws: int = 200_000, seed: int = 0) -> tuple[float, ...]:
    """P(notified k days after the diagnosis day), k = 0, 1, ...: Covasim steps in days, so an
    hour-level delay becomes a probabilistic split (not the rounding ``trace_time`` would do)."""
    delay, hour = model.sample(draws, np.random.default_rng(seed))
    offset = np.floor((hour + delay) / 24.0).astype(np.int64)
    counts = np.bincount(offset)
    return tuple(float(c) for c in counts / counts.sum())


@dataclass(frozen=True, slots=True)
class LayerCoupling:
    """One Covasim layer's app tracing: the figures and their 95 % intervals (bootstrap over seeds)."""

    layer: str
    venues: dict[str, float]  # venue scenario -> weight
    p_detect: float
    p_detect_low: float
    p_detect_high: float
    false_rate: float
    false_rate_low: float
    false_rate_high: float
    notifiable: int
    notified: int
    false_notifications: int
    seeds: dict[str, int] = field(default_factory=dict)  # venue -> seeds run


@dataclass(frozen=True, slots=True)
class Coupling:
    layers: dict[str, LayerCoupling]
    delay: DelayModel
    offsets: tuple[float, ...]  # P(day offset k), from ``delay``
    delay_mean_hours: float
    delay_p05_hours: float
    delay_p95_hours: float
    inputs: dict[str, Any]  # what it was measured for (scheme, OS mix, venues, estimator)
    provenance: dict[str, Any]

    def check_inputs(self, expected: Mapping[str, Any], source: str) -> None:
        """Refuse a file measured for another scheme, OS mix, venue mapping or estimator."""
        for key, value in expected.items():
            if self.inputs.get(key) != value:
                raise CouplingError(
                    f"coupling file {source} was measured with {key} = {self.inputs.get(key)!r}, but the "
                    f"scenario asks for {value!r}; re-measure it (make coupling)"
                )


def bootstrap_ratio(
    successes: Sequence[Sequence[float]],
    trials: Sequence[Sequence[float]],
    weights: Sequence[float],
    seed: int = 0,
) -> tuple[float, float, float]:
    """(point, low, high) of sum_v w_v * (sum s_v / sum t_v): a weighted mix of per-venue ratios of
    sums, with a percentile bootstrap that resamples each venue's seeds independently."""
    rng = np.random.default_rng(seed)
    point = 0.0
    draws = np.zeros(BOOTSTRAP_DRAWS)
    for s, t, w in zip(successes, trials, weights, strict=True):
        s_arr, t_arr = np.asarray(s, np.float64), np.asarray(t, np.float64)
        if t_arr.sum() == 0:
            raise CouplingError(
                "a venue had no contacts where both carry the app in any seed; run more seeds"
            )
        point += w * s_arr.sum() / t_arr.sum()
        pick = rng.integers(0, s_arr.size, (BOOTSTRAP_DRAWS, s_arr.size))
        num, den = s_arr[pick].sum(axis=1), t_arr[pick].sum(axis=1)
        draws += w * np.divide(
            num, den, out=np.full(BOOTSTRAP_DRAWS, s_arr.sum() / t_arr.sum()), where=den > 0
        )
    alpha = 1 - LEVEL
    return point, float(np.quantile(draws, alpha / 2)), float(np.quantile(draws, 1 - alpha / 2))


def measure(
    venues: Mapping[str, Mapping[str, float]],
    scenario_dir: Path,
    *,
    scheme: str,
    os_mix: Mapping[str, float],
    foreground_share: float,
    seeds: Mapping[str, int],
    delay: DelayModel,
    progress: Any = None,
) -> Coupling:
    """Run each venue ``seeds[venue]`` times at full app carriage and reduce to per-layer figures."""
    from proximity.estimation import DEFAULT_ESTIMATOR
    from proximity.sim import load_scenario
    from proximity.sim.sweep import sweep

    counts: dict[str, tuple[list[int], list[int], list[int]]] = {}
    files: dict[str, str] = {}
    started = time.monotonic()
    for venue in sorted({v for mix in venues.values() for v in mix}):
        path = scenario_dir / f"{venue}.toml"
        if not path.is_file():
            raise CouplingError(f"venue {venue!r} has no scenario file {path}")
        files[venue] = path.read_text()
        scenario = load_scenario(path).with_overrides(
            scheme=scheme,
            estimators=(DEFAULT_ESTIMATOR,),
            os_mix=tuple(sorted(os_mix.items())),
            foreground_share=foreground_share,
            adoption=(1.0,),
            ownership=1.0,
            pair_scores=False,
            contact_table=False,
        )
        result = sweep(scenario, [1.0], [DEFAULT_ESTIMATOR], seeds[venue], scheduler="inline")
        rows = sorted(result.rows, key=lambda r: r.seed)
        counts[venue] = (
            [r.notified for r in rows],
            [r.notifiable for r in rows],
            [r.false_notifications for r in rows],
        )
        if progress is not None:
            progress(venue, time.monotonic() - started)
    layers: dict[str, LayerCoupling] = {}
    for k, layer in enumerate(sorted(venues)):
        mix = dict(sorted(venues[layer].items()))
        names = list(mix)
        weights = [mix[v] for v in names]
        notified = [counts[v][0] for v in names]
        notifiable = [counts[v][1] for v in names]
        false = [counts[v][2] for v in names]
        p = bootstrap_ratio(notified, notifiable, weights, seed=k)
        f = bootstrap_ratio(false, notifiable, weights, seed=100 + k)
        layers[layer] = LayerCoupling(
            layer, mix, *p, *f,
            notifiable=int(sum(map(sum, notifiable))),
            notified=int(sum(map(sum, notified))),
            false_notifications=int(sum(map(sum, false))),
            seeds={v: seeds[v] for v in names},
        )  # fmt: skip
    sample, _ = delay.sample(200_000, np.random.default_rng(0))
    return Coupling(
        layers=layers,
        delay=delay,
        offsets=day_offsets(delay),
        delay_mean_hours=float(sample.mean()),
        delay_p05_hours=float(np.quantile(sample, 0.05)),
        delay_p95_hours=float(np.quantile(sample, 0.95)),
        inputs=coupling_inputs(venues, scheme, os_mix, foreground_share),
        provenance=_provenance(files, seeds, time.monotonic() - started),
    )


def coupling_inputs(
    venues: Mapping[str, Mapping[str, float]],
    scheme: str,
    os_mix: Mapping[str, float],
    foreground_share: float,
) -> dict[str, Any]:
    """What a coupling file is valid for (compared on load)."""
    from proximity.estimation import DEFAULT_ESTIMATOR

    return {
        "scheme": scheme,
        "os_mix": {k: float(v) for k, v in sorted(os_mix.items())},
        "foreground_share": float(foreground_share),
        "venues": {
            layer: {v: float(w) for v, w in sorted(mix.items())} for layer, mix in sorted(venues.items())
        },
        "estimator": DEFAULT_ESTIMATOR,
    }


def _provenance(files: Mapping[str, str], seeds: Mapping[str, int], seconds: float) -> dict[str, Any]:
    import hashlib

    from proximity import __version__
    from proximity.sim.channel import ChannelParams

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        if changed:
            commit += " (with uncommitted changes)"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "command": "make coupling",
        "package_version": __version__,
        "git_commit": commit,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(seconds, 1),
        "python": platform.python_version(),
        "seeds": dict(sorted(seeds.items())),
        "venue_sha256": {v: hashlib.sha256(t.encode()).hexdigest() for v, t in sorted(files.items())},
        "channel_defaults": asdict(ChannelParams()),
    }


def save_coupling(coupling: Coupling, path: Path) -> None:
    data = {
        "layers": {k: asdict(v) for k, v in coupling.layers.items()},
        "delay": asdict(coupling.delay),
        "offsets": list(coupling.offsets),
        "delay_mean_hours": coupling.delay_mean_hours,
        "delay_p05_hours": coupling.delay_p05_hours,
        "delay_p95_hours": coupling.delay_p95_hours,
        "inputs": coupling.inputs,
        "provenance": coupling.provenance,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def load_coupling(path: Path) -> Coupling:
    """Read a coupling file written by :func:`save_coupling`; a typed error naming what is wrong."""
    try:
        data = json.loads(path.read_text())
        layers = {k: LayerCoupling(**v) for k, v in data["layers"].items()}
        delay = DelayModel(**{**data["delay"], "diagnosis_hours": tuple(data["delay"]["diagnosis_hours"])})
        coupling = Coupling(
            layers=layers,
            delay=delay,
            offsets=tuple(float(x) for x in data["offsets"]),
            delay_mean_hours=float(data["delay_mean_hours"]),
            delay_p05_hours=float(data["delay_p05_hours"]),
            delay_p95_hours=float(data["delay_p95_hours"]),
            inputs=dict(data["inputs"]),
            provenance=dict(data["provenance"]),
        )
    except OSError as error:
        raise CouplingError(
            f"cannot read coupling file {path}: {error.strerror}; run make coupling"
        ) from None
    except (ValueError, KeyError, TypeError) as error:
        raise CouplingError(f"coupling file {path} is damaged ({type(error).__name__}: {error})") from None
    for layer in layers.values():
        for name in ("p_detect", "false_rate"):
            value = getattr(layer, name)
            if not (math.isfinite(value) and value >= 0 and (name != "p_detect" or value <= 1)):
                raise CouplingError(
                    f"coupling file {path}: layer {layer.layer} {name} = {value!r} is impossible"
                )
    if abs(sum(coupling.offsets) - 1) > 1e-6:
        raise CouplingError(f"coupling file {path}: day offsets do not sum to 1")
    return coupling
