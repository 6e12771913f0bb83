"""btsnoop parsing: the real QEMU-stack captures, checked against an independent byte scan, and synthetic
captures for what they lack (datalink 1001, extended reports, Bluezone adverts, real RSSI values)."""

from __future__ import annotations

import re
import struct
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURES
from proximity.ble.btsnoop import (
    DATALINK_H4,
    DATALINK_HCI,
    DATALINK_MONITOR,
    AdvertisingReport,
    BtsnoopError,
    advertised_frames,
    advertising_reports,
    command_complete,
    extended_report_event,
    format_address,
    hci_command,
    legacy_report_event,
    parse_address,
    read_packets,
    write_btsnoop,
)
from proximity.payloads import BluezoneAdvert, GaenAdvert, decode_ad_bytes

CAPTURES = FIXTURES / "btsnoop"
RUN1_H4 = CAPTURES / "run1_hci0_h4_1002.btsnoop"
RUN1_MONITOR = CAPTURES / "run1_monitor_2001.btsnoop"
RUN3 = CAPTURES / "run3_monitor_2001.btsnoop"
RUN4 = CAPTURES / "run4_two_nodes_monitor_2001.btsnoop"
AEM = bytes.fromhex("400c0000")
GAEN_PREFIX = bytes.fromhex("02010403036ffd17166ffd")


def reports(path: Path) -> list[AdvertisingReport]:
    return list(advertising_reports(path.read_bytes()))


def independent_scan(raw: bytes) -> list[tuple[str, bytes]]:
    """A second reading of the same files: a regex for one-report legacy LE Meta events carrying
    GAEN service data, with no knowledge of btsnoop records (address as text, RPI)."""
    pattern = re.compile(rb"\x3e\x2b\x02\x01\x03\x01(.{6})\x1f" + re.escape(GAEN_PREFIX) + rb"(.{16})", re.S)
    return [(format_address(m.group(1)), m.group(2)) for m in pattern.finditer(raw)]


def gaen_id(report: AdvertisingReport) -> bytes:
    advert = decode_ad_bytes(report.data)
    assert isinstance(advert, GaenAdvert)
    return advert.rpi


@pytest.mark.parametrize("path", [RUN1_H4, RUN1_MONITOR, RUN3, RUN4], ids=lambda p: p.name)
def test_fixture_reports_agree_with_an_independent_byte_scan(path: Path) -> None:
    found = [(r.address, gaen_id(r)) for r in reports(path)]
    assert found == independent_scan(path.read_bytes())
    assert found


def test_run1_h4_and_monitor_captures_of_one_run_hold_the_same_reports() -> None:
    h4, monitor = reports(RUN1_H4), reports(RUN1_MONITOR)
    assert read_packets(RUN1_H4.read_bytes())[0] == DATALINK_H4
    assert read_packets(RUN1_MONITOR.read_bytes())[0] == DATALINK_MONITOR
    assert [(r.time, r.address, r.data) for r in h4] == [(r.time, r.address, r.data) for r in monitor]
    assert {r.adapter for r in h4} == {None} and {r.adapter for r in monitor} == {0}


def test_run1_values() -> None:
    found = reports(RUN1_H4)
    assert [gaen_id(r)[0] for r in found] == [0, 1, 1, 2, 2, 0, 1]
    assert all(gaen_id(r) == bytes([gaen_id(r)[0]]) * 16 for r in found)
    first = found[0]
    assert first.address == "3A:3D:36:67:86:26"
    assert first.time == pytest.approx(1795829826.006583, abs=1e-6)
    assert first.data == GAEN_PREFIX + bytes(16) + AEM
    # btvirt reports no RSSI (0x7f), ADV_NONCONN_IND from random addresses.
    assert {(r.rssi, r.event_type, r.address_type, r.extended) for r in found} == {(None, 3, 1, False)}
    advert = decode_ad_bytes(first.data)
    assert isinstance(advert, GaenAdvert) and advert.aem == AEM


def ids_per_address(found: list[AdvertisingReport]) -> dict[tuple[int | None, str], set[bytes]]:
    out: dict[tuple[int | None, str], set[bytes]] = defaultdict(set)
    for r in found:
        out[(r.adapter, r.address)].add(gaen_id(r))
    return out


