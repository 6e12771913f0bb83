"""``proximity evaluate CSV... [--fit CSV...] [--leave-one-dataset-out | --cross-validate]``: score them."""

from __future__ import annotations

import argparse
import gzip
import math
import sys
from pathlib import Path
from typing import Any

from proximity.cli.common import CommandError, print_json, print_table
from proximity.errors import RecordingFormatError
from proximity.estimation.estimators import DEFAULT_ESTIMATOR
from proximity.estimation.evaluation import (
    NESTED,
    Session,
    cross_validate,
    evaluate_files,
    evaluation_names,
    leave_one_dataset_out,
    parse_recordings,
)
from proximity.estimation.presets import PRESETS
from proximity.estimation.recordings import fallback_counts
from proximity.estimation.scoring import BOOTSTRAP_ROUNDS, TC4TL_DISTANCES

__all__ = ["dataset_name", "read_recordings", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score close-contact estimators on RSSI recordings at known distances (AUC, TC4TL nDCF)",
        description=(
            "Score estimators on recorded sessions (.csv or .csv.gz; one encounter per (config, session) "
            "of a file). A session is a positive at d when its distance <= d + 0.05 m (d = 1.2, 1.8, 3.0 m). "
            "Every learned parameter and decision threshold comes from the fit data only (without any: "
            "every estimator's shipped defaults). One table per scored file, plus one pooled table in "
            "which every file weighs the same."
        ),
    )
    parser.add_argument("csv", nargs="+", metavar="CSV", help="recordings to score (one table each)")
    parser.add_argument(
        "--fit", nargs="+", metavar="CSV", help="recordings to fit parameters and thresholds on"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--leave-one-dataset-out",
        action="store_true",
        help="score each CSV by models and thresholds fitted on all the other files (CSVs and --fit files); "
        f"adds {NESTED}, the default chosen by leave-one-dataset-out without the held-out file",
    )
    mode.add_argument(
        "--cross-validate",
        action="store_true",
        help="leave one configuration of one CSV out at a time: fit on the others, decide on it, and pool "
        "every held-out decision into one score per estimator (no --fit)",
    )
    parser.add_argument(
        "--estimator",
        default="all",
        metavar="NAME|all",
        help=f"one of {', '.join(evaluation_names())}, or all (default: all; the default estimator is "
        f"{DEFAULT_ESTIMATOR})",
    )
    parser.add_argument("--json", action="store_true", help="a JSON array, one object per file and estimator")
    parser.set_defaults(handler=_run)


def dataset_name(path: str) -> str:
    """A file's dataset name: its name without .csv / .csv.gz."""
    return Path(path).name.removesuffix(".gz").removesuffix(".csv")


def read_recordings(path: str) -> list[Session]:
    """Read a recordings CSV (gzip if it ends in .gz) at the edge and parse it in the core."""
    file = Path(path)
    try:
        if file.suffix == ".gz":
            with gzip.open(file, "rt", encoding="utf-8", newline="") as handle:
                text = handle.read()
        else:
            text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(f"no such recordings file: {path}") from None
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise CommandError(f"cannot read recordings {path}: {error}") from None
    try:
        return parse_recordings(text, dataset_name(path))
    except RecordingFormatError as error:
        raise RecordingFormatError(f"{path}: {str(error).split(': ', 1)[1]}") from None


def _read_all(paths: list[str]) -> dict[str, list[Session]]:
    files: dict[str, list[Session]] = {}
    for path in paths:
        name = dataset_name(path)
        if name in files:
            raise CommandError(f"two files are named {name!r}: give each dataset once")
        print(f"reading {path} ...", file=sys.stderr)
        files[name] = read_recordings(path)
    return files


def _run(args: argparse.Namespace) -> int:
    names = evaluation_names() if args.estimator == "all" else [args.estimator]
    if args.estimator != "all" and args.estimator not in evaluation_names():
        raise CommandError(
            f"unknown estimator {args.estimator!r}; choose from {', '.join(evaluation_names())}, all"
        )
    if args.cross_validate and (args.fit or len(args.csv) > 1):
        raise CommandError("--cross-validate fits on the other configurations of one CSV itself; drop --fit")
    files = _read_all(args.csv)  # everything is read (and checked) before anything is fitted
    fit_files = _read_all(args.fit or [])
    if set(files) & set(fit_files) and args.leave_one_dataset_out:
        raise CommandError("with --leave-one-dataset-out a file is either scored or --fit, not both")
    if args.cross_validate:
        return _cross_validate(args, next(iter(files.values())), names)
    if args.leave_one_dataset_out:
        if len(files) + len(fit_files) < 2:
            raise CommandError("--leave-one-dataset-out needs at least 2 files")
        print(f"leave-one-dataset-out: {len(files)} scored, {len(fit_files)} fit-only", file=sys.stderr)
        results = leave_one_dataset_out(files, fit_files, names, progress=_progress)
    else:
        fit = [s for sessions in fit_files.values() for s in sessions] or None
        keys = {s.key for sessions in files.values() for s in sessions}
        overlap = keys & {s.key for s in fit or ()}
        if overlap:
            shared = ", ".join(sorted(f"{f}/{c}" for f, c in overlap)[:5])
            print(f"warning: fit and scored data share configuration(s) {shared}", file=sys.stderr)
        print("fitted on " + (", ".join(fit_files) if fit else "nothing (shipped defaults)"), file=sys.stderr)
        results = evaluate_files(files, fit, names, progress=_progress)
    for row in results:
        row["fit_files"] = sorted(fit_files)
    if args.json:
        print_json(results)
        return 0
    _print_fallbacks(files, fit_files)
    for file in [*files, "pooled"]:
        rows = [r for r in results if r["file"] == file]
        if rows:
            how = "held out, fitted on all other files" if args.leave_one_dataset_out else (
                "fitted on " + ", ".join(fit_files) if fit_files else "shipped defaults")  # fmt: skip
            title = "pooled, every file weighing the same" if file == "pooled" else file
            print(f"\n{title} ({rows[0]['sessions']} sessions; {how}):")
            _print_results(rows)
    return 0


