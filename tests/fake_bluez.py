# ruff: noqa: N802  (D-Bus member names are CamelCase by specification)
"""A small fake ``org.bluez`` for tier-2 tests: adapters, LE advertising managers, and devices that appear
on the other (discovering) adapters for every registered advertisement.

It runs on a private ``dbus-daemon`` (see :func:`private_system_bus`), so bleak's real BlueZ backend and the
real advertiser talk D-Bus to it exactly as to bluetoothd. What it models from BlueZ and the kernel
(spec/ble-testing.md): each registration of a "broadcast" advertisement goes out under a fresh
non-resolvable private address; a controller that is scanning refuses the address change, so
registration fails while its adapter is discovering; a device object per address, accumulated
properties, RSSI changes signalled while the advert stays on the air.
"""

import asyncio
import contextlib
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from dbus_fast import BusType, DBusError, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusBool, DBusSignature, DBusStr
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

DBUS_DAEMON = shutil.which("dbus-daemon")
READ = PropertyAccess.READ

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"""


@contextlib.contextmanager
def private_system_bus(directory: Path) -> Iterator[str]:
    """Start a private dbus-daemon and point DBUS_SYSTEM_BUS_ADDRESS at it for the duration."""
    assert DBUS_DAEMON is not None
    socket = directory / "system_bus_socket"
    config = directory / "bus.conf"
    config.write_text(BUS_CONFIG.format(socket=socket))
    process = subprocess.Popen(
        [DBUS_DAEMON, f"--config-file={config}", "--nofork", "--print-address"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        if not address:
            raise RuntimeError(
                f"dbus-daemon did not start: {process.stderr.read() if process.stderr else ''}"
            )
        previous = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = address
        try:
            yield address
        finally:
            if previous is None:
                os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
            else:
                os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = previous
    finally:
        process.terminate()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def nrpa(rng: random.Random) -> str:
    """A non-resolvable private address (two top bits 00), as text."""
    raw = [rng.randrange(256) for _ in range(6)]
    raw[0] &= 0x3F
    return ":".join(f"{b:02X}" for b in raw)


@dataclass
class Registration:
    """One advertisement on the air: which adapter, under which address, carrying what."""

    adapter: str
    object_path: str
    owner: str
    address: str
    service_uuids: list[str]
    service_data: dict[str, bytes]
    manufacturer_data: dict[int, bytes]
    type: str
    includes: list[str] = field(default_factory=list)
    local_name: str | None = None


class Device(ServiceInterface):
    """org.bluez.Device1 as a scanner's adapter reports a remote advertiser."""

    def __init__(self, adapter_path: str, registration: Registration, rssi: int) -> None:
        super().__init__("org.bluez.Device1")
        self.adapter_path = adapter_path
        self.registration = registration
        self.rssi = rssi

    @dbus_property(access=READ)
    def Address(self) -> DBusStr:
        return self.registration.address

    @dbus_property(access=READ)
    def AddressType(self) -> DBusStr:
        return "random"

    @dbus_property(access=READ)
    def Alias(self) -> DBusStr:
        return self.registration.address.replace(":", "-")

    @dbus_property(access=READ)
    def Adapter(self) -> Annotated[str, DBusSignature("o")]:
        return self.adapter_path

    @dbus_property(access=READ)
    def Paired(self) -> DBusBool:
        return False

    @dbus_property(access=READ)
    def Connected(self) -> DBusBool:
        return False

    @dbus_property(access=READ)
    def UUIDs(self) -> Annotated[list[str], DBusSignature("as")]:
        return list(self.registration.service_uuids)

    @dbus_property(access=READ)
    def RSSI(self) -> Annotated[int, DBusSignature("n")]:
        return self.rssi

    @dbus_property(access=READ)
    def ServiceData(self) -> Annotated[dict[str, Variant], DBusSignature("a{sv}")]:
        return {k: Variant("ay", v) for k, v in self.registration.service_data.items()}

    @dbus_property(access=READ)
    def ManufacturerData(self) -> Annotated[dict[int, Variant], DBusSignature("a{qv}")]:
        return {k: Variant("ay", v) for k, v in self.registration.manufacturer_data.items()}


