"""``proximity ids``: the IDs and adverts broadcast from a time on, from the key ring or a given key."""

from __future__ import annotations

import argparse
import sys

from proximity.broadcast import Broadcast, KeySettings, broadcasts_of
from proximity.cli.common import CommandError, add_keyring_option, print_json, print_table, time_arg
from proximity.errors import KeyRingNotFoundError
from proximity.keyring import load_keyring, resolve_keyring_path
from proximity.keyring.model import DEFAULT_TX_POWER
from proximity.schemes.bluezone import DEFAULT_IDS_PER_DAY
from proximity.schemes.gaen import TEK_ROLLING_PERIOD, Metadata
from proximity.schemes.registry import SCHEME_NAMES, scheme_record, scheme_records
from proximity.times import format_utc, now, utc_midnight


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ids",
        help="print the IDs and advertisements broadcast from a time on",
        description="Print the IDs broadcast from the slot containing --at onward, "
        "from the key ring or --key. "
        "Never writes anything.",
    )
    parser.add_argument("--scheme", choices=SCHEME_NAMES, required=True)
    parser.add_argument(
        "--key",
        metavar="HEX",
        help="the scheme's key: "
        + ", ".join(f"{r.label} {r.load_keys().key_length} bytes" for r in scheme_records()),
    )
    parser.add_argument(
        "--key-start",
        type=time_arg,
        metavar="TIME",
        help="when the key's first ID starts (a chained scheme's key: its day; "
        "default: UTC midnight of --at)",
    )
    parser.add_argument(
        "--rolling-period",
        type=int,
        default=TEK_ROLLING_PERIOD,
        metavar="N",
        help="GAEN --key: intervals the key lasts (1..144, default 144)",
    )
    parser.add_argument("--tx-power", type=int, metavar="DBM", help="GAEN --key: TX power in the metadata")
    parser.add_argument(
        "--ids-per-day", type=int, metavar="N", help="Bluezone --key: IDs per day (default 96)"
    )
    parser.add_argument("--at", type=time_arg, metavar="TIME", help="unix seconds or ISO 8601 (default: now)")
    parser.add_argument("--count", type=int, default=1, metavar="N", help="how many IDs (default 1)")
    parser.add_argument("--json", action="store_true", help="a JSON array for programs")
    add_keyring_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    at: float = now() if args.at is None else args.at
    if args.count < 1:
        raise CommandError(f"--count must be at least 1, got {args.count}")
    broadcasts, limit_note = _broadcasts_from_key(args, at) if args.key else _broadcasts_from_ring(args, at)
    if args.json:
        print_json([_as_json(b) for b in broadcasts])
    else:
        print_table(
            ["slot start (UTC)", "end (UTC)", "id", "advert"],
            [[format_utc(b.start), format_utc(b.end), b.id.hex, b.ad_bytes.hex()] for b in broadcasts],
        )
    if limit_note and len(broadcasts) < args.count:
        print(f"note: {len(broadcasts)} of {args.count} IDs printed: {limit_note}", file=sys.stderr)
    return 0


def _as_json(broadcast: Broadcast) -> dict[str, object]:
    return {
        "scheme": broadcast.scheme,
        "id": broadcast.id.hex,
        "start": broadcast.start,
        "end": broadcast.end,
        "payload": broadcast.payload.hex(),
        "advert": broadcast.ad_bytes.hex(),
    }


def _parse_key(text: str, length: int, scheme: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise CommandError(f"--key must be hex, got {text!r}") from None
    if len(key) != length:
        raise CommandError(
            f"--key for {scheme} must be {length} bytes ({2 * length} hex digits), got {len(key)}"
        )
    return key


def _broadcasts_from_key(args: argparse.Namespace, at: float) -> tuple[list[Broadcast], str]:
    key_start = utc_midnight(at) if args.key_start is None else args.key_start
    record = scheme_record(args.scheme)
    keys = record.load_keys()
    state = keys.from_key(_parse_key(args.key, keys.key_length, args.scheme), key_start, args.rolling_period)
    # --tx-power goes into the encrypted metadata, so it matters only to a scheme that sends some
    tx_power = DEFAULT_TX_POWER if args.tx_power is None or record.metadata_length is None else args.tx_power
    ids_per_day = DEFAULT_IDS_PER_DAY if args.ids_per_day is None else args.ids_per_day
    if ids_per_day < 1:
        raise CommandError(
            f"--ids-per-day must be a positive divisor of 86400 (e.g. 96 or 144), got {ids_per_day}"
        )
    settings = KeySettings(Metadata(tx_power), ids_per_day)
    found = broadcasts_of(args.scheme, state, settings, at=at, count=args.count)
    first, last = keys.first_time(state), keys.last_time(state)
    if not found and first is not None and at < first:
        return found, f"the key's first ID starts at {format_utc(first)}"
    return found, "" if last is None else f"the key's IDs end at {format_utc(last)}"


def _broadcasts_from_ring(args: argparse.Namespace, at: float) -> tuple[list[Broadcast], str]:
    path = resolve_keyring_path(args.keyring)
    try:
        ring = load_keyring(path)
    except KeyRingNotFoundError:
        raise CommandError(
            f"no key ring at {path} and no --key given; create one with `proximity keys init` "
            "(or pass --key HEX)"
        ) from None
    first = ring.first_time(args.scheme)
    if first is not None and at < first:
        raise CommandError(
            f"--at {format_utc(at)} is before the key ring's first {args.scheme} key, which starts at "
            f"{format_utc(first)}: no ID was broadcast then; give --at {format_utc(first)} or later"
        )
    found = ring.broadcasts(args.scheme, at=at, count=args.count)
    if not found:
        raise CommandError(
            f"the key ring at {path} has no {args.scheme} key for {format_utc(at)} or later; "
            "roll it with `proximity keys roll`"
        )
    return (
        found,
        "the key ring holds no later key; `proximity keys roll` makes the next one when its day comes",
    )
