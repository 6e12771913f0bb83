"""The ``proximity`` command: one subcommand module per job, errors as one line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from proximity import __version__
from proximity.cli import evaluate, ids, keys, log, match, node, replay, scan, serve, simulate, upload
from proximity.errors import ProximityError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proximity",
        description="Privacy-preserving BLE proximity contact tracing (GAEN and Bluezone).",
    )
    parser.add_argument("--version", action="version", version=f"proximity-tracing {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (keys, ids, match, scan, replay, log, evaluate, node, simulate, serve, upload):
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ProximityError as error:
        print(f"proximity: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("proximity: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
