"""Tidy results on disk: results.csv (one row per adoption x estimator x seed) and, when pyarrow is
installed (the [sim] extra), the same table as results.parquet; the contact-level table as
contacts.csv and contacts.parquet; pair scores; PNG plots."""

from __future__ import annotations

import csv
import importlib
import json
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from proximity.sim.run import ResultRow
from proximity.sim.summary import summarise
from proximity.sim.sweep import SweepResult

__all__ = ["plot_fraction_traced", "plot_roc", "write_results"]


def write_results(result: SweepResult, directory: Path, metadata: dict[str, Any] | None = None) -> list[Path]:
    """results.csv, pair_scores.csv, summary.csv, contacts.csv and the two plots, and run.json (what
    produced them: ``metadata``, e.g. the scenario with its channel and the seeds, plus the package
    version); returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "results.csv", directory / "pair_scores.csv", directory / "summary.csv"]
    about = directory / "run.json"
    about.write_text(
        json.dumps({"package_version": _version(), **(metadata or {})}, indent=2, default=str) + "\n"
    )
    paths.append(about)
    rows = [r.to_dict() for r in result.rows]
    with paths[0].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["scenario"])
        writer.writeheader()
        writer.writerows(rows)
    summary = [s.to_dict() for s in summarise(result.rows)]
    with paths[2].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(summary[0]) if summary else ["adoption"])
        writer.writeheader()
        writer.writerows(summary)
    parquet = write_parquet(result.rows, directory / "results.parquet")
    if parquet is not None:
        paths.append(parquet)
    with paths[1].open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["estimator", "adoption", "seed", "score", "true_contact"])
        for (name, p, s), (scores, labels) in sorted(result.scores.items()):
            for score, label in zip(scores.tolist(), labels.tolist(), strict=True):
                out.writerow([name, p, s, score, int(label)])
    if result.contacts:
        paths.append(write_contacts(result.contacts, directory / "contacts.csv"))
        contacts = write_contacts_parquet(result.contacts, directory / "contacts.parquet")
        if contacts is not None:
            paths.append(contacts)
    paths.append(plot_fraction_traced(result.rows, directory / "fraction_traced.png"))
    paths.append(plot_roc(result, directory / "roc.png"))
    return paths


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("proximity-tracing")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def write_contacts(tables: dict[tuple[float, int], dict[str, np.ndarray]], path: Path) -> Path:
    """The contact-level table of every run (sim/contacts.py), one CSV with adoption and seed columns."""
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        header: list[str] | None = None
        for (adoption, seed), table in sorted(tables.items()):
            names = list(table)
            if header is None:
                header = ["adoption", "seed", *names]
                out.writerow(header)
            size = len(next(iter(table.values()))) if table else 0
            columns = [table[name].tolist() for name in names]
            for k in range(size):
                out.writerow([adoption, seed, *(c[k] for c in columns)])
    return path


def _pyarrow() -> tuple[Any, Any] | None:
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        return None


def write_contacts_parquet(tables: dict[tuple[float, int], dict[str, np.ndarray]], path: Path) -> Path | None:
    """The contact-level table as Parquet, the same rows and columns as contacts.csv, each column typed as
    its numpy array (NaN stays NaN); None when pyarrow is not installed."""
    arrow = _pyarrow()
    if arrow is None:
        return None
    pa, pq = arrow
    runs = sorted(tables.items())
    names = list(runs[0][1]) if runs else []
    size = [len(next(iter(t.values()))) if t else 0 for _, t in runs]
    columns: dict[str, Any] = {
        "adoption": np.repeat([float(p) for (p, _), _ in runs], size).astype(np.float64),
        "seed": np.repeat([int(s) for (_, s), _ in runs], size).astype(np.int64),
    }
    for name in names:
        columns[name] = np.concatenate([t[name] for _, t in runs])
    pq.write_table(pa.table({k: pa.array(v) for k, v in columns.items()}), path)
    return path


def write_parquet(rows: Sequence[ResultRow], path: Path) -> Path | None:
    """The results table as Parquet (typed columns; NaN -> null); None when pyarrow is not installed."""
    arrow = _pyarrow()
    if arrow is None:
        return None
    pa, pq = arrow
    names = [f.name for f in fields(ResultRow)]
    kinds = {f.name: f.type for f in fields(ResultRow)}
    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}
    records = [r.to_dict() for r in rows]
    schema = pa.schema([(name, types[str(kinds[name])]) for name in names])
    table = pa.table({name: [rec[name] for rec in records] for name in names}, schema=schema)
    pq.write_table(table, path)
    return path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fraction_traced(rows: Sequence[ResultRow], path: Path) -> Path:
    """Mean fraction traced with its 95 % interval (bootstrap over seeds; one seed: exact over contacts)
    vs adoption per estimator, against p^2 and p^2 x 0.8."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    grid = np.linspace(0.0, 1.0, 101)
    ax.plot(grid, grid**2, color="0.3", linestyle="--", label="p² (both carry the app)")
    ax.plot(grid, 0.8 * grid**2, color="0.6", linestyle=":", label="0.8 p² (OpenABM)")
    summary = summarise(rows)
    for name in sorted({r.estimator for r in rows}):
        mine = [
            s
            for s in summary
            if s.estimator == name and s.values["fraction_traced"][0] == s.values["fraction_traced"][0]
        ]
        if not mine:
            continue
        ps = [s.adoption for s in mine]
        point, low, high = (np.array([s.values["fraction_traced"][k] for s in mine]) for k in range(3))
        yerr = [np.nan_to_num(point - low), np.nan_to_num(high - point)]
        ax.errorbar(
            ps, point, yerr=yerr, marker="o", capsize=3, label=f"{name} (95 % interval, {mine[0].interval})"
        )
    scenario = rows[0].scenario if rows else ""
    ax.set(
        xlabel="adoption p (fraction of agents with the app)",
        ylabel="fraction of true contacts traced",
        title=f"{scenario}: contacts traced vs adoption",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _roc(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, kind="stable")
    y = labels[order]
    tpr = np.concatenate(([0.0], np.cumsum(y) / max(int(y.sum()), 1)))
    fpr = np.concatenate(([0.0], np.cumsum(~y) / max(int((~y).sum()), 1)))
    return fpr, tpr


def plot_roc(result: SweepResult, path: Path) -> Path:
    """ROC of each estimator over all app-user pairs that heard each other (all runs pooled): the pooled
    pair figure, not the per-encounter AUC at fixed distances that recordings give (docs/simulation.md)."""
    from proximity.estimation import roc_auc

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="chance")
    for name in sorted({key[0] for key in result.scores}):
        parts = [v for k, v in sorted(result.scores.items()) if k[0] == name]
        scores = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
        labels = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.bool_)
        if not (labels.any() and (~labels).any()):
            continue
        fpr, tpr = _roc(scores, labels)
        ax.plot(fpr, tpr, label=f"{name} (pooled pair AUC {roc_auc(scores, labels):.2f})")
    ax.set(
        xlabel="false positive rate", ylabel="true positive rate", title="Pooled pairs (not per encounter)"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
