"""``proximity publish`` and ``proximity keys certificate``: a diagnosed phone's side of the key server.

``keys certificate`` stands in for a verification server: it signs (ES256) a certificate whose
``tekmac`` covers the key ring's keys under a fresh hmacKey. ``publish`` uploads exactly those keys
as an app does (padding; risk omitted, so the 3-segment MAC), or a daily-key scheme's day keys (the
upload its record names).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
from pathlib import Path

from proximity.cli.common import CommandError, add_keyring_option, print_json, time_arg
from proximity.keyring import load_keyring, resolve_keyring_path
from proximity.schemes.gaen import ENIN_SECONDS
from proximity.schemes.registry import SCHEME_NAMES, scheme_record, scheme_records
from proximity.server.client import (
    certificate_issuer,
    daily_publish_items,
    daily_segments,
    gaen_publish_request,
    gaen_segments,
    post_json,
    upload_keys,
)
from proximity.server.mac import tek_mac
from proximity.times import now

__all__ = ["register", "register_certificate"]

_SCHEMES = SCHEME_NAMES


def _add_scheme_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheme", choices=_SCHEMES, default="gaen", help="which keys (default gaen)")
    parser.add_argument(
        "--days",
        type=int,
        default=14,
        metavar="N",
        help=", ".join(r.label for r in scheme_records() if r.upload is not None)
        + ": days up to --at to upload (default 14)",
    )
    parser.add_argument("--at", type=time_arg, metavar="TIME", help="upload time (default: now)")
    add_keyring_option(parser)


def register_certificate(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``keys certificate`` (under ``proximity keys``)."""
    parser = actions.add_parser(
        "certificate", help="mint a test verification certificate for this key ring's keys"
    )
    parser.add_argument(
        "--authority-key", required=True, metavar="PEM", help="the authority's P-256 private key"
    )
    parser.add_argument("--iss", required=True, help="issuer (the server's healthAuthorityID)")
    parser.add_argument("--aud", required=True, help="audience (the server's --audience)")
    parser.add_argument("--kid", default="v1", help="key version (default v1)")
    parser.add_argument("--report-type", choices=("confirmed", "likely", "negative"), default="confirmed")
    parser.add_argument(
        "--onset", type=time_arg, metavar="TIME", help="symptom onset (sets symptomOnsetInterval)"
    )
    _add_scheme_options(parser)
    parser.set_defaults(handler=_certificate)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("publish", help="upload this key ring's keys to a key server")
    parser.add_argument(
        "--server", required=True, metavar="URL", help="the key server, e.g. http://127.0.0.1:8080"
    )
    parser.add_argument("--certificate", required=True, metavar="JWT", help="from the verification server")
    parser.add_argument("--hmac-key", required=True, metavar="B64", help="the hmacKey the certificate covers")
    parser.add_argument(
        "--authority", metavar="ID", help="healthAuthorityID (default: the certificate's iss)"
    )
    parser.add_argument("--risk", type=int, metavar="0-8", help="send this transmission risk (default: omit)")
    parser.add_argument("--revision-token", metavar="TOKEN", help="from an earlier upload (revisions)")
    parser.add_argument("--json", action="store_true")
    _add_scheme_options(parser)
    parser.set_defaults(handler=_publish)


def _segments(args: argparse.Namespace, at: float) -> tuple[list[str], list[dict[str, object]] | None]:
    ring = load_keyring(resolve_keyring_path(args.keyring))
    if scheme_record(args.scheme).upload is not None:
        if args.days < 1:
            raise CommandError("--days must be at least 1")
        items = daily_publish_items(ring, args.scheme, at, args.days)
        if not items:
            raise CommandError(f"the key ring holds no {args.scheme} key by --at")
        return daily_segments(args.scheme, items), items
    keys = upload_keys(ring, at)
    if not keys:
        raise CommandError("the key ring holds no GAEN key that began by --at")
    return gaen_segments(keys, getattr(args, "risk", None)), None


def _certificate(args: argparse.Namespace) -> int:
    try:
        from proximity.server.certificates import mint_certificate
    except ImportError:
        raise CommandError(
            "minting certificates needs PyJWT: pip install 'proximity-tracing[server]'"
        ) from None
    from proximity.keyfiles.gaen_export import load_signing_key

    at = now() if args.at is None else args.at
    try:
        pem = Path(args.authority_key).read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {args.authority_key}: {error.strerror}") from None
    segments, _ = _segments(args, at)
    hmac_key = os.urandom(32)
    onset = None if args.onset is None else int(args.onset) // ENIN_SECONDS
    certificate = mint_certificate(
        load_signing_key(pem, args.authority_key),
        issuer=args.iss,
        audience=args.aud,
        tekmac=tek_mac(hmac_key, segments),
        report_type=args.report_type,
        key_version=args.kid,
        symptom_onset_interval=onset,
    )
    print_json({"certificate": certificate, "hmacKey": base64.b64encode(hmac_key).decode()})
    return 0


def _publish(args: argparse.Namespace) -> int:
    at = now() if args.at is None else args.at
    if args.risk is not None and not 0 <= args.risk <= 8:
        raise CommandError("--risk must be 0..8")
    authority = args.authority or certificate_issuer(args.certificate)
    _, items = _segments(args, at)
    base = args.server.rstrip("/")
    daily = scheme_record(args.scheme).load_upload()
    if daily is not None:
        url = f"{base}/{args.scheme}/v1/publish"
        document: dict[str, object] = {
            daily.field: items,
            "healthAuthorityID": authority,
            "verificationPayload": args.certificate,
            "hmacKey": args.hmac_key,
        }
    else:
        url = f"{base}/v1/publish"
        document = gaen_publish_request(
            upload_keys(load_keyring(resolve_keyring_path(args.keyring)), at),
            certificate=args.certificate,
            hmac_key=args.hmac_key,
            authority=authority,
            risk=args.risk,
            revision_token=args.revision_token,
        )
    status, body = post_json(url, document)
    body.pop("padding", None)
    if args.json:
        print_json({"status": status, **body})
    else:
        print(f"HTTP {status}: " + json.dumps(body))
        if daily is not None and status == 200:
            print(daily.after_upload)
    if status != 200:
        raise CommandError(
            f"the server refused the upload ({body.get('code', status)}): {body.get('error', '')}"
        )
    return 0
