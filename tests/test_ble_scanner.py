"""The scanner façade over bleak's real front end: replays of the btsnoop fixtures and of synthetic
captures through ``BleakScanner(backend=ReplayBackend)``, and the one clear "no Bluetooth" error."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)

from conftest import FIXTURES
from proximity.ble.btsnoop import DATALINK_HCI, advertising_reports, legacy_report_event, write_btsnoop
from proximity.ble.recording import RecordedAdvert, load_capture, recorded_from_reports
from proximity.ble.replay import Replay, ReplayBackend
from proximity.ble.scanner import Scanner, bluetooth_unavailable, or_patterns
from proximity.errors import BluetoothUnavailableError, ReplayError
from proximity.payloads import BluezoneAdvert, GaenAdvert
from proximity.payloads.adverts import GAEN_SERVICE_UUID
from proximity.sightings import Sighting

RUN1 = FIXTURES / "btsnoop" / "run1_hci0_h4_1002.btsnoop"
RUN4 = FIXTURES / "btsnoop" / "run4_two_nodes_monitor_2001.btsnoop"
AEM = bytes.fromhex("400c0000")
GAEN = GaenAdvert(bytes(range(16)), AEM)
BLUEZONE = BluezoneAdvert(bytes.fromhex("B9A665D754FE65E665D76A45"))


def replay(
    adverts: list[RecordedAdvert], speed: float | None = None, **options: object
) -> tuple[list[Sighting], Scanner]:
    found: list[Sighting] = []

    async def main() -> Scanner:
        scanner = Scanner(found.append, replay=Replay(adverts, speed), **options)  # type: ignore[arg-type]
        async with scanner:
            await scanner.run(30)
        return scanner

    return found, asyncio.run(main())


def test_fixture_replay_gives_sightings_with_recorded_times() -> None:
    adverts = load_capture(RUN1)
    found, scanner = replay(adverts)
    reports = list(advertising_reports(RUN1.read_bytes()))
    assert [s.id for s in found] == [bytes([b]) * 16 for b in (0, 1, 1, 2, 2, 0, 1)]
    assert [s.time for s in found] == [r.time for r in reports]
    assert [s.address for s in found] == [r.address for r in reports]
    assert {(s.scheme, s.rssi, s.metadata, s.own_id) for s in found} == {("gaen", None, AEM, None)}
    assert scanner.stats.adverts == 7 and scanner.stats.sightings == 7


def test_two_node_capture_split_by_adapter() -> None:
    found, _ = replay(load_capture(RUN4, adapter=1))
    assert {s.id[0] for s in found} == {0xA0, 0xA1, 0xA2}


def synthetic() -> list[RecordedAdvert]:
    other = bytes.fromhex("0201060303aafe0416aafe00")  # an Eddystone-like advert: not ours
    malformed = bytes.fromhex("02011a03036ffd08166ffd0102030405")  # GAEN UUID, 5-byte payload
    events = [
        (100.0, legacy_report_event("11:00:00:00:00:01", GAEN.to_ad_bytes(), -58)),
        (100.5, legacy_report_event("11:00:00:00:00:02", BLUEZONE.to_ad_bytes(), -92)),
        (101.0, legacy_report_event("11:00:00:00:00:03", other, -40)),
        (101.5, legacy_report_event("11:00:00:00:00:04", malformed, -60)),
        (102.0, legacy_report_event("11:00:00:00:00:05", GAEN.to_ad_bytes(), None)),
    ]
    return list(recorded_from_reports(advertising_reports(write_btsnoop(DATALINK_HCI, events))))


def test_synthetic_capture_both_schemes_real_rssi_and_malformed_skipped() -> None:
    found, scanner = replay(synthetic())
    assert [(s.scheme, s.id, s.rssi, s.time, s.address) for s in found] == [
        ("gaen", GAEN.rpi, -58, 100.0, "11:00:00:00:00:01"),
        ("bluezone", BLUEZONE.bluezone_id, -92, 100.5, "11:00:00:00:00:02"),
        ("gaen", GAEN.rpi, None, 102.0, "11:00:00:00:00:05"),
    ]
    assert found[1].metadata is None and found[0].metadata == AEM
    # bleak's own UUID filter dropped the non-matching advert before the façade saw it.
    assert scanner.stats == type(scanner.stats)(adverts=4, sightings=3, malformed=1)


def test_scheme_filter_and_own_id() -> None:
    found, _ = replay(synthetic(), schemes=("bluezone",), own_id=lambda scheme: b"\x07" * 12)
    assert [(s.scheme, s.own_id) for s in found] == [("bluezone", b"\x07" * 12)]


def test_bleak_uuid_filter_drops_service_data_without_the_uuid_list() -> None:
    # Service data alone (no 16-bit UUID list): active scans filter on the list, as BlueZ does.
    bare = RecordedAdvert(5.0, "22:00:00:00:00:01", -50, {GAEN_SERVICE_UUID: GAEN.payload})
    assert replay([bare])[0] == []
    # Passive scans use or_patterns on the AD structures instead, so the same advert passes.
    assert [s.id for s in replay([bare], passive=True)[0]] == [GAEN.rpi]


def test_passive_without_patterns_is_refused_like_bluez() -> None:
    with pytest.raises(BleakError, match="or_patterns"):
        BleakScanner(None, None, "passive", backend=ReplayBackend, replay=Replay([]))
    assert or_patterns(["gaen", "bluezone"]) == [(0, 0x16, b"\x6f\xfd"), (0, 0xFF, b"\xb5\x22")]


def test_timed_replay_gives_the_same_sightings() -> None:
    adverts = synthetic()
    assert replay(adverts, speed=1000.0)[0] == replay(adverts)[0]
    with pytest.raises(ValueError, match="speed"):
        Replay(adverts, speed=0)


def test_async_generator_and_bleak_front_end() -> None:
    async def main() -> tuple[list[Sighting], list[str]]:
        scanner = Scanner(replay=Replay(synthetic()))
        got: list[Sighting] = []
        async with scanner:
            async for sighting in scanner.sightings():
                got.append(sighting)
                if len(got) == 3:
                    break
        devices = BleakScanner(None, None, backend=ReplayBackend, replay=Replay(synthetic()))
        async with devices:
            await asyncio.sleep(0.05)
        return got, sorted(d.address for d in devices.discovered_devices)

    got, addresses = asyncio.run(main())
    assert [s.address for s in got] == ["11:00:00:00:00:01", "11:00:00:00:00:02", "11:00:00:00:00:05"]
    assert addresses == [f"11:00:00:00:00:0{i}" for i in range(1, 6)]


def test_unit_level_bleak_objects() -> None:
    """Tier 0: the façade's callback with bleak's real AdvertisementData and BLEDevice."""
    found: list[Sighting] = []
    scanner = Scanner(found.append, replay=Replay([]), clock=lambda: 1234.5)
    data = AdvertisementData(None, {0x22B5: BLUEZONE.payload}, {}, [], None, -77, ())
    scanner._on_bleak(BLEDevice("33:00:00:00:00:01", None, None), data)
    assert found == [Sighting("bluezone", BLUEZONE.id, 1234.5, -77, None, "33:00:00:00:00:01")]
    # BlueZ passes HCI's 127 ("not available", e.g. from btvirt) through; bleak's own default is -127.
    for unavailable in (127, -127, 21):
        scanner._on_bleak(BLEDevice("33:00:00:00:00:02", None, None), data._replace(rssi=unavailable))
        assert found[-1].rssi is None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (FileNotFoundError(2, "No such file"), "no-system-bus"),
        (BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", []), "no-bluez"),
        (BleakDBusError("org.freedesktop.DBus.Error.UnknownObject", []), "no-adapter"),
        (BleakDBusError("org.bluez.Error.NotReady", []), "powered-off"),
        (BleakDBusError("org.freedesktop.DBus.Error.AccessDenied", []), "permission"),
        (BleakBluetoothNotAvailableError("x", BleakBluetoothNotAvailableReason.NO_BLUETOOTH), "no-adapter"),
        (BleakBluetoothNotAvailableError("x", BleakBluetoothNotAvailableReason.POWERED_OFF), "powered-off"),
    ],
)
def test_no_bluetooth_errors_map_to_one_reason(error: BaseException, reason: str) -> None:
    translated = bluetooth_unavailable(error, "hci0")
    assert translated is not None and translated.reason == reason
    assert str(translated).startswith("Bluetooth is not available (hci0): ")


def test_other_errors_are_not_hidden() -> None:
    assert bluetooth_unavailable(BleakError("something else")) is None
    assert bluetooth_unavailable(BleakDBusError("org.bluez.Error.Failed", ["boom"])) is None


def test_missing_system_bus_gives_the_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """bleak's real BlueZ backend against a bus socket that does not exist."""
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'missing'}")

    async def main() -> None:
        async with Scanner() as scanner:
            await scanner.run(0.1)

    with pytest.raises(BluetoothUnavailableError, match="no D-Bus system bus") as caught:
        asyncio.run(main())
    assert caught.value.reason == "no-system-bus"


