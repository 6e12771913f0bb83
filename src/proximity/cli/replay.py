"""``proximity replay``: play a btsnoop capture or a ``scan --record`` file into an encounter log.

The adverts go through the same bleak front end and scanner façade as a live scan (the replay bleak
backend), so what lands in the log is what a live scan of the same air would have logged. The own-ID
column stays empty: a replay does not know what the recording device broadcast.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from proximity.cli.common import CommandError, print_json, print_table
from proximity.schemes import SCHEME_NAMES

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="log the sightings of a btsnoop capture or a recorded scan",
        description="Replay FILE (btsnoop: datalinks 1001, 1002, 2001; or JSON Lines from `scan --record`) "
        "through the scanner and add its sightings to the encounter log --db.",
    )
    parser.add_argument("file", metavar="FILE", help="btsnoop capture or JSON Lines recording")
    parser.add_argument(
        "--db", required=True, metavar="DB", help="encounter log (SQLite; created if missing)"
    )
    parser.add_argument(
        "--speed", type=float, metavar="X", help="play at X times real time (default: as fast as possible)"
    )
    parser.add_argument(
        "--scheme", choices=SCHEME_NAMES, action="append", help="only this scheme (repeatable)"
    )
    parser.add_argument(
        "--controller",
        type=int,
        metavar="INDEX",
        help="btmon captures: only this controller index (hciINDEX)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from proximity.ble.recording import load_capture
    from proximity.ble.replay import Replay
    from proximity.ble.scanner import Scanner
    from proximity.ble.sink import BatchingSink
    from proximity.log import EncounterLog

    if args.speed is not None and not args.speed > 0:
        raise CommandError(f"--speed must be positive, got {args.speed}")
    try:
        adverts = load_capture(args.file, args.controller)
    except OSError as error:
        raise CommandError(f"cannot read {args.file}: {error.strerror or error}") from None
    print(f"replaying {len(adverts)} adverts from {args.file}...", file=sys.stderr)
    with EncounterLog(args.db) as log:
        sink = BatchingSink(log.add, batch=5000, max_delay=float("inf"))
        replay = Replay(adverts, args.speed)
        scanner = Scanner(sink, schemes=tuple(args.scheme or SCHEME_NAMES), replay=replay)

        async def play() -> None:
            async with scanner:
                await scanner.run()

        try:
            asyncio.run(play())
        finally:
            sink.flush()
    written = sum(getattr(r, "written", 0) for r in sink.results)
    duplicates = sum(getattr(r, "duplicates", 0) for r in sink.results)
    summary = {
        "file": args.file,
        "db": args.db,
        "adverts": scanner.stats.adverts,
        "sightings": scanner.stats.sightings,
        "malformed": scanner.stats.malformed,
        "written": written,
        "duplicates": duplicates,
    }
    if args.json:
        print_json(summary)
    else:
        print_table(["what", "count"], [[k, v] for k, v in summary.items() if k not in ("file", "db")])
    return 0
