"""Tier 4, by hand on a laptop or Raspberry Pi with BlueZ: ``PROXIMITY_HARDWARE=1 pytest -m hardware``.

Set PROXIMITY_ADAPTER (default hci0). The advertising test needs a BlueZ with LE advertising and
privacy off; the two-adapter test needs a second controller (e.g. a USB dongle) as PROXIMITY_PEER_ADAPTER.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from proximity.ble.advertiser import Advertiser
from proximity.ble.scanner import Scanner
from proximity.payloads import GaenAdvert
from proximity.sightings import Sighting

pytestmark = pytest.mark.hardware

ADAPTER = os.environ.get("PROXIMITY_ADAPTER", "hci0")
PEER = os.environ.get("PROXIMITY_PEER_ADAPTER")


def test_real_adapter_scans() -> None:
    async def scan() -> Scanner:
        async with Scanner(adapter=ADAPTER) as scanner:
            await scanner.run(5)
        return scanner

    scanner = asyncio.run(scan())
    assert scanner.stats.malformed <= scanner.stats.adverts


def test_real_adapter_advertises_and_rotates() -> None:
    async def advertise() -> Advertiser:
        async with Advertiser(ADAPTER) as advertiser:
            for i in range(3):
                await advertiser.advertise(GaenAdvert(bytes([i]) * 16, bytes(4)).to_bluez())
                await asyncio.sleep(1)
        return advertiser

    advertiser = asyncio.run(advertise())
    assert advertiser.registrations == 3 and advertiser.warnings == []


@pytest.mark.skipif(PEER is None, reason="set PROXIMITY_PEER_ADAPTER to a second controller")
def test_two_real_adapters_see_each_other_with_real_rssi() -> None:
    assert PEER is not None
    found: list[Sighting] = []
    advert = GaenAdvert(bytes(range(16)), bytes(4))

    async def run() -> None:
        async with Scanner(found.append, adapter=PEER), Advertiser(ADAPTER) as advertiser:
            await advertiser.advertise(advert.to_bluez())
            await asyncio.sleep(8)

    asyncio.run(run())
    assert {s.id for s in found} == {advert.rpi}
    assert all(s.rssi is not None and -127 < s.rssi <= 20 for s in found)
