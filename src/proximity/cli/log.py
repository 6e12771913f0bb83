"""``proximity log stats|prune|export|reindex|wipe --db FILE``: the SQLite encounter log."""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from pathlib import Path
from typing import TextIO

from proximity.cli.common import CommandError, print_json, print_table, time_arg
from proximity.errors import FileWriteError
from proximity.log import DEFAULT_RETENTION_DAYS, EncounterLog
from proximity.times import format_utc

EXPORT_HEADER = ("id", "time", "rssi", "metadata", "scheme")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    log = subparsers.add_parser(
        "log", help="inspect, prune, export, reindex or wipe the encounter log (SQLite)"
    )
    actions = log.add_subparsers(dest="action", required=True, metavar="ACTION")

    stats = actions.add_parser("stats", help="how many sightings and distinct IDs the log holds")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(handler=_stats)

    prune = actions.add_parser(
        "prune", help=f"delete sightings older than N days (default {DEFAULT_RETENTION_DAYS})"
    )
    prune.add_argument("--days", type=_days_arg, default=DEFAULT_RETENTION_DAYS, metavar="N")
    prune.add_argument(
        "--now", type=time_arg, metavar="TIME", help="reference time (default: the wall clock)"
    )
    prune.add_argument("--json", action="store_true")
    prune.set_defaults(handler=_prune)

    export = actions.add_parser(
        "export", help="write the observed IDs as CSV (what `match --observed` reads)"
    )
    export.add_argument("--out", metavar="FILE", help="output file (default: standard output)")
    export.set_defaults(handler=_export)

    reindex = actions.add_parser(
        "reindex",
        help="rebuild the packed IDs `match --log` reads first (after another program changed sightings)",
    )
    reindex.add_argument("--json", action="store_true")
    reindex.set_defaults(handler=_reindex)

    wipe = actions.add_parser("wipe", help="delete every sighting and exposure (asks first)")
    wipe.add_argument("--yes", action="store_true", help="do not ask")
    wipe.set_defaults(handler=_wipe)

    for parser in (stats, prune, export, reindex, wipe):
        parser.add_argument(
            "--db",
            metavar="FILE",
            default=os.environ.get("PROXIMITY_DB"),
            help="the log file (default: $PROXIMITY_DB)",
        )


def _open(args: argparse.Namespace, *, check: bool = False) -> EncounterLog:
    if not args.db:
        raise CommandError("no encounter log given; pass --db FILE (or set PROXIMITY_DB)")
    return EncounterLog(args.db, create=False, check=check)


def _stats(args: argparse.Namespace) -> int:
    with _open(args, check=True) as log:
        stats = log.stats()
        in_step = log.id_store_in_step()
    behind = [scheme for scheme, ok in in_step.items() if not ok]
    if args.json:
        print_json(
            {
                "path": args.db,
                "sightings": stats.sightings,
                "distinct_ids": stats.distinct_ids,
                "by_scheme": dict(stats.by_scheme),
                "first_time": stats.first_time,
                "last_time": stats.last_time,
                "exposures": stats.exposures,
                "schema_version": stats.schema_version,
                "id_store_in_step": in_step,
            }
        )
        return 0
    span = (
        f"{format_utc(stats.first_time)} .. {format_utc(stats.last_time)}"
        if stats.first_time is not None and stats.last_time is not None
        else "-"
    )
    print_table(
        ["what", "value"],
        [
            ["log", args.db],
            ["sightings", stats.sightings],
            *[[f"  {scheme}", count] for scheme, count in sorted(stats.by_scheme.items())],
            ["distinct IDs", stats.distinct_ids],
            ["time span", span],
            ["exposures", stats.exposures],
            ["schema version", stats.schema_version],
            [
                "packed IDs",
                f"out of step: {', '.join(behind)} (run `proximity log reindex`)" if behind else "ok",
            ],
        ],
    )
    return 0


def _reindex(args: argparse.Namespace) -> int:
    with _open(args) as log:
        behind = sorted(scheme for scheme, ok in log.id_store_in_step().items() if not ok)
        packed = log.reindex()
        in_step = log.id_store_in_step()
    if args.json:
        print_json({"path": args.db, "sightings": packed, "was_out_of_step": behind, "in_step": in_step})
    else:
        was = f"; it was out of step for {', '.join(behind)}" if behind else "; it was already in step"
        print(f"packed the IDs of {packed:,} sighting(s) in {args.db}{was}")
    return 0 if all(in_step.values()) else 1


def _days_arg(text: str) -> float:
    """argparse type for --days: a finite non-negative number of days."""
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"days must be a number, got {text!r}") from None
    if not (math.isfinite(days) and days >= 0):
        raise argparse.ArgumentTypeError(f"days must be a finite non-negative number, got {text!r}")
    return days


def _prune(args: argparse.Namespace) -> int:
    with _open(args) as log:
        report = log.prune(args.days, now=args.now)
    if args.json:
        print_json({"sightings": report.sightings, "exposures": report.exposures, "cutoff": report.cutoff})
    else:
        try:
            cutoff = format_utc(report.cutoff)
        except (ValueError, OverflowError, OSError):  # far outside the calendar (e.g. --days 1e300)
            cutoff = f"unix time {report.cutoff:g}"
        print(f"removed {report.sightings} sightings and {report.exposures} exposures older than {cutoff}")
    return 0


def write_export(log: EncounterLog, out: TextIO) -> int:
    """The observed-ID CSV: id (hex), time (unix s), rssi (dBm or empty), metadata (AEM hex), scheme."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_HEADER)
    rows = 0
    for s in log.iter_sightings():
        writer.writerow(
            [
                s.id.hex(),
                repr(s.time),
                "" if s.rssi is None else s.rssi,
                s.metadata.hex() if s.metadata else "",
                s.scheme,
            ]
        )
        rows += 1
        if rows % 500_000 == 0:
            print(f"  {rows} sightings exported ...", file=sys.stderr)
    return rows


def _export(args: argparse.Namespace) -> int:
    with _open(args) as log:
        if args.out is None:
            rows = write_export(log, sys.stdout)
        else:
            target = Path(args.out)
            partial = target.with_name(target.name + ".partial")
            try:
                # 0600: the export holds whom this phone met, as the log does
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.fchmod(fd, 0o600)  # also when a stale .partial was left with another mode
                with open(fd, "w", encoding="utf-8", newline="") as handle:
                    rows = write_export(log, handle)
                partial.replace(target)
            except OSError as error:
                partial.unlink(missing_ok=True)
                raise FileWriteError(str(target), error.strerror or str(error), "export") from None
    print(f"exported {rows} sightings" + (f" to {args.out}" if args.out else ""), file=sys.stderr)
    return 0


def _wipe(args: argparse.Namespace) -> int:
    with _open(args) as log:
        count = log.stats().sightings
        if not args.yes:
            answer = input(f"delete all {count} sightings and every exposure from {args.db}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted", file=sys.stderr)
                return 1
        log.wipe()
    print(f"wiped {count} sightings from {args.db}")
    return 0
