# ruff: noqa: N802  (D-Bus member names are CamelCase by specification)
"""Broadcast the key ring's current advert through BlueZ (Linux, Raspberry Pi) over D-Bus (dbus-fast).

Why this shape (spec/ble-testing.md, verified on Linux 6.1): a ``LEAdvertisement1`` of Type "broadcast"
(no GATT served; no LocalName, no Includes: the 31-byte legacy limit is already full), and rotation by
unregister + register of a NEW object, never by changing ServiceData in place. With adapter privacy
off, the kernel then picks a fresh non-resolvable private address while advertising is off, so no
frame pairs the new ID with the old address. The controller refuses that address change while the
same adapter scans, so a rotation pauses the scan (``pause_scan``/``resume_scan``), retrying briefly.

Where advertising is impossible (not Linux, no BlueZ, no LE advertising manager) :meth:`start` raises
:class:`~proximity.errors.BluetoothUnavailableError`; a node catches it and runs scan-only.
"""

import asyncio
import configparser
import contextlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

from dbus_fast import BusType, DBusError, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature, DBusStr
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from proximity.errors import BluetoothUnavailableError
from proximity.payloads.adverts import BluezAdvertisement

__all__ = ["MAIN_CONF", "Advertiser", "adapter_privacy"]

BLUEZ = "org.bluez"
ADAPTER = "org.bluez.Adapter1"
MANAGER = "org.bluez.LEAdvertisingManager1"
PROPERTIES = "org.freedesktop.DBus.Properties"
MAIN_CONF = Path("/etc/bluetooth/main.conf")
_READ = PropertyAccess.READ

Hook = Callable[[], Awaitable[None]]


class _Advertisement(ServiceInterface):
    """The exported org.bluez.LEAdvertisement1 object: read by bluetoothd at registration."""

    def __init__(self, advert: BluezAdvertisement) -> None:
        super().__init__("org.bluez.LEAdvertisement1")
        self.advert = advert
        self.released = False

    @dbus_method()
    def Release(self) -> None:
        self.released = True

    @dbus_property(access=_READ)
    def Type(self) -> DBusStr:
        return self.advert.type

    @dbus_property(access=_READ)
    def ServiceUUIDs(self) -> Annotated[list[str], DBusSignature("as")]:
        return list(self.advert.service_uuids)

    @dbus_property(access=_READ)
    def ServiceData(self) -> Annotated[dict[str, Variant], DBusSignature("a{sv}")]:
        return {uuid: Variant("ay", bytes(data)) for uuid, data in self.advert.service_data.items()}

    @dbus_property(access=_READ)
    def ManufacturerData(self) -> Annotated[dict[int, Variant], DBusSignature("a{qv}")]:
        return {
            company: Variant("ay", bytes(data)) for company, data in self.advert.manufacturer_data.items()
        }