class Adapter(ServiceInterface):
    """org.bluez.Adapter1: discovery on/off (the fake's scanning state)."""

    def __init__(self, fake: "FakeBluez", name: str, powered: bool) -> None:
        super().__init__("org.bluez.Adapter1")
        self.fake = fake
        self.adapter_name = name
        self.powered = powered
        self.discovering = False
        self.filters: dict[str, Any] = {}

    @dbus_property(access=READ)
    def Address(self) -> DBusStr:
        return f"00:AA:01:00:00:{int(self.adapter_name[3:]):02X}"

    @dbus_property(access=READ)
    def Name(self) -> DBusStr:
        return f"fake-{self.adapter_name}"

    @dbus_property(access=READ)
    def Alias(self) -> DBusStr:
        return f"fake-{self.adapter_name}"

    @dbus_property(access=READ)
    def Powered(self) -> DBusBool:
        return self.powered

    @dbus_property(access=READ)
    def Discovering(self) -> DBusBool:
        return self.discovering

    @dbus_property(access=READ)
    def Roles(self) -> Annotated[list[str], DBusSignature("as")]:
        return ["central", "peripheral"]

    @dbus_method()
    def SetDiscoveryFilter(self, filters: Annotated[dict[str, Variant], DBusSignature("a{sv}")]) -> None:
        self.filters = {k: v.value for k, v in filters.items()}

    @dbus_method()
    def StartDiscovery(self) -> None:
        if not self.powered:
            raise DBusError("org.bluez.Error.NotReady", "Resource Not Ready")
        self.discovering = True
        self.emit_properties_changed({"Discovering": True})
        self.fake.discovery_started(self.adapter_name)

    @dbus_method()
    def StopDiscovery(self) -> None:
        if not self.discovering:
            raise DBusError("org.bluez.Error.Failed", "No discovery started")
        self.discovering = False
        self.emit_properties_changed({"Discovering": False})


class AdvertisingManager(ServiceInterface):
    """org.bluez.LEAdvertisingManager1: reads the caller's LEAdvertisement1 object, as bluetoothd does."""

    def __init__(self, fake: "FakeBluez", name: str) -> None:
        super().__init__("org.bluez.LEAdvertisingManager1")
        self.fake = fake
        self.adapter_name = name

    @dbus_property(access=READ)
    def ActiveInstances(self) -> Annotated[int, DBusSignature("y")]:
        return sum(1 for r in self.fake.active.values() if r.adapter == self.adapter_name)

    @dbus_property(access=READ)
    def SupportedInstances(self) -> Annotated[int, DBusSignature("y")]:
        return 4

    @dbus_method()
    async def RegisterAdvertisement(
        self,
        path: Annotated[str, DBusSignature("o")],
        options: Annotated[dict[str, Variant], DBusSignature("a{sv}")],
    ) -> None:
        await self.fake.register(self.adapter_name, path)

    @dbus_method()
    def UnregisterAdvertisement(self, path: Annotated[str, DBusSignature("o")]) -> None:
        self.fake.unregister(self.adapter_name, path)


