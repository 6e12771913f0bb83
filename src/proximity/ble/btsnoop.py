"""btsnoop captures (bytes in, advertising reports out): the format btmon and Android's snoop log write.

Pure parsing, no I/O: a capture replay feeds these reports to the very code a live scan runs. Supported
datalinks: 1001 (HCI, direction in the flags), 1002 (H4: a packet-type byte first, as Android's
``btsnoop_hci.log``) and 2001 (Linux monitor, ``btmon -w``: adapter index and opcode in the flags).
Advertising reports are HCI LE Meta events (0x3E), legacy (sub-event 0x02) or extended (0x0D);
extended fragments ("more data to come") are joined per advertiser and set.

A small writer (:func:`write_btsnoop`, :func:`legacy_report_event`, :func:`extended_report_event`)
builds synthetic captures for what recorded ones lack (datalink 1001, extended reports, real RSSI).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from proximity.errors import BtsnoopError
from proximity.radio import RSSI_RANGE
from proximity.times import LATEST_TIME

__all__ = [
    "DATALINK_H4",
    "DATALINK_HCI",
    "DATALINK_MONITOR",
    "RSSI_UNAVAILABLE",
    "AdvertisedFrame",
    "AdvertisingReport",
    "BtsnoopError",
    "BtsnoopPacket",
    "advertised_frames",
    "advertising_reports",
    "command_complete",
    "extended_report_event",
    "format_address",
    "hci_command",
    "hci_commands",
    "hci_events",
    "legacy_report_event",
    "parse_address",
    "read_packets",
    "write_btsnoop",
]

MAGIC = b"btsnoop\0"
VERSION = 1
DATALINK_HCI = 1001
DATALINK_H4 = 1002
DATALINK_MONITOR = 2001
DATALINKS = (DATALINK_HCI, DATALINK_H4, DATALINK_MONITOR)
# Microseconds from 0000-01-01 (btsnoop's epoch) to 1970-01-01.
EPOCH_OFFSET_US = 0x00DCDDB30F2F8000
RSSI_UNAVAILABLE = 127

_HEADER = struct.Struct(">8sII")
_RECORD = struct.Struct(">IIIIq")
_H4_COMMAND = 0x01
_H4_EVENT = 0x04
_MONITOR_COMMAND = 2
_MONITOR_EVENT = 3
_MONITOR_NO_INDEX = 0xFFFF
_EVENT_LE_META = 0x3E
_SUB_LEGACY = 0x02
_SUB_EXTENDED = 0x0D
_LEGACY_FIXED = 10  # event type, address type, address (6), length ... RSSI after the data
_EXTENDED_FIXED = 24
_EXT_STATUS_SHIFT = 5
_EXT_COMPLETE, _EXT_MORE, _EXT_TRUNCATED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class BtsnoopPacket:
    """One record: its time (unix seconds), the record flags, and the packet bytes as captured.

    ``offset`` is where the record starts in the capture and ``number`` counts records from 1, so an
    error about its contents can point at it.
    """

    time: float
    flags: int
    drops: int
    data: bytes
    offset: int = 0
    number: int = 0

    def error(self, reason: str) -> BtsnoopError:
        """A :class:`BtsnoopError` about this record's contents, naming the record and its offset."""
        return BtsnoopError(reason, self.offset, self.number)


@dataclass(frozen=True, slots=True)
class AdvertisingReport:
    """One advertising report from a controller, as a scanner host receives it.

    ``address`` is the advertiser's address as text (``AA:BB:CC:DD:EE:FF``, most significant byte
    first), ``rssi`` is None when the controller reported 127 ("not available"), ``data`` the raw AD
    structures. ``adapter`` is the monitor's controller index (datalink 2001), else None.
    """

    time: float
    address: str
    address_type: int
    rssi: int | None
    data: bytes
    event_type: int
    extended: bool = False
    adapter: int | None = None