def _progress(name: str) -> None:
    print(f"  {name} ...", file=sys.stderr)


def _print_fallbacks(*groups: dict[str, list[Session]]) -> None:
    """How each file's phones were calibrated (sessions per receiver / beacon lookup)."""
    print("calibration (sessions: receiver | beacon):")
    for files in groups:
        for name, sessions in files.items():
            counts = fallback_counts(sessions)
            parts = [
                ", ".join(f"{how} {n}" for how, n in sorted(counts[role].items()))
                for role in ("receiver", "beacon")
            ]
            print(f"  {name}: {parts[0]} | {parts[1]}")


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"


def _print_results(results: list[dict[str, Any]]) -> None:
    headers = ["estimator", "AUC@1.8", *(f"nDCF@{d}" for d in TC4TL_DISTANCES), "95% CI @1.8"]
    headers += ["TPR@1.8", "FPR@1.8"]
    rows = [
        [r["name"] + (" (default)" if r.get("default") else ""), _fmt(r["auc"])]
        + [_fmt(r[f"ndcf_{d}"]) for d in TC4TL_DISTANCES]
        + ["n/a" if not math.isfinite(r["ndcf_1.8_ci"][0]) else "{:.2f}-{:.2f}".format(*r["ndcf_1.8_ci"]),
           _fmt(r["tpr_1.8"]), _fmt(r["fpr_1.8"])]
        for r in results
    ]  # fmt: skip
    print_table(headers, rows)
    unit = results[0]["bootstrap_unit"] if results else "session"
    print(f"(95% CI: {BOOTSTRAP_ROUNDS:,} bootstrap redraws of the scored data, by {unit})")
    for row in results:
        if row["name"] == NESTED and "chosen" in row:
            chosen = row["chosen"] if row["file"] == "pooled" else {row["file"]: row["chosen"][row["file"]]}
            print(f"{NESTED} chose: " + ", ".join(f"{v} (without {k})" for k, v in chosen.items()))
    _print_versus(results)


def _print_versus(results: list[dict[str, Any]]) -> None:
    """The default estimator against the best preset and the mean-attenuation baseline at 1.8 m."""
    default = next((r for r in results if r.get("default") and "versus" in r), None)
    presets = [r for r in results if r["name"] in PRESETS and math.isfinite(r["ndcf_1.8"])]
    if default is None or not presets:
        return
    best = min(presets, key=lambda r: r["ndcf_1.8"])
    for other in (best["name"], "mean-attenuation"):
        diff = next((v for v in default["versus"] if v["name"] == other and v["distance"] == 1.8), None)
        if diff is None or not math.isfinite(diff["low"]):
            continue
        verdict = "lower" if diff["difference"] < 0 else "not lower" if diff["difference"] > 0 else "tied"
        real = "the interval excludes 0" if diff["low"] > 0 or diff["high"] < 0 else "the interval spans 0"
        label = f"the best preset at 1.8 m ({other})" if other == best["name"] else other
        print(
            f"{default['name']} vs {label}: nDCF {verdict}, {diff['difference']:+.3f} (95% CI "
            f"{diff['low']:+.2f} to {diff['high']:+.2f}; {real}); "
            f"lower in {diff['share_lower']:.0%} of redraws"
        )


def _cross_validate(args: argparse.Namespace, sessions: list[Session], names: list[str]) -> int:
    configs = sorted({s.config for s in sessions})
    if len(configs) < 2:
        raise CommandError("--cross-validate needs recordings of at least 2 configurations")
    print(
        f"leave-one-configuration-out over {len(configs)} configurations ({len(sessions)} sessions)",
        file=sys.stderr,
    )
    results = cross_validate(sessions, names, progress=_progress)
    for row in results:
        row["configs"] = configs
        row["file"] = sessions[0].dataset
    if args.json:
        print_json(results)
        return 0
    print(f"each of {len(configs)} configurations scored by a fit on the other {len(configs) - 1}, pooled:")
    print(f"configurations: {', '.join(configs)}")
    _print_results(results)
    return 0
