"""``proximity keys init|show|roll|wipe``: the device's own key ring."""

from __future__ import annotations

import argparse
import sys

from proximity.cli import publish, upload
from proximity.cli.common import CommandError, add_keyring_option, print_json, print_table, time_arg
from proximity.estimation.calibration import resolve_model
from proximity.keyring import KeyRing, KeyRingSettings, load_keyring, resolve_keyring_path, save_keyring
from proximity.keyring.model import DEFAULT_TX_POWER
from proximity.keyring.store import wipe_keyring
from proximity.schemes.bluezone import DEFAULT_IDS_PER_DAY
from proximity.schemes.registry import SCHEME_NAMES, scheme_records
from proximity.times import format_utc, now


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = subparsers.add_parser("keys", help="create, show, roll or wipe this device's key ring")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")

    init = actions.add_parser("init", help="create a key ring (refuses to replace one)")
    init.add_argument("--at", type=time_arg, metavar="TIME", help="install time (default: now)")
    init.add_argument(
        "--device",
        metavar="MODEL",
        help="this device's model: its calibrated TX power and confidence from the calibration table "
        f"(default: the fleet value, {DEFAULT_TX_POWER} dBm, confidence 0)",
    )
    init.add_argument(
        "--tx-power",
        type=int,
        metavar="DBM",
        help="calibrated TX power put in GAEN metadata (overrides --device)",
    )
    init.add_argument("--calibration-confidence", type=int, metavar="0-3", help="overrides --device's")
    init.add_argument("--bluezone-ids-per-day", type=int, default=DEFAULT_IDS_PER_DAY, metavar="N")
    init.add_argument("--json", action="store_true")
    init.set_defaults(handler=_init)

    show = actions.add_parser("show", help="print the keys and what is broadcast now")
    show.add_argument(
        "--at", type=time_arg, metavar="TIME", help="time of the current broadcast (default: now)"
    )
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show)

    roll = actions.add_parser("roll", help="make the GAEN key for --at if missing and drop expired keys")
    roll.add_argument("--at", type=time_arg, metavar="TIME", help="default: now")
    roll.add_argument("--json", action="store_true")
    roll.set_defaults(handler=_roll)

    wipe = actions.add_parser("wipe", help="delete the key ring (asks first)")
    wipe.add_argument("--yes", action="store_true", help="do not ask")
    wipe.set_defaults(handler=_wipe)

    for parser in (init, show, roll, wipe):
        add_keyring_option(parser)

    publish.register(actions)
    upload.register_certificate(actions)


def _init(args: argparse.Namespace) -> int:
    path = resolve_keyring_path(args.keyring)
    tx_power, confidence = DEFAULT_TX_POWER, 0
    if args.device:
        found = resolve_model(args.device)
        tx_power, confidence = round(found.tx), found.confidence
        if not args.json:
            print(f"{args.device}: calibrated TX power {tx_power} dBm ({found.how} calibration)")
    tx_power = tx_power if args.tx_power is None else args.tx_power
    confidence = confidence if args.calibration_confidence is None else args.calibration_confidence
    settings = KeyRingSettings(tx_power, confidence, args.bluezone_ids_per_day)
    ring = KeyRing.create(now() if args.at is None else args.at, settings)
    save_keyring(path, ring, create=True)
    if not args.json:
        print(f"created key ring {path}")
    _describe(ring, path, now() if args.at is None else args.at, args.json)
    return 0


def _show(args: argparse.Namespace) -> int:
    path = resolve_keyring_path(args.keyring)
    _describe(load_keyring(path), path, now() if args.at is None else args.at, args.json)
    return 0


def _roll(args: argparse.Namespace) -> int:
    path = resolve_keyring_path(args.keyring)
    at = now() if args.at is None else args.at
    ring = load_keyring(path)
    rolled = ring.rolled(at)
    if rolled != ring:
        save_keyring(path, rolled)
    _describe(rolled, path, at, args.json)
    return 0


def _wipe(args: argparse.Namespace) -> int:
    path = resolve_keyring_path(args.keyring)
    if not path.exists():
        print(f"no key ring at {path}; nothing to wipe")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError("refusing to wipe without confirmation; pass --yes")
        answer = input(f"Delete the key ring {path}? Every key in it is lost for good. Type 'yes': ")
        if answer.strip().lower() != "yes":
            print("kept the key ring")
            return 1
    wipe_keyring(path)
    print(f"wiped {path}")
    return 0


def _describe(ring: KeyRing, path: object, at: float, as_json: bool) -> None:
    settings = ring.settings
    current = {}
    for scheme in SCHEME_NAMES:
        found = ring.broadcasts(scheme, at=at, count=1)
        current[scheme] = found[0] if found and found[0].start <= at else None
    if as_json:
        print_json(
            {
                "path": str(path),
                "settings": {
                    "tx_power": settings.tx_power,
                    "calibration_confidence": settings.calibration_confidence,
                    "bluezone_ids_per_day": settings.bluezone_ids_per_day,
                    "retention_days": settings.retention_days,
                },
                **{
                    field: value
                    for record in scheme_records()
                    for field, value in record.load_keys().show_json(ring.key_state(record.name)).items()
                },
                "broadcasting": {
                    scheme: None if b is None else {"id": b.id.hex, "start": b.start, "end": b.end}
                    for scheme, b in current.items()
                },
            }
        )
        return
    print(
        f"settings: tx_power {settings.tx_power} dBm, calibration confidence "
        f"{settings.calibration_confidence}, Bluezone {settings.bluezone_ids_per_day} IDs/day, "
        f"keys kept {settings.retention_days} days\n"
    )
    described = [
        keys.describe(state)
        for record in scheme_records()
        if (state := ring.key_state(record.name)) is not None
        for keys in [record.load_keys()]
    ]
    for table in described:  # tables (GAEN's day keys) first, then a line per single key
        if not isinstance(table, str):
            print_table(*table)
    print()
    for line in described:
        if isinstance(line, str):
            print(line)
    print()
    print(f"broadcasting at {format_utc(at)}:")
    print_table(
        ["scheme", "id", "changes at (UTC)"],
        [
            [scheme, b.id.hex, format_utc(b.end)]
            if b
            else [scheme, "(no key: run `proximity keys roll`)", "-"]
            for scheme, b in current.items()
        ],
    )
