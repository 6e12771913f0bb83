"""``proximity keys export`` and ``proximity keys signing-key``: publish this device's keys.

What a diagnosed user (or a test server) publishes: the GAEN keys of the key ring as a signed
export.zip, or another scheme's key file of the last days (its record's exporter).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from proximity.atomic_files import write_atomically
from proximity.cli.common import CommandError, add_keyring_option, print_json, time_arg
from proximity.keyfiles.gaen_export import (
    generate_signing_key,
    load_signing_key,
    signing_key_pem,
    write_export,
)
from proximity.keyring import KeyRing, load_keyring, resolve_keyring_path
from proximity.schemes.gaen import GAEN
from proximity.schemes.published import DiagnosisKey, ReportType
from proximity.schemes.registry import SCHEME_NAMES, scheme_record, scheme_records
from proximity.times import SECONDS_PER_DAY, now, utc_midnight

__all__ = ["diagnosis_keys", "published_keys", "register"]

_REPORT_TYPES = {t.name.lower().replace("_", "-"): t for t in ReportType if t is not ReportType.REVOKED}


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = actions.add_parser(
        "export",
        help="publish this device's keys (signed GAEN zip, or "
        + ", ".join(r.key_files.description for r in scheme_records() if r.key_files.exporter)
        + ")",
    )
    export.add_argument("--scheme", choices=SCHEME_NAMES, required=True)
    export.add_argument("--out", required=True, metavar="FILE")
    export.add_argument(
        "--signing-key", metavar="PEM", help="P-256 private key (GAEN; see `keys signing-key`)"
    )
    export.add_argument(
        "--key-id", default="proximity", metavar="ID", help="verification key id (default proximity)"
    )
    export.add_argument(
        "--key-version", default="v1", metavar="V", help="verification key version (default v1)"
    )
    export.add_argument("--region", default="", help="region code written in the GAEN export")
    export.add_argument(
        "--report-type", choices=sorted(_REPORT_TYPES), default="confirmed-test", help="GAEN report type"
    )
    export.add_argument(
        "--pad-to", type=int, default=0, metavar="N", help="pad the GAEN file with fake keys to N"
    )
    export.add_argument(
        "--days",
        type=int,
        default=14,
        metavar="N",
        help=", ".join(r.label for r in scheme_records() if r.key_files.exporter)
        + ": days to publish (default 14)",
    )
    export.add_argument("--at", type=time_arg, metavar="TIME", help="publication time (default: now)")
    export.add_argument("--json", action="store_true")
    add_keyring_option(export)
    export.set_defaults(handler=_export)

    signing = actions.add_parser("signing-key", help="create a P-256 key pair for signing GAEN exports")
    signing.add_argument(
        "--out", required=True, metavar="PEM", help="private key file (public key beside it)"
    )
    signing.add_argument("--force", action="store_true", help="replace existing files")
    signing.set_defaults(handler=_signing_key)


def diagnosis_keys(ring: KeyRing, report_type: ReportType, at: float) -> list[DiagnosisKey]:
    """The ring's GAEN keys that began by ``at``, as diagnosis keys."""
    return [DiagnosisKey(key, 0, report_type) for key in ring.gaen_keys if key.start <= at]


def published_keys(ring: KeyRing, scheme: str, at: float, days: int) -> list[Any]:
    """What the ring publishes of ``scheme`` over the ``days`` UTC days up to the day of ``at`` (a
    chained scheme: from the first of them, never before the ring's own first key)."""
    if days < 1:
        raise CommandError("--days must be at least 1")
    keys = ring.published(scheme, utc_midnight(at) - (days - 1) * SECONDS_PER_DAY, days)
    if not keys:
        label = scheme_record(scheme).label
        raise CommandError(f"the key ring holds no {label} key by --at (roll it: `proximity keys roll`)")
    return keys


def _export(args: argparse.Namespace) -> int:
    at = now() if args.at is None else args.at
    ring = load_keyring(resolve_keyring_path(args.keyring))
    record = scheme_record(args.scheme)
    exporter = record.key_files.load_exporter()
    if exporter is not None:
        data, fields = exporter(published_keys(ring, args.scheme, at, args.days), at)
        write_atomically(Path(args.out), data)
        summary = {"scheme": args.scheme, "out": args.out, **fields}
    elif record.key_files.signed:
        summary = _export_gaen(args, ring, at)  # GAEN's signed export.zip: its own options
    else:
        raise CommandError(f"{record.label} keys have no export file format")
    if args.json:
        print_json(summary)
    else:
        print(", ".join(f"{k} {v}" for k, v in summary.items()))
    return 0


def _export_gaen(args: argparse.Namespace, ring: KeyRing, at: float) -> dict[str, object]:
    if not args.signing_key:
        raise CommandError("a GAEN export must be signed: pass --signing-key PEM (see `keys signing-key`)")
    try:
        pem = Path(args.signing_key).read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {args.signing_key}: {error.strerror}") from None
    keys = diagnosis_keys(ring, _REPORT_TYPES[args.report_type], at)
    if not keys:
        raise CommandError("the key ring holds no GAEN key that began by --at")
    data = write_export(
        keys,
        load_signing_key(pem, args.signing_key),
        key_id=args.key_id,
        key_version=args.key_version,
        region=args.region,
        start_timestamp=min(k.tek.start for k in keys),
        end_timestamp=int(at),
        pad_to=args.pad_to,
    )
    write_atomically(Path(args.out), data)
    return {"scheme": GAEN.name, "out": args.out, "keys": len(keys), "padded_to": max(args.pad_to, len(keys))}


def _signing_key(args: argparse.Namespace) -> int:
    private_path = Path(args.out)
    public_path = private_path.with_name(private_path.stem + ".pub" + (private_path.suffix or ".pem"))
    for path in (private_path, public_path):
        if path.exists() and not args.force:
            raise CommandError(f"{path} exists; pass --force to replace it")
    private, public = signing_key_pem(generate_signing_key())
    write_atomically(private_path, private, mode=0o600)
    write_atomically(public_path, public)
    print(f"private key {private_path} (keep it secret)\npublic key  {public_path} (give it to verifiers)")
    return 0
