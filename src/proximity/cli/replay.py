"""``proximity replay``: play a btsnoop capture or a ``scan --record`` file into an encounter log.

The adverts go through the same bleak front end and scanner façade as a live scan (the replay bleak
backend), so what lands in the log is what a live scan of the same air would have logged, with the
node's Bluezone rule (one row per ID every 5 s). The own-ID column stays empty: a replay does not know
what the recording device broadcast. A replay is idempotent: the log keeps each capture's SHA-256, a
capture replayed whole before adds nothing, and one whose replay was killed is replayed afresh.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from collections.abc import Callable
from typing import cast

from proximity.cli.common import CommandError, print_json, print_table
from proximity.schemes.registry import SCHEME_NAMES, scheme_record
from proximity.sightings import Sighting

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
        with open(args.file, "rb") as handle:
            digest = hashlib.sha256(handle.read()).digest()
        adverts = load_capture(args.file, args.controller)
    except OSError as error:
        raise CommandError(f"cannot read {args.file}: {error.strerror or error}") from None
    with EncounterLog(args.db) as log:
        # the controller filter changes what is logged: it is part of the source's identity
        source = log.begin_source(digest + str(args.controller).encode(), args.file)
        if source is None:
            summary = {"file": args.file, "db": args.db, "adverts": len(adverts), "sightings": 0}
            summary |= {"malformed": 0, "written": 0, "duplicates": 0, "already_replayed": True}
            print(f"{args.file} was replayed into {args.db} before; nothing added", file=sys.stderr)
            return _report(summary, args.json)
        print(f"replaying {len(adverts)} adverts from {args.file}...", file=sys.stderr)
        sink = BatchingSink(_writer(log.add, source), batch=5000, max_delay=float("inf"))
        replay = Replay(adverts, args.speed)
        scanner = Scanner(sink, schemes=tuple(args.scheme or SCHEME_NAMES), replay=replay)

        async def play() -> None:
            async with scanner:
                await scanner.run()

        asyncio.run(play())
        sink.flush()
        log.finish_source(source)  # only now: a replay killed before this is redone on the next run
    results = [r for pair in sink.results for r in cast(tuple[object, ...], pair)]  # see _writer
    summary = {
        "file": args.file,
        "db": args.db,
        "adverts": scanner.stats.adverts,
        "sightings": scanner.stats.sightings,
        "malformed": scanner.stats.malformed,
        "written": sum(getattr(r, "written", 0) for r in results),
        "duplicates": sum(getattr(r, "duplicates", 0) for r in results),
        "already_replayed": False,
    }
    return _report(summary, args.json)


def _writer(add: Callable[..., object], source: int) -> Callable[[list[Sighting]], tuple[object, ...]]:
    """Write a batch as the node does: each scheme's rows with its record's de-duplication (Bluezone's
    5 s; the others as heard)."""

    def write(batch: list[Sighting]) -> tuple[object, ...]:
        by_scheme: dict[str, list[Sighting]] = {}
        for sighting in batch:
            by_scheme.setdefault(sighting.scheme, []).append(sighting)
        return tuple(
            add(rows, source=source, dedup_seconds=scheme_record(scheme).dedup_seconds)
            for scheme, rows in by_scheme.items()
        )

    return write


def _report(summary: dict[str, object], as_json: bool) -> int:
    if as_json:
        print_json(summary)
    else:
        shown = [[k, v] for k, v in summary.items() if k not in ("file", "db", "already_replayed")]
        print_table(["what", "count"], shown)
    return 0