def test_run4_two_nodes_each_id_under_its_own_non_resolvable_address() -> None:
    found = reports(RUN4)
    by_adapter = {a: {gaen_id(r)[0] for r in found if r.adapter == a} for a in (0, 1)}
    assert by_adapter == {0: {0xB0, 0xB1, 0xB2}, 1: {0xA0, 0xA1, 0xA2}}
    assert all(len(ids) == 1 for ids in ids_per_address(found).values())
    assert len(ids_per_address(found)) == 6
    # Non-resolvable private addresses: the two top bits are 00.
    assert all(int(r.address[:2], 16) >> 6 == 0 for r in found)


def test_run3_shows_the_linkable_case_the_check_catches() -> None:
    linked = {k: v for k, v in ids_per_address(reports(RUN3)).items() if len(v) > 1}
    assert linked == {(0, "5D:48:00:6A:CA:5E"): {bytes(16), bytes([1]) * 16}}


def test_non_advertising_events_are_skipped() -> None:
    command_complete = bytes.fromhex("0e0401052000")
    capture = write_btsnoop(DATALINK_HCI, [(10.0, command_complete)])
    assert list(advertising_reports(capture)) == []


# -- synthetic captures --------------------------------------------------------------------------

BLUEZONE = BluezoneAdvert(bytes.fromhex("B9A665D754FE65E665D76A45"))
GAEN = GaenAdvert(bytes(range(16)), AEM)


@pytest.mark.parametrize("datalink", [DATALINK_HCI, DATALINK_H4, DATALINK_MONITOR])
def test_synthetic_legacy_reports_with_real_rssi_round_trip(datalink: int) -> None:
    events = [
        (1700000000.25, legacy_report_event("12:34:56:78:9A:BC", GAEN.to_ad_bytes(), -67)),
        (1700000001.5, legacy_report_event("01:02:03:04:05:06", BLUEZONE.to_ad_bytes(), -101, event_type=0)),
        (1700000002.0, legacy_report_event("3F:00:00:00:00:01", BLUEZONE.to_ad_bytes(), None)),
        (1700000003.0, legacy_report_event("3F:00:00:00:00:02", GAEN.to_ad_bytes(), 5)),
    ]
    found = list(advertising_reports(write_btsnoop(datalink, events, adapter=2)))
    assert [r.time for r in found] == [1700000000.25, 1700000001.5, 1700000002.0, 1700000003.0]
    assert [r.rssi for r in found] == [-67, -101, None, 5]
    assert [decode_ad_bytes(r.data) for r in found] == [GAEN, BLUEZONE, BLUEZONE, GAEN]
    assert found[0].address == "12:34:56:78:9A:BC" and found[1].event_type == 0
    assert {r.adapter for r in found} == ({2} if datalink == DATALINK_MONITOR else {None})


def test_extended_reports_and_fragments() -> None:
    ad = BLUEZONE.to_ad_bytes()
    events = [
        (5.0, extended_report_event("AA:00:00:00:00:01", GAEN.to_ad_bytes(), -48)),
        # One advert in two fragments: "more data" (status 01) then complete.
        (6.0, extended_report_event("AA:00:00:00:00:02", ad[:10], -70, event_type=1 << 5, sid=3)),
        (6.1, extended_report_event("AA:00:00:00:00:02", ad[10:], -71, sid=3)),
        # A truncated advert (status 10) is dropped.
        (7.0, extended_report_event("AA:00:00:00:00:03", ad, -70, event_type=2 << 5)),
        (8.0, extended_report_event("AA:00:00:00:00:04", ad, None)),
    ]
    found = list(advertising_reports(write_btsnoop(DATALINK_MONITOR, events)))
    assert [(r.address[-2:], r.rssi, r.time) for r in found] == [
        ("01", -48, 5.0),
        ("02", -71, 6.1),
        ("04", None, 8.0),
    ]
    assert all(r.extended for r in found)
    assert [decode_ad_bytes(r.data) for r in found] == [GAEN, BLUEZONE, BLUEZONE]


addresses = st.binary(min_size=6, max_size=6).map(format_address)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**40).map(lambda us: us / 1e6),
            addresses,
            st.binary(max_size=31),
            st.none() | st.integers(-127, 20),
            st.booleans(),
        ),
        max_size=8,
    ),
    st.sampled_from([DATALINK_HCI, DATALINK_H4, DATALINK_MONITOR]),
)
def test_any_reports_round_trip(
    rows: list[tuple[float, str, bytes, int | None, bool]], datalink: int
) -> None:
    events = [
        (t, (extended_report_event if ext else legacy_report_event)(addr, data, rssi))
        for t, addr, data, rssi, ext in rows
    ]
    found = list(advertising_reports(write_btsnoop(datalink, events)))
    assert [(r.time, r.address, r.data, r.rssi, r.extended) for r in found] == rows


