"""``proximity serve`` and ``proximity serve-export``: the health authority's key server.

``serve`` answers publish, index.txt, export and Bluezone requests (uvicorn) and runs an export pass
every ``--batch-minutes``; ``serve-export`` runs one pass (or one every ``--every`` minutes) against
the same database, so exports can be made by a separate worker. Both need the ``[server]`` extra.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from proximity.cli.common import CommandError, print_json
from proximity.errors import KeyServerConfigError

if TYPE_CHECKING:
    from proximity.server.config import ServerConfig
    from proximity.server.db import Database

__all__ = ["register"]


def _add_storage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="PATH|URL",
        help="SQLite path or postgresql:// URL (default: keys.sqlite in the user data directory)",
    )
    parser.add_argument("--signing-key", metavar="PEM", help="P-256 private key that signs exports")
    parser.add_argument(
        "--key-id", default="proximity", help="signature key id apps trust (default proximity)"
    )
    parser.add_argument("--key-version", default="v1", help="signature key version (default v1)")
    parser.add_argument("--region", default="", help="region code written in the exports")
    parser.add_argument(
        "--batch-minutes", type=int, default=60, metavar="N", help="export period (default 60)"
    )
    parser.add_argument(
        "--min-keys",
        type=int,
        default=1000,
        metavar="N",
        help="pad each file to N (+0..100) keys (default 1000)",
    )
    parser.add_argument(
        "--retention-days", type=int, default=14, metavar="N", help="keep keys and files N days (default 14)"
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser("serve", help="run the key server (publish, export, serve keys)")
    _add_storage_options(serve)
    serve.add_argument(
        "--authority",
        action="append",
        default=[],
        metavar="ISS[@VERSION]=PUBLIC.pem",
        help="a health authority's certificate key (repeatable; no version = v1; write = @ %% in the "
        "issuer as %%3D %%40 %%25)",
    )
    serve.add_argument("--audience", default="proximity-key-server", help="the certificates' aud claim")
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="listen port (default 8080)")
    serve.add_argument(
        "--max-keys-per-publish", type=int, default=30, metavar="N", help="keys per publish (default 30)"
    )
    serve.set_defaults(handler=_serve)

    export = subparsers.add_parser("serve-export", help="run one export pass of the key server and exit")
    _add_storage_options(export)
    export.add_argument("--every", type=float, metavar="MINUTES", help="loop: one pass every MINUTES")
    export.add_argument("--json", action="store_true")
    export.set_defaults(handler=_serve_export)


def _config(args: argparse.Namespace, *, authorities: bool) -> ServerConfig:
    from proximity.server.config import ServerConfig, load_authorities, load_export_signing_key

    if not args.signing_key:
        raise CommandError(
            "exports must be signed: pass --signing-key PEM (see `proximity keys signing-key`)"
        )
    return ServerConfig(
        region=args.region,
        audience=getattr(args, "audience", ""),
        authorities=load_authorities(args.authority) if authorities else {},
        signing_key=load_export_signing_key(args.signing_key),
        key_id=args.key_id,
        key_version=args.key_version,
        max_keys_per_publish=getattr(args, "max_keys_per_publish", 30),
        batch_minutes=args.batch_minutes,
        min_keys=args.min_keys,
        retention_days=args.retention_days,
    )


def _database(args: argparse.Namespace) -> Database:
    from proximity.server.config import default_database_path
    from proximity.server.db import open_database

    return open_database(args.db or str(default_database_path()))


def _imports() -> None:
    try:
        import jwt  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise CommandError(
            f"the key server needs the [server] extra ({error.name} is missing): "
            "pip install 'proximity-tracing[server]'"
        ) from None


def _serve(args: argparse.Namespace) -> int:
    _imports()
    import uvicorn

    from proximity.server.app import create_app

    if not args.authority:
        raise CommandError("name at least one health authority: --authority ISS[@VERSION]=PUBLIC.pem")
    config = _config(args, authorities=True)
    database = _database(args)
    app = create_app(config, database, export_every_seconds=config.batch_minutes * 60)
    print(
        f"key server for region {config.region or '(none)'} on http://{args.host}:{args.port}/ "
        f"({database.describe()}; issuers: {', '.join(sorted(config.authorities))})",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    database.close()
    return 0


def _serve_export(args: argparse.Namespace) -> int:
    _imports()
    from proximity.server.exporter import Exporter

    if args.every is not None and args.every <= 0:
        raise CommandError("--every must be a positive number of minutes")
    config = _config(args, authorities=False)
    database = _database(args)
    try:
        exporter = Exporter(config, database)
    except KeyServerConfigError as error:
        raise CommandError(str(error)) from None
    while True:
        report = exporter.run_once()
        summary = {
            "files": report.files,
            "keys": report.keys,
            "revised_keys": report.revised_keys,
            "deleted_keys": report.deleted_keys,
            "deleted_files": report.deleted_files,
            "lock_busy": report.lock_busy,
        }
        if args.json:
            print_json(summary)
        elif report.lock_busy:
            print("another export worker is running; nothing done", flush=True)
        else:
            print(
                f"exported {report.keys} keys ({report.revised_keys} revised) into "
                f"{len(report.files)} file(s){': ' + ', '.join(report.files) if report.files else ''}; "
                f"retention deleted {report.deleted_keys} keys, {report.deleted_files} files",
                flush=True,
            )
        if args.every is None:
            return 0
        time.sleep(args.every * 60)
