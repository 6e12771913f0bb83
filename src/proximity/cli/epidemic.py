"""``proximity epidemic SCENARIO``: epidemic outcomes of app tracing (Covasim driven by the BLE simulator).

Needs the ``[epi]`` extra. Runs every adoption x seed (seeds paired across adoptions) on Dask like
``simulate``, with progress; Ctrl-C keeps the finished runs. Prints one line per adoption with 95 %
intervals over seeds (or --json); --out writes runs/series/summary CSV (Parquet with pyarrow), run.json
and the plots (averted.png, r_eff.png). Every input is checked before the first run starts.
"""

from __future__ import annotations

import argparse
import dataclasses
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


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "epidemic",
        help="epidemic outcomes of app tracing at given adoptions (Covasim + the BLE simulator)",
        description="Run an epidemic scenario (simulations/quang-ninh-*.toml) at each adoption and seed.",
    )
    parser.add_argument("scenario", metavar="SCENARIO", help="epidemic scenario file")
    parser.add_argument(
        "--adoption", type=adoptions_arg, metavar="P[,P...]", help="adoptions (default: the file's)"
    )
    parser.add_argument("--sweep", action="store_true", help="use the file's 0-100 %% sweep adoptions")
    parser.add_argument("--seeds", type=int, metavar="N", help="paired seeds 0..N-1 (default: the file's)")
    parser.add_argument(
        "--agents", type=int, metavar="N", help="simulate N agents, each standing for population/N"
    )
    parser.add_argument("--days", type=int, metavar="N", help="days to simulate (default: the file's)")
    parser.add_argument(
        "--beta-sensitivity", action="store_true", help="also run transmissibility x (1 -+ the file's range)"
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="a running Dask scheduler; default: a local cluster; 'inline': no Dask",
    )
    parser.add_argument("--workers", type=int, metavar="N", help="local cluster worker processes")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="write CSV/Parquet tables, run.json and plots"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        from proximity.epi.report import half_benefit, summarise, write_epidemic
        from proximity.epi.scenario import load_epidemic
        from proximity.epi.sweep import epidemic_sweep
    except ImportError as error:  # pragma: no cover - depends on the install
        raise CommandError(f"epidemic runs need the [epi] extra ({error.name} missing)") from None
    scenario = load_epidemic(args.scenario)
    changes = {
        k: v
        for k, v in (("agents", args.agents), ("days", args.days), ("seeds", args.seeds))
        if v is not None
    }
    if args.adoption is not None:
        changes["adoption"] = tuple(args.adoption)
    if changes:
        scenario = scenario.with_overrides(**changes)  # checked again: bad values fail here
    adoptions = list(scenario.sweep if args.sweep else scenario.adoption)
    if args.sweep and args.adoption is not None:
        raise CommandError("give --adoption or --sweep, not both")
    if 0.0 not in adoptions:
        adoptions.insert(0, 0.0)  # "averted" needs the paired no-app run
    factors = [1.0]
    if args.beta_sensitivity:
        factors += [1 - scenario.beta_sensitivity, 1 + scenario.beta_sensitivity]
    coupling = scenario.load_coupling()  # a missing or stale coupling file fails before any run
    if args.out is not None:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CommandError(f"cannot create --out {args.out}: {error.strerror}") from None
    if args.scheduler not in (None, "inline"):
        sys.stderr.write(f"using the Dask scheduler at {args.scheduler}\n")
    started = time.monotonic()
    try:
        result = epidemic_sweep(
            scenario,
            adoptions,
            scenario.seeds,
            beta_factors=factors,
            scheduler=args.scheduler,
            workers=args.workers,
            progress=lambda d, t: progress_bar(d, t, started, "epidemic", "epidemic:"),
        )
    except ImportError as error:
        raise CommandError(f"epidemic sweeps need the [epi] extra ({error.name} missing)") from None
    except OSError as error:
        raise CommandError(f"cannot reach the Dask scheduler {args.scheduler}: {error}") from None
    elapsed = time.monotonic() - started
    if args.out is not None and result.runs:
        metadata = {
            "scenario": dataclasses.asdict(scenario),
            "scenario_file": str(args.scenario),
            "adoptions": adoptions,
            "beta_factors": factors,
            "seeds": list(range(scenario.seeds)),
            "pop_scale": scenario.pop_scale,
            "coupling": dataclasses.asdict(coupling),
            "wall_seconds": round(elapsed, 1),
        }
        write_outputs(lambda: write_epidemic(result, args.out, metadata), args.out)
    code = interrupted_exit(result.interrupted, f"the {len(result.runs)} finished run(s)", result.missing)
    summary = summarise(result)
    half = half_benefit(result)
    if args.json:
        print_json({"summary": [s.to_dict() for s in summary], "half_benefit_adoption": list(half),
                    "pop_scale": scenario.pop_scale, "wall_seconds": round(elapsed, 1)})  # fmt: skip
        return code

    def cell(name: str, row: object, digits: int = 0) -> str:
        point, low, high = row.values[name]  # type: ignore[attr-defined]
        if point != point:
            return "-"
        if low != low:
            return f"{point:,.{digits}f}"
        return f"{point:,.{digits}f} [{low:,.{digits}f}, {high:,.{digits}f}]"

    print_table(
        ["adoption", "beta x", "seeds", "infections", "averted", "averted share", "peak/day",
         "quarantine d / averted"],
        [
            [s.adoption, s.beta_factor, s.seeds, cell("cum_infections", s), cell("averted", s),
             cell("averted_share", s, 3), cell("peak_infections", s),
             cell("extra_quarantine_per_averted", s, 1)]
            for s in summary
        ],
    )  # fmt: skip
    if half[0] == half[0]:
        sys.stdout.write(
            f"half of the full-adoption benefit at adoption {half[0]:.3f} [{half[1]:.3f}, {half[2]:.3f}]\n"
        )
    sys.stdout.write(
        f"{scenario.agents:,} agents for {scenario.population:,} people (pop_scale {scenario.pop_scale:g}), "
        f"{scenario.days} days; intervals: 95 % bootstrap over paired seeds\n"
    )
    return code