def test_address_text_round_trip_and_errors() -> None:
    assert parse_address("12:34:56:78:9A:BC") == bytes.fromhex("bc9a78563412")
    with pytest.raises(ValueError, match="AA:BB"):
        parse_address("12-34")


# -- malformed input -----------------------------------------------------------------------------

GOOD = write_btsnoop(DATALINK_H4, [(1.0, legacy_report_event("00:00:00:00:00:01", GAEN.to_ad_bytes(), -60))])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter than the 16-byte header"),
        (b"btsnoo", "shorter than the 16-byte header"),
        (b"pcapng\0\0" + bytes(8), "bad magic"),
        (b"btsnoop\0" + struct.pack(">II", 2, 1002), "version 2"),
        (b"btsnoop\0" + struct.pack(">II", 1, 1003), "datalink 1003"),
        (GOOD[:20], "truncated record header"),
        (GOOD[:-5], "truncated record"),
    ],
)
def test_malformed_captures_raise_a_typed_error(data: bytes, message: str) -> None:
    with pytest.raises(BtsnoopError, match=message) as caught:
        list(advertising_reports(data))
    assert isinstance(caught.value, ValueError) and caught.value.offset >= 0


def test_a_report_overrunning_its_event_is_refused() -> None:
    event = bytearray(legacy_report_event("00:00:00:00:00:01", GAEN.to_ad_bytes(), -60))
    event[2 + 1 + 1 + 1 + 1 + 6] = 40  # the report's data length claims more than the event holds
    with pytest.raises(BtsnoopError, match="legacy advertising report needs"):
        list(advertising_reports(write_btsnoop(DATALINK_HCI, [(1.0, bytes(event))])))
    short = extended_report_event("00:00:00:00:00:01", b"", -60)[:20]
    short = bytes([short[0], len(short) - 2]) + short[2:]
    with pytest.raises(BtsnoopError, match="extended advertising report needs"):
        list(advertising_reports(write_btsnoop(DATALINK_HCI, [(1.0, short)])))


def test_inconsistent_lengths_and_wrong_types() -> None:
    record_too_long = bytearray(GOOD)
    struct.pack_into(">I", record_too_long, 16, 1)  # original length below included length
    with pytest.raises(BtsnoopError, match="record includes"):
        list(advertising_reports(bytes(record_too_long)))
    with pytest.raises(TypeError, match="bytes"):
        read_packets("btsnoop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rssi"):
        legacy_report_event("00:00:00:00:00:01", b"", -200)


