"""What every subcommand shares: argument types, the key-ring option, tables, JSON, errors."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from proximity.errors import ProximityError
from proximity.times import LATEST_TIME, parse_time

__all__ = [
    "CommandError",
    "add_keyring_option",
    "adoptions_arg",
    "interrupted_exit",
    "print_json",
    "print_table",
    "progress_bar",
    "time_arg",
    "write_outputs",
]


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


def adoptions_arg(text: str) -> list[float]:
    """argparse type for P[,P...]: comma-separated adoptions, each in [0, 1]."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"adoptions must be numbers in [0, 1], got {text!r}")
    return values


def progress_bar(done: int, total: int, started: float, doing: str, did: str) -> None:
    """A bar on a terminal; one plain line per finished run in a log file."""
    elapsed = time.monotonic() - started
    if not sys.stderr.isatty():
        sys.stderr.write(f"{did} {done}/{total} runs in {elapsed:.1f} s\n")
        return
    width = 30
    filled = round(width * done / total)
    sys.stderr.write(
        f"\r{doing} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} runs {elapsed:5.1f} s"
    )
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def write_outputs(write: Callable[[], Sequence[Path]], out: Path) -> None:
    """Run a results writer and list what it wrote; a failing disk is one line naming the folder."""
    try:
        written = write()
    except OSError as error:
        raise CommandError(f"cannot write results to {out}: {error}") from None
    for path in written:
        sys.stderr.write(f"wrote {path}\n")


def interrupted_exit(interrupted: bool, kept: str, missing: int) -> int:
    """A sweep stopped by Ctrl-C keeps what finished: say what was kept and exit 130 (else 0)."""
    if interrupted:
        sys.stderr.write(f"\nproximity: interrupted: kept {kept}; {missing} run(s) not done\n")
    return 130 if interrupted else 0