class FakeBluez:
    """The fake service. ``events`` logs ("register"|"unregister"|"refused", adapter, address, payload)."""

    def __init__(
        self,
        adapters: tuple[str, ...] = ("hci0", "hci1"),
        *,
        powered: bool = True,
        advertising: bool = True,
        seed: int = 1,
        rssi: int = -60,
        refuse_next: int = 0,
        tick: float = 0.25,
    ) -> None:
        self.adapter_names = adapters
        self.powered = powered
        self.advertising = advertising
        self.rng = random.Random(seed)
        self.rssi = rssi
        self.refuse_next = refuse_next
        self.tick = tick
        self.bus: MessageBus | None = None
        self.adapters: dict[str, Adapter] = {}
        self.active: dict[tuple[str, str], Registration] = {}  # (owner, object path) -> on the air
        self.devices: dict[str, Device] = {}
        self.events: list[tuple[str, str, str, bytes]] = []
        self._ticker: asyncio.Task[None] | None = None
        self._sender = ""

    async def start(self) -> "FakeBluez":
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        self.bus = bus
        bus.add_message_handler(self._note_sender)
        for name in self.adapter_names:
            adapter = Adapter(self, name, self.powered)
            self.adapters[name] = adapter
            bus.export(f"/org/bluez/{name}", adapter)
            if self.advertising:
                bus.export(f"/org/bluez/{name}", AdvertisingManager(self, name))
        await bus.request_name("org.bluez")
        self._ticker = asyncio.create_task(self._tick(self.tick))
        return self

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self.bus is not None:
            self.bus.disconnect()

    async def __aenter__(self) -> "FakeBluez":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _tick(self, interval: float) -> None:
        """Keep registered adverts "on the air": each device's RSSI changes a little, as BlueZ signals."""
        while True:
            await asyncio.sleep(interval)
            for device in list(self.devices.values()):
                device.rssi = self.rssi - self.rng.randrange(4)
                device.emit_properties_changed({"RSSI": device.rssi})

    async def _read_advertisement(self, owner: str, path: str) -> dict[str, Any]:
        assert self.bus is not None
        reply = await self.bus.call(
            Message(
                destination=owner,
                path=path,
                interface="org.freedesktop.DBus.Properties",
                member="GetAll",
                signature="s",
                body=["org.bluez.LEAdvertisement1"],
            )
        )
        if reply.message_type == MessageType.ERROR:
            raise DBusError("org.bluez.Error.Failed", f"cannot read advertisement: {reply.error_name}")
        return {k: v.value for k, v in reply.body[0].items()}

    async def register(self, adapter: str, path: str) -> None:
        owner = self._sender  # read before any await: the next call may change it
        if (owner, path) in self.active:
            raise DBusError("org.bluez.Error.AlreadyExists", "Already Exists")
        if self.adapters[adapter].discovering or self.refuse_next > 0:
            self.refuse_next = max(0, self.refuse_next - 1)
            self.events.append(("refused", adapter, "", b""))
            raise DBusError("org.bluez.Error.Failed", "Failed to register advertisement")
        props = await self._read_advertisement(owner, path)
        registration = Registration(
            adapter=adapter,
            object_path=path,
            owner=owner,
            address=nrpa(self.rng),
            service_uuids=[str(u).lower() for u in props.get("ServiceUUIDs", [])],
            service_data={str(k).lower(): bytes(v.value) for k, v in props.get("ServiceData", {}).items()},
            manufacturer_data={int(k): bytes(v.value) for k, v in props.get("ManufacturerData", {}).items()},
            type=str(props.get("Type", "")),
            includes=list(props.get("Includes", [])),
            local_name=props.get("LocalName"),
        )
        self.active[(owner, path)] = registration
        self.events.append(("register", adapter, registration.address, _payload(registration)))
        for name, other in self.adapters.items():
            if name != adapter and other.discovering:
                self._show(name, registration)

    def unregister(self, adapter: str, path: str) -> None:
        owner = self._sender
        registration = self.active.pop((owner, path), None)
        if registration is None:
            raise DBusError("org.bluez.Error.DoesNotExist", "Does Not Exist")
        self.events.append(("unregister", adapter, registration.address, _payload(registration)))
        # The advert stops: its device objects stop changing (BlueZ removes them ~30 s later).
        for key in [k for k, d in self.devices.items() if d.registration is registration]:
            self.devices.pop(key)

    def discovery_started(self, adapter: str) -> None:
        for registration in self.active.values():
            if registration.adapter != adapter:
                self._show(adapter, registration)

    def _show(self, adapter: str, registration: Registration) -> None:
        assert self.bus is not None
        path = f"/org/bluez/{adapter}/dev_{registration.address.replace(':', '_')}"
        if path in self.devices:
            return
        device = Device(f"/org/bluez/{adapter}", registration, self.rssi)
        self.devices[path] = device
        self.bus.export(path, device)

    def _note_sender(self, message: Message) -> None:
        """A bus message handler: remember who calls, since service methods do not see the message."""
        if message.message_type == MessageType.METHOD_CALL and message.sender:
            self._sender = message.sender


def _payload(registration: Registration) -> bytes:
    for data in registration.service_data.values():
        return data
    for data in registration.manufacturer_data.values():
        return data
    return b""


async def _serve() -> None:
    """Run the fake until SIGTERM/SIGINT (for tests that drive `proximity node` in subprocesses)."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with FakeBluez(tick=0.2) as fake:
        print("ready", flush=True)
        await stop.wait()
        print(len([e for e in fake.events if e[0] == "register"]), flush=True)


if __name__ == "__main__":
    asyncio.run(_serve())