# -- a replay that fails ends, and says why (it must never hang its caller) ------------------------

BAD_UUID = "0000zzzz-0000-1000-8000-00805f9b34fb"


def replay_within(adverts: list[RecordedAdvert], seconds: float = 5.0, **options: object) -> Scanner:
    """Play to the end (``run()`` with no time limit); a replay that never finishes fails the test
    instead of hanging it, and only what ``run()`` raised reaches the test."""

    async def main() -> Scanner:
        scanner = Scanner(replay=Replay(adverts), **options)  # type: ignore[arg-type]
        await scanner.start()
        try:
            await asyncio.wait_for(scanner.run(), seconds)
        except TimeoutError:
            raise AssertionError("the replay never finished") from None
        finally:
            with contextlib.suppress(Exception):
                await scanner.stop()
        return scanner

    return asyncio.run(main())


def test_replay_callback_error_reaches_the_caller_and_the_replay_finishes() -> None:
    adverts = [
        RecordedAdvert(
            10.0, "22:00:00:00:00:01", -50, {GAEN_SERVICE_UUID: GAEN.payload}, {}, (GAEN_SERVICE_UUID,)
        )
    ]

    def boom(sighting: Sighting) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(ReplayError, match=r"advert 1 \(recorded at unix time 10\).*disk on fire") as caught:
        replay_within(adverts, on_sighting=boom)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert (caught.value.index, caught.value.time) == (1, 10.0)


