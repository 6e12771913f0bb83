"""Replay a real btsnoop capture (two QEMU nodes, btmon) through bleak and print the sightings.

The capture goes through bleak's own ``BleakScanner`` front end with the replay backend, so this runs
the code a live ``proximity scan`` runs; each sighting keeps the time it was recorded at.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from proximity.ble.recording import load_capture
from proximity.ble.replay import Replay
from proximity.ble.scanner import Scanner
from proximity.sightings import Sighting
from proximity.times import format_utc

CAPTURE = (
    Path(__file__).resolve().parent.parent
    / "tests"
    / "fixtures"
    / "btsnoop"
    / "run4_two_nodes_monitor_2001.btsnoop"
)


async def replay(controller: int) -> list[Sighting]:
    found: list[Sighting] = []
    async with Scanner(found.append, replay=Replay(load_capture(CAPTURE, controller))) as scanner:
        await scanner.run()
    return found


def main() -> None:
    for controller in (0, 1):
        print(f"what hci{controller} heard:")
        for s in asyncio.run(replay(controller)):
            rssi = "n/a" if s.rssi is None else f"{s.rssi} dBm"
            print(f"  {format_utc(s.time)}  {s.scheme}  {s.id.hex()}  from {s.address}  rssi {rssi}")


if __name__ == "__main__":
    main()
