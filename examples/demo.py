"""`make demo`: a fresh device's keys, and the IDs and adverts it broadcasts over a day, for both schemes.

Runs the real command line in-process against a key ring in a temporary folder (your own key ring is
never touched).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from proximity.cli.main import main as proximity
from proximity.times import format_utc, now, utc_midnight


def step(title: str, *argv: str) -> None:
    print(f"\n$ proximity {' '.join(argv)}    # {title}", flush=True)
    if proximity(list(argv)) != 0:
        sys.exit(f"demo step failed: {title}")


def main() -> None:
    day = utc_midnight(now())
    with tempfile.TemporaryDirectory() as folder:
        ring = str(Path(folder) / "keyring.json")
        print(f"A fresh device installed at {format_utc(day)}; its key ring lives in a temporary folder.")
        step("create the device's keys", "keys", "init", "--keyring", ring, "--at", str(day))
        step(
            "GAEN: a new RPI every 10 minutes, 144 a day",
            "ids",
            "--scheme",
            "gaen",
            "--keyring",
            ring,
            "--at",
            str(day),
            "--count",
            "144",
        )
        step(
            "Bluezone: a new ID every 15 minutes, 96 a day",
            "ids",
            "--scheme",
            "bluezone",
            "--keyring",
            ring,
            "--at",
            str(day),
            "--count",
            "96",
        )
        step(
            "the same as JSON, for programs (first two GAEN slots)",
            "ids",
            "--scheme",
            "gaen",
            "--keyring",
            ring,
            "--at",
            str(day),
            "--count",
            "2",
            "--json",
        )


if __name__ == "__main__":
    main()
