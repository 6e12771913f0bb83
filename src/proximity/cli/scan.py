"""``proximity scan``: print the GAEN and Bluezone adverts heard live; ``--record`` keeps every advert."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import ExitStack, suppress
from typing import TextIO

from proximity.errors import FileWriteError
from proximity.schemes.registry import SCHEME_NAMES
from proximity.sightings import Sighting
from proximity.times import format_utc

__all__ = ["format_sighting", "register", "run", "sighting_json"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="print the GAEN and Bluezone adverts heard nearby",
        description="Scan with the Bluetooth adapter and print each GAEN or Bluezone advert heard. "
        "Needs BlueZ on Linux (bleak's backends elsewhere). Writes nothing unless --record is given.",
    )
    parser.add_argument(
        "--scheme", choices=SCHEME_NAMES, action="append", help="only this scheme (repeatable)"
    )
    parser.add_argument("--seconds", type=float, metavar="N", help="stop after N seconds (default: Ctrl-C)")
    parser.add_argument("--record", metavar="FILE", help="write every advert received as JSON Lines to FILE")
    parser.add_argument("--adapter", metavar="HCI", help="BlueZ adapter, e.g. hci0 (default: the first)")
    parser.add_argument(
        "--passive", action="store_true", help="passive scan (BlueZ or_patterns; bluetoothd --experimental)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per sighting (JSON Lines)")
    parser.set_defaults(handler=run)


def sighting_json(sighting: Sighting) -> dict[str, object]:
    return {
        "scheme": sighting.scheme,
        "id": sighting.id.hex(),
        "time": sighting.time,
        "rssi": sighting.rssi,
        "metadata": sighting.metadata.hex() if sighting.metadata is not None else None,
        "address": sighting.address,
    }


def format_sighting(sighting: Sighting) -> str:
    rssi = "  n/a" if sighting.rssi is None else f"{sighting.rssi:5d}"
    aem = sighting.metadata.hex() if sighting.metadata is not None else "-"
    when = format_utc(sighting.time)
    return f"{when}  {sighting.scheme:8}  {sighting.id.hex():32}  {rssi}  {aem:8}  {sighting.address}"


def run(args: argparse.Namespace) -> int:
    from proximity.ble.recording import RecordedAdvert, advert_to_json
    from proximity.ble.scanner import Scanner

    schemes = tuple(args.scheme or SCHEME_NAMES)
    out: TextIO = sys.stdout

    reader_gone = asyncio.Event()  # `proximity scan | head`: the reader closed the pipe

    def show(sighting: Sighting) -> None:
        if reader_gone.is_set():
            return
        try:
            if args.json:
                out.write(json.dumps(sighting_json(sighting)) + "\n")
            else:
                out.write(format_sighting(sighting) + "\n")
            out.flush()
        except BrokenPipeError:
            reader_gone.set()  # stop scanning; main() silences stdout (no traceback per advert)

    with ExitStack() as stack:
        on_advert = None
        if args.record:
            try:
                record = stack.enter_context(open(args.record, "w", encoding="utf-8"))
            except OSError as error:
                raise FileWriteError(args.record, error.strerror or str(error), "recording") from None

            def on_advert(advert: RecordedAdvert) -> None:
                record.write(advert_to_json(advert) + "\n")
                record.flush()

        scanner = Scanner(
            show, schemes=schemes, adapter=args.adapter, passive=args.passive, on_advert=on_advert
        )

        async def scan() -> None:
            async with scanner:
                print(f"scanning for {', '.join(schemes)} adverts (Ctrl-C stops)...", file=sys.stderr)
                if not args.json:
                    out.write(
                        f"{'time (UTC)':20}  {'scheme':8}  {'id':32}  {'rssi':>5}  {'aem':8}  address\n"
                    )
                scanning = asyncio.ensure_future(scanner.run(args.seconds))
                stopped = asyncio.ensure_future(reader_gone.wait())
                await asyncio.wait((scanning, stopped), return_when=asyncio.FIRST_COMPLETED)
                for task in (scanning, stopped):
                    task.cancel()
                with suppress(asyncio.CancelledError):
                    await scanning

        with suppress(KeyboardInterrupt):
            asyncio.run(scan())
        stats = scanner.stats
        recorded = f"; adverts recorded to {args.record}" if args.record else ""
        print(
            f"heard {stats.adverts} adverts, {stats.sightings} sightings, "
            f"{stats.malformed} malformed{recorded}",
            file=sys.stderr,
        )
    if reader_gone.is_set():
        raise BrokenPipeError("standard output was closed")
    return 0
