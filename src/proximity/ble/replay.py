"""A bleak backend that plays recorded adverts, so a replay runs exactly the code a live scan runs.

``BleakScanner(callback, uuids, backend=ReplayBackend, replay=Replay(adverts))``: bleak's own front end
(UUID filter, ``discovered_devices``, ``advertisement_data()``) sits over this backend as it sits over
BlueZ. The :class:`Replay` carries a virtual clock (``replay.now``) that the scanner façade reads as its
time source, so each sighting keeps the time it was recorded at. In passive mode the backend applies
BlueZ's ``or_patterns`` to the advert's AD structures and, like BlueZ, refuses passive mode without them.

A replay always finishes: if playing an advert fails (a callback raises), the replay stops there and
:meth:`Replay.wait` (so ``Scanner.run``) raises the error: the library's own errors as they are, any
other one as a :class:`~proximity.errors.ReplayError` naming the advert.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.exc import BleakError

from proximity.ble.recording import RecordedAdvert
from proximity.errors import ProximityError, ReplayError
from proximity.payloads.adverts import uuid128_to_uuid16

__all__ = ["BLEAK_NO_RSSI", "Replay", "ReplayBackend"]

# bleak's value for "no RSSI" (its BlueZ backend defaults to it); the scanner façade turns it into None.
BLEAK_NO_RSSI = -127
_YIELD_EVERY = 64


class Replay:
    """Recorded adverts to play, at ``speed`` times real time (None: as fast as possible)."""

    def __init__(self, adverts: Iterable[RecordedAdvert], speed: float | None = None) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be positive (or None for as fast as possible), got {speed}")
        self.adverts: Sequence[RecordedAdvert] = tuple(adverts)
        self.speed = speed
        self.delivered = 0
        self._now = self.adverts[0].time if self.adverts else 0.0
        self.finished = asyncio.Event()
        self.error: BaseException | None = None

    def now(self) -> float:
        """The recorded time of the advert being delivered: the scanner's clock during a replay."""
        return self._now

    async def wait(self) -> None:
        """Until every advert is played; raises what stopped the replay, if anything did."""
        await self.finished.wait()
        if self.error is not None:
            raise self.error


def _ad_structures(advert: RecordedAdvert) -> list[tuple[int, bytes]]:
    """The AD structures a 16-bit-UUID advert had on the air (what BlueZ's or_patterns match)."""
    out: list[tuple[int, bytes]] = []
    for uuid, data in advert.service_data.items():
        short = uuid128_to_uuid16(uuid)
        if short is not None:
            out.append((0x16, short.to_bytes(2, "little") + data))
    for company, data in advert.manufacturer_data.items():
        out.append((0xFF, company.to_bytes(2, "little") + data))
    return out


def _matches(patterns: Sequence[Any], advert: RecordedAdvert) -> bool:
    for start, ad_type, content in patterns:
        for kind, data in _ad_structures(advert):
            if kind == int(ad_type) and data[start : start + len(content)] == bytes(content):
                return True
    return False


class ReplayBackend(BaseBleakScanner):
    """Plays a :class:`Replay` (passed as ``replay=`` to ``BleakScanner``) through bleak's callbacks."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        *,
        replay: Replay,
        bluez: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._replay = replay
        self._scanning_mode = scanning_mode
        self._or_patterns: Sequence[Any] | None = (bluez or {}).get("or_patterns")
        if scanning_mode == "passive" and not self._or_patterns:
            raise BleakError("passive scanning mode requires bluez or_patterns")
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        self._task = asyncio.create_task(self._play())

    async def stop(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _allowed(self, advert: RecordedAdvert) -> bool:
        if self._scanning_mode == "passive":
            assert self._or_patterns is not None
            return _matches(self._or_patterns, advert)
        return self.is_allowed_uuid(list(advert.service_uuids))

    async def _play(self) -> None:
        replay = self._replay
        try:
            await self._play_all(replay)
        except ProximityError as error:
            replay.error = error
        except Exception as error:  # a callback's bug: stop here, and say where
            wrapped = ReplayError(replay.delivered, replay.now(), f"{type(error).__name__}: {error}")
            wrapped.__cause__ = error
            replay.error = wrapped
        finally:
            replay.finished.set()  # also when cancelled: nobody may wait for a replay forever

    async def _play_all(self, replay: Replay) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = replay.adverts[0].time if replay.adverts else 0.0
        for count, advert in enumerate(replay.adverts, start=1):
            if replay.speed is not None:
                await asyncio.sleep(max(0.0, started + (advert.time - first) / replay.speed - loop.time()))
            elif count % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            replay._now = advert.time
            replay.delivered = count
            if self._allowed(advert):
                self._deliver(advert)

    def _deliver(self, advert: RecordedAdvert) -> None:
        data = AdvertisementData(
            local_name=advert.local_name,
            manufacturer_data=dict(advert.manufacturer_data),
            service_data=dict(advert.service_data),
            service_uuids=list(advert.service_uuids),
            tx_power=advert.tx_power,
            rssi=BLEAK_NO_RSSI if advert.rssi is None else advert.rssi,
            platform_data=(advert,),
        )
        device = self.create_or_update_device(
            advert.address, advert.address, advert.local_name, {"replay": True}, data
        )
        self.call_detection_callbacks(device, data)