def format_address(raw: bytes) -> str:
    """A 6-byte little-endian HCI address as ``AA:BB:CC:DD:EE:FF``."""
    return ":".join(f"{b:02X}" for b in reversed(raw))


def parse_address(text: str) -> bytes:
    """The inverse of :func:`format_address`."""
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"address must look like AA:BB:CC:DD:EE:FF, got {text!r}")
    return bytes(int(p, 16) for p in reversed(parts))


def _header(data: bytes) -> int:
    if len(data) < _HEADER.size:
        raise BtsnoopError(f"file is {len(data)} bytes, shorter than the 16-byte header", 0)
    magic, version, datalink = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise BtsnoopError(f"bad magic {magic!r}, expected {MAGIC!r}", 0)
    if version != VERSION:
        raise BtsnoopError(f"version {version}, only version 1 is defined", 8)
    if datalink not in DATALINKS:
        raise BtsnoopError(f"datalink {datalink} is not supported (1001, 1002 or 2001)", 12)
    return int(datalink)


def read_packets(data: bytes) -> tuple[int, Iterator[BtsnoopPacket]]:
    """The capture's datalink and an iterator over its records; raises :class:`BtsnoopError`."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("a btsnoop capture must be bytes")
    data = bytes(data)
    return _header(data), _records(data)


def _records(data: bytes) -> Iterator[BtsnoopPacket]:
    offset = _HEADER.size
    number = 0
    while offset < len(data):
        number += 1
        if offset + _RECORD.size > len(data):
            raise BtsnoopError(f"truncated record header ({len(data) - offset} of 24 bytes)", offset, number)
        original, included, flags, drops, stamp = _RECORD.unpack_from(data, offset)
        start = offset + _RECORD.size
        if included > original:
            raise BtsnoopError(
                f"record includes {included} bytes of a {original}-byte packet", offset, number
            )
        if start + included > len(data):
            raise BtsnoopError(
                f"truncated record: {included} bytes announced, {len(data) - start} present", offset, number
            )
        time = (stamp - EPOCH_OFFSET_US) / 1e6
        if not 0 <= time <= LATEST_TIME:
            raise BtsnoopError(
                f"record dated {time:.0f} unix seconds, outside 1970 to year 9998 (a damaged timestamp)",
                offset,
                number,
            )
        yield BtsnoopPacket(time, flags, drops, data[start : start + included], offset, number)
        offset = start + included


def hci_events(data: bytes) -> Iterator[tuple[BtsnoopPacket, bytes, int | None]]:
    """Every HCI event the controller sent to the host: (record, event bytes, monitor adapter index)."""
    datalink, packets = read_packets(data)
    for packet in packets:
        if datalink == DATALINK_HCI:
            # flags bit 0: 1 = received by the host; bit 1: command/event rather than data.
            if packet.flags & 0x03 == 0x03:
                yield packet, packet.data, None
        elif datalink == DATALINK_H4:
            if packet.data[:1] == bytes([_H4_EVENT]):
                yield packet, packet.data[1:], None
        elif packet.flags & 0xFFFF == _MONITOR_EVENT:
            index = packet.flags >> 16
            yield packet, packet.data, None if index == _MONITOR_NO_INDEX else index


def hci_commands(data: bytes) -> Iterator[tuple[BtsnoopPacket, int, bytes, int | None]]:
    """Every HCI command the host sent: (record, opcode, parameters, monitor adapter index)."""
    datalink, packets = read_packets(data)
    for packet in packets:
        if datalink == DATALINK_HCI:
            if packet.flags & 0x03 != 0x02:
                continue
            command, index = packet.data, None
        elif datalink == DATALINK_H4:
            if packet.data[:1] != bytes([_H4_COMMAND]):
                continue
            command, index = packet.data[1:], None
        else:
            if packet.flags & 0xFFFF != _MONITOR_COMMAND:
                continue
            index = packet.flags >> 16
            command = packet.data
        if len(command) < 3 or len(command) - 3 < command[2]:
            raise packet.error(f"HCI command of {len(command)} bytes is shorter than it announces")
        yield packet, int.from_bytes(command[:2], "little"), command[3 : 3 + command[2]], index


@dataclass(frozen=True, slots=True)
class AdvertisedFrame:
    """What a controller put on the air from ``time`` on: advertising data under a random address."""

    time: float
    adapter: int | None
    address: str
    data: bytes


_OP_SET_RANDOM_ADDRESS = 0x2005
_OP_SET_ADV_DATA = 0x2008
_OP_SET_ADV_ENABLE = 0x200A
_OP_SET_ADV_SET_RANDOM_ADDRESS = 0x2035
_OP_SET_EXT_ADV_DATA = 0x2037
_OP_SET_EXT_ADV_ENABLE = 0x2039
_EVENT_COMMAND_COMPLETE = 0x0E


@dataclass(slots=True)
class _AdvertisingSet:
    """A controller's advertising state as the host's successful commands left it."""

    address: str = ""
    data: bytes = b""
    enabled: bool = False


def advertised_frames(data: bytes) -> Iterator[AdvertisedFrame]:
    """Replay the host's advertising commands (legacy and extended) against each controller's state.

    A command counts once its Command Complete reports success (a controller that scans refuses a
    random-address change with "Command Disallowed"). Whenever advertising is on and its address or
    data changes, or it is switched on, one frame is yielded: the (address, data) pairs the air saw.
    This is how a capture proves that no ID was ever sent under an address used for another ID.
    """
    # Per (adapter, advertising handle): address, data, enabled. Legacy advertising is handle -1.
    state: dict[tuple[int | None, int], _AdvertisingSet] = {}
    pending: dict[tuple[int | None, int], bytes] = {}
    records: list[tuple[float, int, int | None, int, bytes]] = []
    for packet, opcode, params, index in hci_commands(data):
        records.append((packet.time, 0, index, opcode, params))
    for packet, event, index in hci_events(data):
        if len(event) >= 6 and event[0] == _EVENT_COMMAND_COMPLETE:
            records.append((packet.time, 1, index, int.from_bytes(event[3:5], "little"), event[5:]))
    records.sort(key=lambda r: (r[0], r[1]))
    for time, kind, index, opcode, params in records:
        if kind == 0:
            pending[(index, opcode)] = params
            continue
        sent = pending.pop((index, opcode), None)
        if sent is None or not params or params[0] != 0:
            continue
        yield from _apply(state, time, index, opcode, sent)


def _apply(
    state: dict[tuple[int | None, int], _AdvertisingSet],
    time: float,
    index: int | None,
    opcode: int,
    params: bytes,
) -> Iterator[AdvertisedFrame]:
    changes: list[tuple[int, str, object]] = []
    if opcode == _OP_SET_RANDOM_ADDRESS and len(params) >= 6:
        changes.append((-1, "address", format_address(params[:6])))
    elif opcode == _OP_SET_ADV_DATA and len(params) >= 1:
        changes.append((-1, "data", bytes(params[1 : 1 + params[0]])))
    elif opcode == _OP_SET_ADV_ENABLE and len(params) >= 1:
        changes.append((-1, "enabled", params[0] == 1))
    elif opcode == _OP_SET_ADV_SET_RANDOM_ADDRESS and len(params) >= 7:
        changes.append((params[0], "address", format_address(params[1:7])))
    elif opcode == _OP_SET_EXT_ADV_DATA and len(params) >= 4:
        changes.append((params[0], "data", bytes(params[4 : 4 + params[3]])))
    elif opcode == _OP_SET_EXT_ADV_ENABLE and len(params) >= 2:
        for i in range(params[1]):
            if 2 + 4 * i < len(params):
                changes.append((params[2 + 4 * i], "enabled", params[0] == 1))
        if params[0] == 0 and params[1] == 0:  # disable all sets
            changes += [(handle, "enabled", False) for (ix, handle) in state if ix == index]
    for handle, name, value in changes:
        current = state.setdefault((index, handle), _AdvertisingSet())
        before = replace(current)
        setattr(current, name, value)
        if current.enabled and current.address and current != before:
            yield AdvertisedFrame(time, index, current.address, current.data)


def advertising_reports(data: bytes) -> Iterator[AdvertisingReport]:
    """Every LE advertising report (legacy and extended) in a capture, in capture order.

    Events too short for what they announce raise :class:`BtsnoopError`: a capture is either read
    whole or refused, never silently half-read.
    """
    pending: dict[tuple[int | None, bytes, int], bytes] = {}
    for packet, event, adapter in hci_events(data):
        if not event or event[0] != _EVENT_LE_META:
            continue
        if len(event) < 2 or event[1] == 0:
            raise packet.error("LE Meta event without parameters (no sub-event code)")
        if len(event) - 2 < event[1]:
            raise packet.error(f"LE Meta event announces {event[1]} bytes, holds {len(event) - 2}")
        params = event[2 : 2 + event[1]]
        if params[0] == _SUB_LEGACY:
            yield from _legacy(params, packet, adapter)
        elif params[0] == _SUB_EXTENDED:
            yield from _extended(params, packet, adapter, pending)


def _short(packet: BtsnoopPacket, kind: str, needed: int, have: int) -> BtsnoopError:
    return packet.error(f"{kind} advertising report needs {needed} bytes, event holds {have}")


def _signed(byte: int) -> int:
    return byte - 256 if byte > 127 else byte


def _rssi(byte: int) -> int | None:
    return None if byte == RSSI_UNAVAILABLE else _signed(byte)


def _legacy(params: bytes, packet: BtsnoopPacket, adapter: int | None) -> Iterator[AdvertisingReport]:
    time = packet.time
    count, offset = params[1] if len(params) > 1 else 0, 2
    for _ in range(count):
        if offset + _LEGACY_FIXED > len(params):
            raise _short(packet, "legacy", offset + _LEGACY_FIXED, len(params))
        event_type, address_type = params[offset], params[offset + 1]
        address = params[offset + 2 : offset + 8]
        length = params[offset + 8]
        end = offset + 9 + length
        if end + 1 > len(params):
            raise _short(packet, "legacy", end + 1, len(params))
        yield AdvertisingReport(
            time=time,
            address=format_address(address),
            address_type=address_type,
            rssi=_rssi(params[end]),
            data=bytes(params[offset + 9 : end]),
            event_type=event_type,
            extended=False,
            adapter=adapter,
        )
        offset = end + 1


def _extended(
    params: bytes,
    packet: BtsnoopPacket,
    adapter: int | None,
    pending: dict[tuple[int | None, bytes, int], bytes],
) -> Iterator[AdvertisingReport]:
    time = packet.time
    count, offset = params[1] if len(params) > 1 else 0, 2
    for _ in range(count):
        if offset + _EXTENDED_FIXED > len(params):
            raise _short(packet, "extended", offset + _EXTENDED_FIXED, len(params))
        event_type = int.from_bytes(params[offset : offset + 2], "little")
        address_type = params[offset + 2]
        address = params[offset + 3 : offset + 9]
        sid = params[offset + 11]
        rssi = params[offset + 13]
        length = params[offset + 23]
        end = offset + _EXTENDED_FIXED + length
        if end > len(params):
            raise _short(packet, "extended", end, len(params))
        key = (adapter, bytes(address), sid)
        chunk = pending.pop(key, b"") + params[offset + _EXTENDED_FIXED : end]
        status = (event_type >> _EXT_STATUS_SHIFT) & 0x03
        offset = end
        if status == _EXT_MORE:
            pending[key] = chunk
            continue
        if status != _EXT_COMPLETE:
            continue  # truncated by the controller: the AD structures cannot be trusted
        yield AdvertisingReport(
            time=time,
            address=format_address(address),
            address_type=address_type,
            rssi=_rssi(rssi),
            data=chunk,
            event_type=event_type,
            extended=True,
            adapter=adapter,
        )


# -- writing (synthetic captures for tests and examples) -------------------------------------------


def _rssi_byte(rssi: int | None) -> int:
    if rssi is None:
        return RSSI_UNAVAILABLE
    low, high = RSSI_RANGE
    if not low <= rssi <= high:
        raise ValueError(f"rssi must lie in [{low}, {high}] dBm or be None, got {rssi}")
    return rssi & 0xFF


def legacy_report_event(
    address: str, data: bytes, rssi: int | None, *, address_type: int = 1, event_type: int = 0x03
) -> bytes:
    """An HCI LE Advertising Report event (one report; default ADV_NONCONN_IND, random address)."""
    if len(data) > 31:
        raise ValueError(f"legacy advertising data must be at most 31 bytes, got {len(data)}")
    body = bytes([_SUB_LEGACY, 1, event_type, address_type]) + parse_address(address)
    body += bytes([len(data)]) + data + bytes([_rssi_byte(rssi)])
    return bytes([_EVENT_LE_META, len(body)]) + body


def extended_report_event(
    address: str,
    data: bytes,
    rssi: int | None,
    *,
    address_type: int = 1,
    event_type: int = 0x0000,
    sid: int = 0,
    tx_power: int = 127,
) -> bytes:
    """An HCI LE Extended Advertising Report event (one report; set ``event_type`` bits 5-6 for fragments)."""
    if len(data) > 229:
        raise ValueError(f"one extended report carries at most 229 bytes of data, got {len(data)}")
    body = bytes([_SUB_EXTENDED, 1]) + event_type.to_bytes(2, "little") + bytes([address_type])
    body += parse_address(address) + bytes([1, 0, sid, tx_power & 0xFF, _rssi_byte(rssi)])
    body += b"\x00\x00" + bytes([0]) + bytes(6) + bytes([len(data)]) + data
    return bytes([_EVENT_LE_META, len(body)]) + body


def write_btsnoop(
    datalink: int,
    events: Iterable[tuple[float, bytes]],
    *,
    adapter: int = 0,
    commands: Iterable[tuple[float, bytes]] = (),
) -> bytes:
    """A capture of HCI events (controller to host) and ``commands`` (host to controller), by time."""
    if datalink not in DATALINKS:
        raise ValueError(f"datalink must be one of {DATALINKS}, got {datalink}")
    # Events keep the given order; commands are merged in by time (before an event of the same time).
    packets = [(time, 1, event) for time, event in events]
    for time, command in sorted(commands, key=lambda item: item[0]):
        at = next((i for i, (t, _, _) in enumerate(packets) if t >= time), len(packets))
        packets.insert(at, (time, 0, command))
    out = bytearray(_HEADER.pack(MAGIC, VERSION, datalink))
    for time, is_event, body in packets:
        if datalink == DATALINK_HCI:
            flags, packet = (0x03 if is_event else 0x02), body
        elif datalink == DATALINK_H4:
            flags = 0x03 if is_event else 0x02
            packet = bytes([_H4_EVENT if is_event else _H4_COMMAND]) + body
        else:
            flags, packet = (adapter << 16) | (_MONITOR_EVENT if is_event else _MONITOR_COMMAND), body
        stamp = round(time * 1e6) + EPOCH_OFFSET_US
        out += _RECORD.pack(len(packet), len(packet), flags, 0, stamp) + packet
    return bytes(out)


def hci_command(opcode: int, params: bytes) -> bytes:
    """An HCI command packet (opcode, parameter length, parameters)."""
    return opcode.to_bytes(2, "little") + bytes([len(params)]) + params


def command_complete(opcode: int, status: int = 0) -> bytes:
    """An HCI Command Complete event for ``opcode`` with ``status`` (0 = success, 0x0C = disallowed)."""
    return bytes([_EVENT_COMMAND_COMPLETE, 4, 1]) + opcode.to_bytes(2, "little") + bytes([status])
