"""One row per (adoption, estimator) over a sweep's seeds, every figure with its 95 % interval.

Across seeds: the mean with a percentile bootstrap over seeds (``interval = "seeds"``). With one seed:
the fraction over that run's contacts with its exact Clopper-Pearson interval (``interval =
"contacts"``). A fraction over fewer than 5 successes reads "k of N (<= upper)" (summed over seeds),
never a bare 0.000."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from proximity.sim.intervals import bootstrap_mean, clopper_pearson, describe_fraction
from proximity.sim.run import ResultRow

__all__ = ["FRACTIONS", "SummaryRow", "summarise"]

# fraction name -> (successes, trials) columns of ResultRow
FRACTIONS = {
    "fraction_traced": ("detected", "true_contacts"),
    "traced_strangers": ("detected_strangers", "stranger_contacts"),
    "traced_companions": ("detected_companions", "companion_contacts"),
    "sensitivity": ("detected", "app_contacts"),
    "notified_share": ("notified", "notifiable"),
}
COUNTS = ("true_contacts", "false_positives", "notified", "false_notifications")


@dataclass(frozen=True, slots=True)
class SummaryRow:
    adoption: float
    estimator: str
    seeds: int
    interval: str  # "seeds" (bootstrap over seeds) or "contacts" (exact, one seed)
    values: dict[str, tuple[float, float, float]]  # name -> (point, low, high)
    text: dict[str, str]  # name -> how to print it

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"adoption": self.adoption, "estimator": self.estimator, "seeds": self.seeds,
                               "interval": self.interval}  # fmt: skip
        for name, (point, low, high) in self.values.items():
            out[name], out[f"{name}_low"], out[f"{name}_high"] = (
                None if math.isnan(x) else x for x in (point, low, high)
            )
        return out


def summarise(rows: Sequence[ResultRow]) -> list[SummaryRow]:
    groups: dict[tuple[float, str], list[ResultRow]] = {}
    for row in rows:
        groups.setdefault((row.adoption, row.estimator), []).append(row)
    return [_one(p, name, sorted(mine, key=lambda r: r.seed)) for (p, name), mine in sorted(groups.items())]


def _one(adoption: float, estimator: str, rows: list[ResultRow]) -> SummaryRow:
    values: dict[str, tuple[float, float, float]] = {}
    text: dict[str, str] = {}
    one = len(rows) == 1
    for name, (hit, of) in FRACTIONS.items():
        k = sum(getattr(r, hit) for r in rows)
        n = sum(getattr(r, of) for r in rows)
        if one:
            low, high = clopper_pearson(k, n)
            values[name] = (k / n if n else math.nan, low, high)
        else:
            values[name] = bootstrap_mean([getattr(r, hit) / getattr(r, of) if getattr(r, of) else math.nan
                                           for r in rows])  # fmt: skip
        point, low, high = values[name]
        text[name] = describe_fraction(k, n) if (one or k < 5) else f"{point:.3f} [{low:.3f}, {high:.3f}]"
    for name in COUNTS:
        per_seed = [float(getattr(r, name)) for r in rows]
        values[name] = bootstrap_mean(per_seed)
        point, low, high = values[name]
        text[name] = f"{point:.1f}" if one else f"{point:.1f} [{low:.1f}, {high:.1f}]"
    return SummaryRow(adoption, estimator, len(rows), "contacts" if one else "seeds", values, text)
