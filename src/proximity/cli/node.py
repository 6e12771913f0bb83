"""``proximity node``: broadcast this device's rotating ID, log everyone heard, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator

from proximity.broadcast import Broadcast
from proximity.cli.common import add_keyring_option
from proximity.errors import NoKeyForTimeError
from proximity.keyring import load_keyring, resolve_keyring_path, save_keyring
from proximity.schemes.registry import SCHEME_NAMES, duty_cycles, scheme_record, scheme_records
from proximity.sightings import Sighting

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "node",
        help="advertise this device's rotating ID and log the IDs heard (Linux/BlueZ)",
        description="Run a contact-tracing node: advertise the key ring's current ID (rotating it, and the "
        "Bluetooth address with it, at each slot boundary), scan, and add every sighting to --db. "
        "Where advertising is impossible it says so and runs scan-only. Stop with Ctrl-C or SIGTERM: "
        "the log is flushed before exit.",
    )
    parser.add_argument("--scheme", choices=SCHEME_NAMES, required=True)
    parser.add_argument(
        "--db", required=True, metavar="FILE", help="encounter log (SQLite; created if missing)"
    )
    parser.add_argument("--adapter", default="hci0", metavar="HCI", help="BlueZ adapter (default hci0)")
    parser.add_argument(
        "--duty",
        choices=tuple(duty_cycles()),
        default="continuous",
        help="scan duty cycle: always, or a scheme's own ("
        + ", ".join(
            f"{r.label} {r.duty.scan_on:g} s every {r.duty.scan_period:g} s" for r in scheme_records()
        )
        + ")",
    )
    parser.add_argument(
        "--seconds", type=float, metavar="N", help="stop after N seconds (default: run until stopped)"
    )
    parser.add_argument("--scan-only", action="store_true", help="do not advertise")
    add_keyring_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from proximity.ble.node import Node, NodeStatus
    from proximity.ble.sink import BackgroundWriter, BatchingSink
    from proximity.log import EncounterLog

    path = resolve_keyring_path(args.keyring)
    ring = load_keyring(path)

    def broadcast_at(at: float) -> Broadcast:
        nonlocal ring
        try:
            return ring.broadcast_at(args.scheme, at)
        except NoKeyForTimeError:
            ring = ring.rolled(at)  # a new UTC day: today's GAEN key, kept before it is ever broadcast
            save_keyring(path, ring)
            return ring.broadcast_at(args.scheme, at)

    tty = sys.stderr.isatty()
    last_printed = [0.0, -1.0]

    def show(status: NodeStatus) -> None:
        now = time.time()
        line = status.line(now)
        if tty:
            sys.stderr.write("\r" + line.ljust(100)[:100])
            sys.stderr.flush()
        elif status.rotations != last_printed[1] or now - last_printed[0] >= 30:
            print(line, file=sys.stderr, flush=True)
            last_printed[:] = [now, status.rotations]

    dedup = scheme_record(args.scheme).dedup_seconds  # e.g. Bluezone's app: one row per ID per 5 s

    @contextlib.contextmanager
    def log_writer() -> Iterator[Callable[[list[Sighting]], object]]:
        with EncounterLog(args.db) as log:  # opened on the writer thread, which alone uses it
            yield lambda batch: log.add(batch, dedup_seconds=dedup)

    writer = BackgroundWriter(log_writer)  # SQLite off the event loop, through a bounded queue
    try:
        sink = BatchingSink(writer, batch=256, max_delay=2.0, keep_results=False)
        node = Node(
            args.scheme,
            broadcast_at,
            sink,
            adapter=args.adapter,
            duty=args.duty,
            advertise=not args.scan_only,
            on_status=show,
        )

        async def main() -> NodeStatus:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            if args.seconds is not None:
                loop.call_later(args.seconds, stop.set)
            return await node.run(stop)

        print(f"node: {args.scheme} on {args.adapter}, logging to {args.db} (Ctrl-C stops)", file=sys.stderr)
        status = asyncio.run(main())
        for warning in status.warnings:
            print(f"\nproximity: warning: {warning}", file=sys.stderr)
    finally:
        writer.close()  # what the node flushed at its end is written before the summary
    written = writer.written
    print(
        f"\nnode stopped: {status.rotations} rotations, heard {status.sightings} sightings of "
        f"{len(status.peers)} IDs, {written} rows written to {args.db}",
        file=sys.stderr,
    )
    return 0