def test_replay_passes_the_library_errors_through_unchanged() -> None:
    adverts = [
        RecordedAdvert(
            3.0, "22:00:00:00:00:01", -50, {GAEN_SERVICE_UUID: GAEN.payload}, {}, (GAEN_SERVICE_UUID,)
        )
    ]

    def refuse(sighting: Sighting) -> None:
        raise BluetoothUnavailableError("busy", "nope")

    with pytest.raises(BluetoothUnavailableError, match="nope"):
        replay_within(adverts, on_sighting=refuse)


def test_replay_with_a_non_hex_service_uuid_skips_that_advert() -> None:
    bad = RecordedAdvert(
        1.0, "22:00:00:00:00:01", -50, {BAD_UUID: b"\x01", "zzzz": b"\x02"}, {}, (GAEN_SERVICE_UUID,)
    )
    good = RecordedAdvert(2.0, "22:00:00:00:00:02", -51, {GAEN_SERVICE_UUID: GAEN.payload})
    found: list[Sighting] = []
    scanner = replay_within([bad, good], on_sighting=found.append, passive=True)
    assert [(s.time, s.id) for s in found] == [(2.0, GAEN.rpi)]
    assert scanner.stats.adverts == 1  # passive: the or_patterns never matched the bad advert
    scanner = replay_within([bad, good], on_sighting=found.append)  # active: bleak's UUID filter passes it
    assert scanner.stats.adverts == 1 and scanner.stats.sightings == 0
