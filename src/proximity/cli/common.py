"""What every subcommand shares: argument types, the key-ring option, tables, JSON, errors."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from proximity.errors import ProximityError
from proximity.times import LATEST_TIME, parse_time

__all__ = ["CommandError", "add_keyring_option", "print_json", "print_table", "time_arg"]


class CommandError(ProximityError):
    """A command cannot do what it was asked; the message says what to do instead."""


def time_arg(text: str) -> float:
    """argparse type for TIME: unix seconds or ISO 8601 (no offset = UTC), 1970 to year 9998."""
    try:
        at = parse_time(text)
    except ProximityError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not 0 <= at <= LATEST_TIME:
        raise argparse.ArgumentTypeError(
            f"time {text!r} is out of range: give a time from 1970-01-01 to 9998-12-31 "
            f"(unix 0..{LATEST_TIME})"
        )
    return at


def add_keyring_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keyring",
        metavar="PATH",
        help="key ring file (default: $PROXIMITY_KEYRING, else the user data directory)",
    )


def print_json(value: Any, stream: TextIO | None = None) -> None:
    json.dump(value, stream or sys.stdout, indent=2)
    (stream or sys.stdout).write("\n")


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], stream: TextIO | None = None
) -> None:
    """A plain aligned table a person can read; numbers right-aligned."""
    out = stream or sys.stdout
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out.write(line(list(headers)) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write(line(row) + "\n")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
