"""``proximity evaluate CSV [--fit CSV | --cross-validate] [--estimator NAME|all] [--json]``: score them."""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path
from typing import Any

from proximity.cli.common import CommandError, print_json, print_table
from proximity.estimation.estimators import DEFAULT_ESTIMATOR, estimator_names
from proximity.estimation.evaluation import Session, cross_validate, evaluate, parse_recordings
from proximity.estimation.presets import PRESETS
from proximity.estimation.scoring import BOOTSTRAP_ROUNDS, TC4TL_DISTANCES


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score close-contact estimators on RSSI recordings at known distances (AUC, TC4TL nDCF)",
        description=(
            "Score estimators on recorded sessions (.csv or .csv.gz; one encounter per (config, session)). "
            "A session is a positive at d when its distance <= d + 0.05 m (d = 1.2, 1.8, 3.0 m). Every "
            "learned parameter and decision threshold comes from --fit only (without it: built-in defaults)."
        ),
    )
    parser.add_argument("csv", metavar="CSV", help="recordings to score")
    parser.add_argument("--fit", metavar="CSV", help="recordings to fit parameters and thresholds on")
    parser.add_argument(
        "--cross-validate",
        action="store_true",
        help="leave one configuration of CSV out at a time: fit on the others, decide on it, and pool every "
        "held-out decision into one score per estimator (no --fit)",
    )
    parser.add_argument(
        "--estimator",
        default="all",
        metavar="NAME|all",
        help=f"one of {', '.join(estimator_names())}, or all (default: all; the default estimator is "
        f"{DEFAULT_ESTIMATOR})",
    )
    parser.add_argument("--json", action="store_true", help="a JSON array, one object per estimator")
    parser.set_defaults(handler=_run)


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
    return parse_recordings(text)


def _run(args: argparse.Namespace) -> int:
    names = estimator_names() if args.estimator == "all" else [args.estimator]
    if args.estimator != "all" and args.estimator not in estimator_names():
        raise CommandError(
            f"unknown estimator {args.estimator!r}; choose from {', '.join(estimator_names())}, all"
        )
    if args.cross_validate and args.fit:
        raise CommandError("--cross-validate fits on the other configurations of CSV itself; drop --fit")
    print(f"reading {args.csv} ...", file=sys.stderr)
    sessions = read_recordings(args.csv)
    if args.cross_validate:
        return _cross_validate(args, sessions, names)
    fit = None
    if args.fit:
        print(f"reading {args.fit} ...", file=sys.stderr)
        fit = read_recordings(args.fit)
    score_configs = sorted({s.config for s in sessions})
    fit_configs = sorted({s.config for s in fit}) if fit else []
    print(
        f"scoring {len(sessions)} sessions of {len(score_configs)} configurations"
        + (f", fitted on {len(fit or [])} sessions of {len(fit_configs)} other configurations" if fit else
           " with built-in defaults (no --fit)"),
        file=sys.stderr,
    )  # fmt: skip
    overlap = set(score_configs) & set(fit_configs)
    if overlap:
        print(
            f"warning: fit and scored data share configuration(s) {', '.join(sorted(overlap))}",
            file=sys.stderr,
        )
    results = evaluate(sessions, fit, names, progress=_progress)
    for row in results:
        row["score_configs"] = score_configs
        row["fit_configs"] = fit_configs
    if args.json:
        print_json(results)
        return 0
    print(f"scored configurations: {', '.join(score_configs)}")
    print(f"fitted on: {', '.join(fit_configs) if fit_configs else 'nothing (built-in defaults)'}")
    _print_results(results)
    return 0


def _progress(name: str) -> None:
    print(f"  {name} ...", file=sys.stderr)


def _print_results(results: list[dict[str, Any]]) -> None:
    headers = ["estimator", "AUC@1.8", *(f"nDCF@{d}" for d in TC4TL_DISTANCES), "95% CI @1.8"]
    headers += ["TPR@1.8", "FPR@1.8"]
    rows = [
        [r["name"], round(r["auc"], 3)]
        + [round(r[f"ndcf_{d}"], 3) for d in TC4TL_DISTANCES]
        + ["{:.2f}-{:.2f}".format(*r["ndcf_1.8_ci"]), round(r["tpr_1.8"], 3), round(r["fpr_1.8"], 3)]
        for r in results
    ]
    print_table(headers, rows)
    unit = results[0]["bootstrap_unit"] if results else "session"
    print(f"(95% CI: {BOOTSTRAP_ROUNDS:,} bootstrap redraws of the scored data, by {unit})")
    _print_versus(results)


def _print_versus(results: list[dict[str, Any]]) -> None:
    """The default estimator against the best preset at 1.8 m: the difference and whether it is real."""
    default = next((r for r in results if r["name"] == DEFAULT_ESTIMATOR and "versus" in r), None)
    presets = [r for r in results if r["name"] in PRESETS]
    if default is None or not presets:
        return
    best = min(presets, key=lambda r: r["ndcf_1.8"])
    diff = next(v for v in default["versus"] if v["name"] == best["name"] and v["distance"] == 1.8)
    verdict = "lower" if diff["difference"] < 0 else "not lower" if diff["difference"] > 0 else "tied"
    real = "the interval excludes 0" if diff["low"] > 0 or diff["high"] < 0 else "the interval spans 0"
    print(
        f"{DEFAULT_ESTIMATOR} vs the best preset at 1.8 m ({best['name']}): nDCF {verdict}, "
        f"{diff['difference']:+.3f} (95% CI {diff['low']:+.2f} to {diff['high']:+.2f}; {real}); "
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
    if args.json:
        print_json(results)
        return 0
    print(f"each of {len(configs)} configurations scored by a fit on the other {len(configs) - 1}, pooled:")
    print(f"configurations: {', '.join(configs)}")
    _print_results(results)
    return 0
