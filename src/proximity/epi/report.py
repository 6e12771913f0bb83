"""Epidemic results: the per-adoption summary with 95 % intervals over paired seeds, tidy files, plots.

"Averted" compares each seed's run with the same seed's run at adoption 0 (the same population and
transmission draws), so its bootstrap resamples seeds as pairs.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from proximity.epi.run import EpiRun
from proximity.epi.sweep import EpiSweep

__all__ = ["SummaryRow", "half_benefit", "summarise", "write_epidemic"]

DRAWS = 4000
LEVEL = 0.95
Interval = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class SummaryRow:
    adoption: float
    beta_factor: float
    seeds: int
    values: dict[str, Interval]  # name -> (mean, low, high)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "adoption": self.adoption,
            "beta_factor": self.beta_factor,
            "seeds": self.seeds,
        }
        for name, (point, low, high) in self.values.items():
            out[name], out[f"{name}_low"], out[f"{name}_high"] = (
                None if math.isnan(x) else x for x in (point, low, high)
            )
        return out


def _boot(per_seed: np.ndarray[Any, Any], stat: Any, seed: int = 0) -> Interval:
    """(statistic, low, high) with a percentile bootstrap over seeds (rows of ``per_seed``)."""
    n = per_seed.shape[0]
    point = float(stat(per_seed))
    if n < 2:
        return point, math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws = np.array([stat(per_seed[rng.integers(0, n, n)]) for _ in range(DRAWS)], np.float64)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return point, math.nan, math.nan
    alpha = 1 - LEVEL
    return point, float(np.quantile(draws, alpha / 2)), float(np.quantile(draws, 1 - alpha / 2))


def _mean(col: int) -> Any:
    return lambda m: m[:, col].mean()


def _ratio(num: int, den: int) -> Any:
    def stat(m: np.ndarray[Any, Any]) -> float:
        d = m[:, den].mean()
        return float(m[:, num].mean() / d) if d > 0 else math.nan

    return stat


def summarise(result: EpiSweep) -> list[SummaryRow]:
    """One row per (adoption, beta factor), every figure with its interval over paired seeds."""
    groups: dict[tuple[float, float], dict[int, EpiRun]] = {}
    for (p, s, b), run in result.runs.items():
        groups.setdefault((p, b), {})[s] = run
    out = []
    for (p, b), runs in sorted(groups.items()):
        base = groups.get((0.0, b), {})
        seeds = sorted(s for s in runs if s in base) if base else sorted(runs)
        m = np.array(
            [
                [
                    runs[s].row.cum_infections,
                    runs[s].row.peak_infections,
                    runs[s].row.quarantine_person_days,
                    base[s].row.cum_infections - runs[s].row.cum_infections if base else math.nan,
                    (base[s].row.cum_infections - runs[s].row.cum_infections) / base[s].row.cum_infections
                    if base and base[s].row.cum_infections
                    else math.nan,
                    runs[s].row.quarantine_person_days - base[s].row.quarantine_person_days
                    if base
                    else math.nan,
                    runs[s].row.app_false_notified,
                    runs[s].row.app_notified,
                    *(getattr(runs[s].row, f"traced_share_{k}") for k in "hswc"),
                ]
                for s in seeds
            ],
            np.float64,
        )
        names = ["cum_infections", "peak_infections", "quarantine_person_days", "averted", "averted_share"]
        values = {name: _boot(m, _mean(k), seed=k) for k, name in enumerate(names)}
        values["extra_quarantine_per_averted"] = _boot(m, _ratio(5, 3), seed=7)
        values["false_share_of_app_quarantine"] = (
            _boot(m, _ratio(6, 7), seed=8) if m[:, 7].sum() else (math.nan,) * 3
        )
        for k, layer in enumerate("hswc"):
            values[f"traced_share_{layer}"] = _boot(m, lambda x, c=8 + k: np.nanmean(x[:, c]), seed=9 + k)
        out.append(SummaryRow(p, b, len(seeds), values))
    return out


def half_benefit(result: EpiSweep, beta_factor: float = 1.0) -> Interval:
    """The adoption at which mean infections averted first reach half of those at adoption 1 (linear
    interpolation along the swept adoptions), with a bootstrap over paired seeds."""
    runs = {(p, s): r for (p, s, b), r in result.runs.items() if b == beta_factor}
    adoptions = sorted({p for p, _ in runs})
    if 0.0 not in adoptions or 1.0 not in adoptions or len(adoptions) < 3:
        return math.nan, math.nan, math.nan
    seeds = sorted(s for s in {s for _, s in runs} if all((p, s) in runs for p in adoptions))
    base = np.array([runs[(0.0, s)].row.cum_infections for s in seeds])
    averted = np.array(
        [[base[i] - runs[(p, s)].row.cum_infections for p in adoptions] for i, s in enumerate(seeds)]
    )

    def crossing(m: np.ndarray[Any, Any]) -> float:
        curve = m.mean(axis=0)
        target = curve[-1] / 2
        if curve[-1] <= 0:
            return math.nan
        k = int(np.argmax(curve >= target))
        if k == 0:
            return adoptions[0]
        x0, x1, y0, y1 = adoptions[k - 1], adoptions[k], curve[k - 1], curve[k]
        return float(x0 + (target - y0) / (y1 - y0) * (x1 - x0)) if y1 != y0 else float(x1)

    return _boot(averted, crossing, seed=11)


def write_epidemic(result: EpiSweep, directory: Path, metadata: dict[str, Any]) -> list[Path]:
    """runs.csv (one row per run), series.csv (one row per run and day), summary.csv, run.json, the
    Parquet twins where pyarrow is installed, and the plots; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    runs = [{**r.row.to_dict(), "beta_factor": task[2]} for task, r in result.runs.items()]
    series = [
        {"adoption": p, "seed": s, "beta_factor": b, "day": day,
         **{k: float(v[day]) for k, v in r.series.items()}}
        for (p, s, b), r in result.runs.items()
        for day in range(len(next(iter(r.series.values()))))
    ]  # fmt: skip
    summary = [row.to_dict() for row in summarise(result)]
    for name, rows in (("runs", runs), ("series", series), ("summary", summary)):
        paths.append(_csv(rows, directory / f"{name}.csv"))
        parquet = _parquet(rows, directory / f"{name}.parquet")
        if parquet is not None:
            paths.append(parquet)
    about = directory / "run.json"
    about.write_text(
        json.dumps({**metadata, "half_benefit_adoption": half_benefit(result)}, indent=2, default=str) + "\n"
    )
    paths.append(about)
    paths += plot_epidemic(result, directory)
    return paths