def adapter_privacy(main_conf: Path = MAIN_CONF) -> str | None:
    """BlueZ's ``Privacy`` setting from main.conf ("off" when unset), or None if the file is unreadable."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(main_conf.read_text(encoding="utf-8", errors="replace"))
    except (OSError, configparser.Error):
        return None
    return parser.get("General", "Privacy", fallback="off").strip().lower() or "off"


class Advertiser:
    """``async with Advertiser("hci0") as adv: await adv.advertise(broadcast.advert.to_bluez())``.

    Each :meth:`advertise` call is one rotation: pause scan -> unregister old -> register new (with
    ``retries`` attempts, exponential back-off from ``retry_delay``) -> resume scan. ``warnings``
    collects what the user should know (privacy on); ``registrations`` counts successful ones.
    """

    def __init__(
        self,
        adapter: str = "hci0",
        *,
        pause_scan: Hook | None = None,
        resume_scan: Hook | None = None,
        retries: int = 5,
        retry_delay: float = 0.1,
        main_conf: Path = MAIN_CONF,
        path_prefix: str = "/org/proximity/advertisement",
    ) -> None:
        if retries < 1:
            raise ValueError(f"retries must be at least 1, got {retries}")
        self.adapter = adapter
        self.adapter_path = f"/org/bluez/{adapter}"
        self.pause_scan = pause_scan
        self.resume_scan = resume_scan
        self.retries = retries
        self.retry_delay = retry_delay
        self.main_conf = main_conf
        self.path_prefix = path_prefix
        self.warnings: list[str] = []
        self.registrations = 0
        self.current: BluezAdvertisement | None = None
        self._bus: MessageBus | None = None
        self._exported: tuple[str, _Advertisement] | None = None
        self._counter = 0

    # -- life cycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and check that this adapter can advertise; raises BluetoothUnavailableError if not."""
        if sys.platform != "linux":
            raise BluetoothUnavailableError(
                "unsupported", f"advertising needs BlueZ on Linux (this is {sys.platform}); scan-only"
            )
        try:
            self._bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        except (FileNotFoundError, ConnectionRefusedError):
            raise BluetoothUnavailableError(
                "no-system-bus", "no D-Bus system bus (is dbus running? in a container, mount /run/dbus)"
            ) from None
        except PermissionError:
            raise BluetoothUnavailableError("permission", "access to the D-Bus system bus denied") from None
        try:
            props = await self._get_all(ADAPTER)
            await self._get_all(MANAGER)
        except BaseException:
            self._bus.disconnect()
            self._bus = None
            raise
        if not props.get("Powered", False):
            self._bus.disconnect()
            self._bus = None
            raise BluetoothUnavailableError(
                "powered-off", "the adapter is powered off (turn it on: bluetoothctl power on)", self.adapter
            )
        privacy = adapter_privacy(self.main_conf)
        if privacy not in (None, "off", "false"):
            self.warnings.append(
                f"BlueZ privacy is {privacy!r} in {self.main_conf}: the address then follows the kernel's "
                "timer, not the ID, so IDs become linkable. Set Privacy = off"
            )

    async def stop(self) -> None:
        """Take the advert off the air and disconnect (safe to call twice)."""
        if self._bus is None:
            return
        with contextlib.suppress(DBusError, OSError, EOFError):
            await self._unregister()
        self._bus.disconnect()
        self._bus = None

    async def __aenter__(self) -> "Advertiser":
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- advertising --------------------------------------------------------------------------------

    async def advertise(self, advert: BluezAdvertisement) -> None:
        """Put ``advert`` on the air in place of the current one (a rotation: new object, new address)."""
        if self._bus is None:
            raise RuntimeError("start() the advertiser first")
        if advert.type != "broadcast":
            raise ValueError(
                f"only Type 'broadcast' adverts rotate their address safely, got {advert.type!r}"
            )
        paused = False
        if self.pause_scan is not None:
            await self.pause_scan()
            paused = True
        try:
            await self._unregister()
            await self._register(advert)
        finally:
            if paused and self.resume_scan is not None:
                await self.resume_scan()

    async def _register(self, advert: BluezAdvertisement) -> None:
        assert self._bus is not None
        last: DBusError | None = None
        for attempt in range(self.retries):
            self._counter += 1
            path = f"{self.path_prefix}{self._counter}"
            interface = _Advertisement(advert)
            self._bus.export(path, interface)
            try:
                await self._call(MANAGER, "RegisterAdvertisement", "oa{sv}", [path, {}])
            except DBusError as error:
                self._bus.unexport(path, interface)
                last = error
                if attempt + 1 < self.retries:  # back off between attempts, not before giving up
                    await asyncio.sleep(self.retry_delay * 2**attempt)
                continue
            self._exported = (path, interface)
            self.current = advert
            self.registrations += 1
            return
        assert last is not None
        raise BluetoothUnavailableError(
            "busy",
            f"BlueZ refused the advertisement {self.retries} times ({last.type}: {last.text}); "
            "is the adapter scanning, or out of advertising instances?",
            self.adapter,
        ) from last

    async def _unregister(self) -> None:
        if self._exported is None or self._bus is None:
            return
        path, interface = self._exported
        self._exported = None
        self.current = None
        try:
            await self._call(MANAGER, "UnregisterAdvertisement", "o", [path])
        except DBusError as error:
            if error.type != "org.bluez.Error.DoesNotExist":
                raise
        finally:
            self._bus.unexport(path, interface)

    # -- D-Bus plumbing -----------------------------------------------------------------------------

    async def _call(self, interface: str, member: str, signature: str, body: list[Any]) -> list[Any]:
        assert self._bus is not None
        reply = await self._bus.call(
            Message(
                destination=BLUEZ,
                path=self.adapter_path,
                interface=interface,
                member=member,
                signature=signature,
                body=body,
            )
        )
        if reply.message_type == MessageType.ERROR:
            raise DBusError(reply.error_name or "org.freedesktop.DBus.Error.Failed", _text(reply.body))
        return list(reply.body)

    async def _get_all(self, interface: str) -> dict[str, Any]:
        assert self._bus is not None
        reply = await self._bus.call(
            Message(
                destination=BLUEZ,
                path=self.adapter_path,
                interface=PROPERTIES,
                member="GetAll",
                signature="s",
                body=[interface],
            )
        )
        if reply.message_type != MessageType.ERROR:
            return {k: v.value for k, v in reply.body[0].items()}
        name = reply.error_name or ""
        if name in ("org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"):
            raise BluetoothUnavailableError(
                "no-bluez",
                "bluetoothd is not running (start it: sudo systemctl start bluetooth)",
                self.adapter,
            )
        if name == "org.freedesktop.DBus.Error.AccessDenied":
            raise BluetoothUnavailableError(
                "permission",
                "access denied (run as a member of the bluetooth group, or as root)",
                self.adapter,
            )
        if interface == MANAGER:
            raise BluetoothUnavailableError(
                "unsupported",
                "this adapter has no LE advertising manager (BlueZ >= 5.48 needed); scan-only",
                self.adapter,
            )
        raise BluetoothUnavailableError(
            "no-adapter",
            "no such Bluetooth adapter (check `bluetoothctl list`; pass --adapter hciN)",
            self.adapter,
        )


def _text(body: list[Any]) -> str:
    return str(body[0]) if body and isinstance(body[0], str) else ""