def test_btsnoop_parsing_is_pure() -> None:
    """Reading captures needs no bleak, asyncio or D-Bus: only the scanner and advertiser load those."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, proximity.ble, proximity.ble.btsnoop\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('bleak', 'asyncio', 'dbus_fast', 'sqlite3'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


# -- the advertiser side: which (address, data) pairs went on the air ------------------------------


def frames_by_address(path: Path) -> dict[tuple[int | None, str], list[bytes]]:
    out: dict[tuple[int | None, str], list[bytes]] = defaultdict(list)
    for frame in advertised_frames(path.read_bytes()):
        advert = decode_ad_bytes(frame.data)
        assert isinstance(advert, GaenAdvert)
        out[(frame.adapter, frame.address)].append(advert.rpi)
    return out


def test_run4_every_id_went_out_under_its_own_address() -> None:
    frames = frames_by_address(RUN4)
    assert len(frames) == 6 and all(len(set(ids)) == 1 for ids in frames.values())
    assert {ids[0][0] for (adapter, _), ids in frames.items() if adapter == 0} == {0xA0, 0xA1, 0xA2}
    # The two sides of one capture agree: every report a scanner got was a frame the other controller sent.
    sent = {(address, ids[0]) for (_, address), ids in frames.items()}
    assert {(r.address, gaen_id(r)) for r in reports(RUN4)} <= sent


def test_run3_in_place_update_is_caught_on_the_air() -> None:
    """run3 changed the service data under a live address: the new ID went out under the old address."""
    linked = {key: set(ids) for key, ids in frames_by_address(RUN3).items() if len(set(ids)) > 1}
    assert linked == {
        (1, "1F:BC:F8:10:26:21"): {bytes(16), bytes([1]) * 16},
        (1, "5D:48:00:6A:CA:5E"): {bytes(16), bytes([1]) * 16},
    }


def test_run1_advertiser_frames() -> None:
    frames = list(advertised_frames(RUN1_MONITOR.read_bytes()))
    assert [(decode_ad_bytes(f.data) or GAEN).id[0] for f in frames] == [0, 1, 2, 0, 0, 1]
    assert frames[0].address == "3A:3D:36:67:86:26" and {f.adapter for f in frames} == {1}
    assert list(advertised_frames(RUN1_H4.read_bytes())) == []  # hci0 only scanned


def test_refused_commands_do_not_change_what_is_on_the_air() -> None:
    a, b = GAEN.to_ad_bytes(), BLUEZONE.to_ad_bytes()
    commands = [
        (1.0, hci_command(0x2005, parse_address("01:00:00:00:00:01"))),
        (1.1, hci_command(0x2008, bytes([len(a)]) + a.ljust(31, b"\0"))),
        (1.2, hci_command(0x200A, b"\x01")),
        (2.0, hci_command(0x2005, parse_address("01:00:00:00:00:02"))),  # refused: scanning
        (3.0, hci_command(0x2008, bytes([len(b)]) + b.ljust(31, b"\0"))),  # in place: linkable
        # Extended advertising, set 1.
        (4.0, hci_command(0x2035, b"\x01" + parse_address("02:00:00:00:00:01"))),
        (4.1, hci_command(0x2037, b"\x01\x03\x01" + bytes([len(b)]) + b)),
        (4.2, hci_command(0x2039, b"\x01\x01\x01\x00\x00\x00")),
    ]
    events = [(t + 0.01, command_complete(int.from_bytes(c[:2], "little"))) for t, c in commands]
    events[3] = (2.01, command_complete(0x2005, status=0x0C))
    frames = list(advertised_frames(write_btsnoop(DATALINK_MONITOR, events, commands=commands)))
    assert [(f.address, decode_ad_bytes(f.data)) for f in frames] == [
        ("01:00:00:00:00:01", GAEN),
        ("01:00:00:00:00:01", BLUEZONE),
        ("02:00:00:00:00:01", BLUEZONE),
    ]
    assert [f.time for f in frames] == [1.21, 3.01, 4.21]


def _second_record_offset(capture: bytes) -> int:
    """Byte offset of the second record of a capture (16-byte header, 24-byte record headers)."""
    included: int = struct.unpack_from(">I", capture, 16 + 4)[0]
    return 16 + 24 + included


@pytest.mark.parametrize("datalink", [DATALINK_HCI, DATALINK_H4])
@pytest.mark.parametrize("bad", [bytes([0x3E, 0x00, 0x02]), bytes([0x3E, 0x00]), bytes([0x3E])])
def test_le_meta_event_without_parameters_is_a_malformed_record(datalink: int, bad: bytes) -> None:
    good = legacy_report_event("00:00:00:00:00:01", GAEN.to_ad_bytes(), -60)
    capture = write_btsnoop(datalink, [(1.0, good), (2.0, bad)])
    with pytest.raises(BtsnoopError, match=r"LE Meta event .*\(record 2 at byte (\d+)\)") as caught:
        list(advertising_reports(capture))
    assert caught.value.offset == _second_record_offset(capture) and caught.value.record == 2


def test_errors_inside_a_record_give_that_records_offset() -> None:
    good = legacy_report_event("00:00:00:00:00:01", GAEN.to_ad_bytes(), -60)
    overrun = bytearray(good)
    overrun[2 + 1 + 1 + 1 + 1 + 6] = 40
    short_meta = bytes([0x3E, 50]) + good[2:]
    short_ext = extended_report_event("00:00:00:00:00:01", b"", -60)[:20]
    short_ext = bytes([short_ext[0], len(short_ext) - 2]) + short_ext[2:]
    for bad, message in (
        (bytes(overrun), "legacy advertising report needs"),
        (short_meta, "LE Meta event announces 50 bytes"),
        (short_ext, "extended advertising report needs"),
    ):
        capture = write_btsnoop(DATALINK_HCI, [(1.0, good), (2.0, bad)])
        with pytest.raises(BtsnoopError, match=message) as caught:
            list(advertising_reports(capture))
        offset = _second_record_offset(capture)
        assert caught.value.offset == offset and f"(record 2 at byte {offset})" in str(caught.value)
    command = hci_command(0x2008, bytes(3))[:-1]  # announces 3 parameter bytes, holds 2
    capture = write_btsnoop(DATALINK_HCI, [(1.0, good)], commands=[(2.0, command)])
    with pytest.raises(BtsnoopError, match="shorter than it announces") as caught:
        list(advertised_frames(capture))
    assert caught.value.offset == _second_record_offset(capture)
