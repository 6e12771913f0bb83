"""``proximity simulate SCENARIO``: crowd simulations on the real core, swept over adoption and seeds.

Needs the ``[sim]`` extra (Dask, matplotlib). Prints a table (or --json: one object per adoption x
estimator x seed); --out writes results.csv (and results.parquet with pyarrow), pair_scores.csv,
fraction_traced.png and roc.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from proximity.cli.common import (
    CommandError,
    adoptions_arg,
    interrupted_exit,
    print_json,
    print_table,
    progress_bar,
    write_outputs,
)

__all__ = ["register"]


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate a crowd with phones running the real schemes, log, matcher and estimators",
        description="Simulate a scenario (TOML) and report who gets traced, per adoption x estimator x seed.",
    )
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario file (see simulations/*.toml)")
    parser.add_argument(
        "--adoption", type=adoptions_arg, metavar="P[,P...]", help="adoptions (default: the file's)"
    )
    parser.add_argument(
        "--estimator", type=_names, metavar="NAME[,...]", help="estimators (default: the file's)"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=10,
        metavar="N",
        help="run seeds 0..N-1 (default 10: intervals over seeds)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="a running Dask scheduler (tcp://host:port); default: a local cluster; 'inline': no Dask",
    )
    parser.add_argument("--workers", type=int, metavar="N", help="local cluster worker processes")
    parser.add_argument(
        "--shards",
        type=int,
        metavar="N",
        help="split each run's phones into N Dask tasks (same results; default: the file's shards, 1)",
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="write results.csv, pair scores and plots")
    parser.add_argument("--json", action="store_true", help="print a JSON array of result rows")
    parser.set_defaults(handler=run)


def _progress_bar(done: int, total: int, started: float) -> None:
    progress_bar(done, total, started, "simulating", "simulated")


def run(args: argparse.Namespace) -> int:
    from proximity.estimation import estimator_names

    try:
        from proximity.sim.scenario import load_scenario
        from proximity.sim.sweep import sweep
    except ImportError as error:  # pragma: no cover - depends on the install
        raise CommandError(f"simulation needs the [sim] extra ({error.name} missing)") from None
    if args.seeds < 1:
        raise CommandError(f"--seeds must be at least 1, got {args.seeds}")
    for option in ("workers", "shards"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            raise CommandError(f"--{option} must be at least 1, got {getattr(args, option)}")
    scenario = load_scenario(args.scenario)
    estimators = args.estimator or list(scenario.estimators)
    unknown = [name for name in estimators if name not in estimator_names()]
    if unknown:
        raise CommandError(f"unknown estimator {unknown[0]!r}; choose from {', '.join(estimator_names())}")
    adoptions = args.adoption or list(scenario.adoption)
    if args.out is not None:  # fail before simulating, not after
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CommandError(f"cannot create --out {args.out}: {error.strerror}") from None
    started = time.monotonic()
    if args.scheduler not in (None, "inline"):
        sys.stderr.write(f"using the Dask scheduler at {args.scheduler}\n")
    try:
        result = sweep(
            scenario,
            adoptions,
            estimators,
            args.seeds,
            scheduler=args.scheduler,
            workers=args.workers,
            progress=lambda d, t: _progress_bar(d, t, started),
            shards=args.shards,
        )
    except ImportError as error:
        raise CommandError(f"simulation sweeps need the [sim] extra ({error.name} missing)") from None
    except OSError as error:
        raise CommandError(f"cannot reach the Dask scheduler {args.scheduler}: {error}") from None
    except ValueError as error:  # a scenario the model cannot lay out (e.g. more seated agents than seats)
        raise CommandError(f"scenario {args.scenario}: {error}") from None
    if args.out is not None:
        import dataclasses

        from proximity.sim.report import write_results

        metadata = {
            "scenario": dataclasses.asdict(scenario),
            "scenario_file": str(args.scenario),
            "adoptions": adoptions,
            "estimators": estimators,
            "seeds": list(range(args.seeds)),
        }
        write_outputs(lambda: write_results(result, args.out, metadata), args.out)
    kept = f"the {len(result.rows)} result row(s) of the runs that had finished"
    code = interrupted_exit(result.interrupted, kept, result.missing)
    if args.json:
        print_json([row.to_dict() for row in result.rows])
        return code
    from proximity.sim.summary import summarise

    # one line per adoption x estimator: each figure with its 95 % interval (over seeds, or with one
    # seed over contacts, exact); "k of N (<= u)" where a count is tiny
    names = ("fraction_traced", "traced_strangers", "traced_companions", "notified_share")
    counts = ("false_positives", "false_notifications")
    print_table(
        ["adoption", "estimator", "seeds", "interval", *names, *counts],
        [
            [s.adoption, s.estimator, s.seeds, s.interval, *(s.text[k] for k in names + counts)]
            for s in summarise(result.rows)
        ],
    )
    return code