def _csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["adoption"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _parquet(rows: Sequence[dict[str, Any]], path: Path) -> Path | None:
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        return None
    pq.write_table(pa.Table.from_pylist(list(rows)), path)
    return path


def plot_epidemic(result: EpiSweep, directory: Path) -> list[Path]:
    """averted.png (infections averted vs adoption, 95 % intervals) and r_eff.png (mean R_eff by day)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in summarise(result) if r.beta_factor == 1.0]
    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r.adoption for r in rows]
    mean, low, high = (np.array([r.values["averted"][k] for r in rows]) for k in range(3))
    ax.plot(xs, mean, "o-", label="mean over paired seeds")
    low, high = np.where(np.isnan(low), mean, low), np.where(np.isnan(high), mean, high)
    ax.fill_between(xs, low, high, alpha=0.3, label="95 % interval")
    for p in (0.01, 0.272, 0.58):
        ax.axvline(p, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("adoption (share of everyone carrying the app)")
    ax.set_ylabel("infections averted vs no app")
    ax.legend()
    fig.tight_layout()
    paths.append(directory / "averted.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    by_p: dict[float, list[np.ndarray[Any, Any]]] = {}
    for (p, _, b), run in result.runs.items():
        if b == 1.0:
            by_p.setdefault(p, []).append(run.series["r_eff"])
    for p, curves in sorted(by_p.items()):
        ax.plot(np.nanmean(np.vstack(curves), axis=0), label=f"adoption {p:g}")
    ax.axhline(1.0, color="grey", lw=0.6)
    ax.set_xlabel("day")
    ax.set_ylabel("R_eff (mean over seeds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(directory / "r_eff.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths
