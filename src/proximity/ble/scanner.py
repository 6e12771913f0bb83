"""The scanner façade: bleak adverts in, :class:`~proximity.sightings.Sighting` values out.

One class for live scans (bleak's platform backend, BlueZ on Linux) and replays (``replay=`` plays a
:class:`~proximity.ble.replay.Replay` through bleak's real front end). bleak is imported here, in the
BLE shell, never by the core. Missing Bluetooth of any kind (no system bus, no bluetoothd, no or a
powered-off adapter, no permission) becomes one :class:`BluetoothUnavailableError` with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import time as _time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)

from proximity.ble.recording import RecordedAdvert
from proximity.ble.replay import BLEAK_NO_RSSI, Replay, ReplayBackend
from proximity.errors import BluetoothUnavailableError, MalformedPayloadError, PayloadTypeError
from proximity.payloads.adverts import decode_bleak
from proximity.radio import RSSI_RANGE
from proximity.schemes.registry import SCHEME_NAMES, scheme_record
from proximity.sightings import Sighting

__all__ = ["SERVICE_UUIDS", "ScanStats", "Scanner", "bluetooth_unavailable", "or_patterns"]

SERVICE_UUIDS = {name: scheme_record(name).advert.service_uuid for name in SCHEME_NAMES}
MAX_RSSI = RSSI_RANGE[1]  # dBm; HCI reports -127..20, and 127 for "not available"


def or_patterns(schemes: Iterable[str]) -> list[tuple[int, int, bytes]]:
    """BlueZ advertisement-monitor patterns for passive scans: each scheme's codec says what it matches."""
    return [scheme_record(s).advert.monitor_pattern for s in schemes]


_HINTS = {
    "no-system-bus": "no D-Bus system bus (is dbus running? in a container, mount /run/dbus)",
    "no-bluez": "bluetoothd is not running (start it: sudo systemctl start bluetooth)",
    "no-adapter": "no Bluetooth adapter found (check `bluetoothctl list`; pass --adapter hciN)",
    "powered-off": "the adapter is powered off (turn it on: bluetoothctl power on)",
    "permission": "access denied (run as a member of the bluetooth group, or as root)",
}


def bluetooth_unavailable(
    error: BaseException, adapter: str | None = None
) -> BluetoothUnavailableError | None:
    """The one clear error for a bleak/D-Bus failure that means "no Bluetooth here", else None."""
    reason: str | None = None
    if isinstance(error, FileNotFoundError | ConnectionRefusedError):
        reason = "no-system-bus"
    elif isinstance(error, BleakBluetoothNotAvailableError):
        reason = {
            BleakBluetoothNotAvailableReason.POWERED_OFF: "powered-off",
            BleakBluetoothNotAvailableReason.DENIED_BY_USER: "permission",
            BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM: "permission",
            BleakBluetoothNotAvailableReason.DENIED_BY_UNKNOWN: "permission",
        }.get(error.reason, "no-adapter")
    elif isinstance(error, BleakDBusError):
        name = error.dbus_error
        if name in ("org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"):
            reason = "no-bluez"
        elif name in ("org.freedesktop.DBus.Error.UnknownObject", "org.freedesktop.DBus.Error.UnknownMethod"):
            reason = "no-adapter"
        elif name == "org.bluez.Error.NotReady":
            reason = "powered-off"
        elif name == "org.freedesktop.DBus.Error.AccessDenied":
            reason = "permission"
    elif isinstance(error, PermissionError):
        reason = "permission"
    elif isinstance(error, BleakError) and str(error).startswith("adapter '") and "not found" in str(error):
        reason = "no-adapter"  # bleak's message for a named adapter BlueZ does not have
    if reason is None:
        return None
    return BluetoothUnavailableError(reason, _HINTS[reason], adapter)


def _rssi(value: object) -> int | None:
    """bleak's RSSI as dBm, or None: bleak's -127 default and HCI's 127 "not available" (which BlueZ
    passes through unchanged, e.g. from virtual controllers) are no measurement."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if BLEAK_NO_RSSI < value <= MAX_RSSI else None


@dataclass(slots=True)
class ScanStats:
    """What a scan heard: adverts, sightings of ours, malformed adverts of ours (skipped)."""

    adverts: int = 0
    sightings: int = 0
    malformed: int = 0


SightingCallback = Callable[[Sighting], None]
AdvertCallback = Callable[[RecordedAdvert], None]
OwnId = Callable[[str], bytes | None]


class Scanner:
    """Scan (or replay) and turn every GAEN/Bluezone advert into a Sighting.

    ``async with Scanner(on_sighting, schemes=("gaen",)) as scanner: await scanner.run(10)``.
    ``clock`` gives the sighting time (default: the replay's recorded time, else the wall clock);
    ``own_id(scheme)`` fills ``Sighting.own_id`` (a node passes what it broadcasts; replays leave it None);
    ``on_advert`` sees every received advert (for ``--record``). ``passive=True`` uses BlueZ
    or_patterns (needs ``bluetoothd --experimental``).
    """

    def __init__(
        self,
        on_sighting: SightingCallback | None = None,
        *,
        schemes: Iterable[str] = SCHEME_NAMES,
        adapter: str | None = None,
        passive: bool = False,
        replay: Replay | None = None,
        on_advert: AdvertCallback | None = None,
        own_id: OwnId | None = None,
        clock: Callable[[], float] | None = None,
        backend: type[BaseBleakScanner] | None = None,
    ) -> None:
        self.schemes = tuple(schemes)
        unknown = [s for s in self.schemes if s not in SCHEME_NAMES]
        if unknown or not self.schemes:
            raise ValueError(f"schemes must be among {', '.join(SCHEME_NAMES)}, got {self.schemes}")
        self.adapter = adapter
        self.stats = ScanStats()
        self._callbacks: list[SightingCallback] = [on_sighting] if on_sighting else []
        self._on_advert = on_advert
        self._own_id = own_id
        self._replay = replay
        self._clock = clock or (replay.now if replay is not None else _time.time)
        mode: Literal["active", "passive"] = "passive" if passive else "active"
        bluez: dict[str, Any] = {"or_patterns": or_patterns(self.schemes)} if passive else {}
        if adapter:
            bluez["adapter"] = adapter
        extra: dict[str, Any] = {"replay": replay} if replay is not None else {}
        self._bleak = BleakScanner(
            self._on_bleak,
            [SERVICE_UUIDS[s] for s in self.schemes],
            mode,
            bluez=bluez,  # type: ignore[arg-type]
            backend=backend or (ReplayBackend if replay is not None else None),
            **extra,
        )

    def add_callback(self, callback: SightingCallback) -> Callable[[], None]:
        """Call ``callback`` for each sighting too; returns the function that removes it."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def _on_bleak(self, device: BLEDevice, data: AdvertisementData) -> None:
        now = self._clock()
        self.stats.adverts += 1
        rssi = _rssi(data.rssi)
        if self._on_advert is not None:
            self._on_advert(
                RecordedAdvert(
                    now,
                    device.address,
                    rssi,
                    dict(data.service_data),
                    dict(data.manufacturer_data),
                    tuple(data.service_uuids),
                    data.local_name,
                    data.tx_power,
                )
            )
        try:
            advert = decode_bleak(data.service_data, data.manufacturer_data)
        except (MalformedPayloadError, PayloadTypeError):
            self.stats.malformed += 1
            return
        if advert is None or advert.scheme not in self.schemes:
            return
        sighting = Sighting(
            scheme=advert.scheme,
            id=advert.id,
            time=now,
            rssi=rssi,
            metadata=getattr(advert, "aem", None),
            address=device.address,
            own_id=self._own_id(advert.scheme) if self._own_id else None,
        )
        self.stats.sightings += 1
        for callback in list(self._callbacks):
            callback(sighting)

    async def start(self) -> None:
        try:
            await self._bleak.start()
        except (BleakError, OSError) as error:
            translated = bluetooth_unavailable(error, self.adapter)
            if translated is None:
                raise
            raise translated from error

    async def stop(self) -> None:
        with contextlib.suppress(BleakError, OSError):
            await self._bleak.stop()

    async def __aenter__(self) -> Scanner:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def run(self, seconds: float | None = None) -> None:
        """Scan for ``seconds`` (None: until cancelled); a replay returns as soon as it is played."""
        if self._replay is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._replay.wait(), seconds)
        elif seconds is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(seconds)

    async def sightings(self) -> AsyncIterator[Sighting]:
        """Sightings as they come (an async generator; stop iterating to unsubscribe)."""
        queue: asyncio.Queue[Sighting] = asyncio.Queue()
        remove = self.add_callback(queue.put_nowait)
        try:
            while True:
                yield await queue.get()
        finally:
            remove()
