"""The shipped defaults that are fitted, not chosen by hand: package data written by ``make fit``.

``data/fitted.json`` holds, on GAEN's attenuation scale, the session attenuation thresholds (mean,
median and max of a session's packets) with the least nDCF at each TC4TL distance on all the shared
recordings, which estimator nested leave-one-dataset-out chose as the default, and the held-out
figures it was chosen on (``scripts/fit_defaults.py``; a test checks the file is what it writes).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

__all__ = ["FITTED_FILE", "FittedDefaults", "shipped_defaults"]

FITTED_FILE = "data/fitted.json"
STATISTICS = ("mean", "median", "max")


@dataclass(frozen=True, slots=True)
class FittedDefaults:
    """``thresholds[stat][d]``: say "within d m" when the session's ``stat`` attenuation <= it (dB)."""

    estimator: str
    thresholds: dict[str, dict[float, float]]
    document: dict[str, Any]

    def threshold(self, stat: str, distance: float) -> float:
        """The threshold for ``distance`` m: the fitted ones, linear in log distance between the fitted
        distances, the nearest fitted one beyond them."""
        points = sorted(self.thresholds[stat].items())
        x = np.log([d for d, _ in points])
        y = np.array([t for _, t in points])
        return float(np.interp(math.log(distance), x, y))


def from_document(document: dict[str, Any]) -> FittedDefaults:
    thresholds = {
        stat: {float(d): float(t) for d, t in document["thresholds_db"][stat].items()} for stat in STATISTICS
    }
    return FittedDefaults(str(document["default_estimator"]), thresholds, document)


@cache
def shipped_defaults() -> FittedDefaults:
    """The fitted defaults shipped in the package (read once)."""
    text = resources.files("proximity.estimation").joinpath(FITTED_FILE).read_text("utf-8")
    return from_document(json.loads(text))
