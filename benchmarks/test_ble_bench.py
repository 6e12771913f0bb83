"""How fast captures are read and replayed: a day of adverts must replay in seconds, not minutes."""

from __future__ import annotations

import asyncio
from typing import Any

from proximity.ble.btsnoop import DATALINK_MONITOR, advertising_reports, legacy_report_event, write_btsnoop
from proximity.ble.recording import RecordedAdvert, recorded_from_reports
from proximity.ble.replay import Replay
from proximity.ble.scanner import Scanner
from proximity.payloads import GaenAdvert
from proximity.sightings import Sighting

N = 20_000


def _event(i: int) -> bytes:
    address = f"2A:00:00:00:{i >> 8 & 0xFF:02X}:{i & 0xFF:02X}"
    return legacy_report_event(
        address, GaenAdvert(i.to_bytes(16, "big"), bytes(4)).to_ad_bytes(), -60 - i % 30
    )


CAPTURE = write_btsnoop(DATALINK_MONITOR, [(1_700_000_000 + i * 0.25, _event(i)) for i in range(N)])


def test_parse_btsnoop_20k_reports(benchmark: Any) -> None:
    adverts = benchmark(lambda: list(recorded_from_reports(advertising_reports(CAPTURE))))
    assert len(adverts) == N


def _replay(adverts: list[RecordedAdvert]) -> list[Sighting]:
    found: list[Sighting] = []

    async def main() -> None:
        async with Scanner(found.append, replay=Replay(adverts)) as scanner:
            await scanner.run()

    asyncio.run(main())
    return found


def test_replay_20k_adverts_through_bleak(benchmark: Any) -> None:
    adverts = list(recorded_from_reports(advertising_reports(CAPTURE)))
    found = benchmark.pedantic(_replay, args=(adverts,), rounds=3, iterations=1)
    assert len(found) == N
