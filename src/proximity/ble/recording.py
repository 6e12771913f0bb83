"""Recorded adverts: what a scanner received, in the shape bleak hands it over, to store and replay.

A :class:`RecordedAdvert` comes from a live scan (``proximity scan --record``), from a btsnoop capture
(its raw AD structures split the way BlueZ splits them), or from a JSON Lines file; the replay backend
plays any of them through bleak. One JSON object per line::

    {"time": 1700000000.25, "address": "12:34:56:78:9A:BC", "rssi": -67,
     "service_uuids": ["0000fd6f-0000-1000-8000-00805f9b34fb"],
     "service_data": {"0000fd6f-0000-1000-8000-00805f9b34fb": "<hex>"},
     "manufacturer_data": {"8885": "<hex>"}, "local_name": null, "tx_power": null}

``rssi`` is null when the radio gave none. Unknown keys are ignored so later versions can add some.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from proximity.ble.btsnoop import MAGIC, AdvertisingReport, advertising_reports
from proximity.errors import CaptureFormatError
from proximity.payloads.adstructures import MalformedAdvertisingDataError, parse_ad_structures
from proximity.payloads.adverts import BASE_UUID_SUFFIX, uuid16_to_uuid128
from proximity.times import LATEST_TIME

__all__ = [
    "RecordedAdvert",
    "advert_from_json",
    "advert_to_json",
    "load_capture",
    "read_jsonl",
    "recorded_from_reports",
    "write_jsonl",
]


@dataclass(frozen=True, slots=True)
class RecordedAdvert:
    """One received advert: when (unix seconds), from which address, at what RSSI, carrying what."""

    time: float
    address: str
    rssi: int | None
    service_data: Mapping[str, bytes] = field(default_factory=dict)
    manufacturer_data: Mapping[int, bytes] = field(default_factory=dict)
    service_uuids: tuple[str, ...] = ()
    local_name: str | None = None
    tx_power: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.time, int | float) or not 0 <= self.time <= LATEST_TIME:
            raise ValueError(f"time must be unix seconds from 1970 to year 9998, got {self.time!r:.40}")
        if self.rssi is not None and (isinstance(self.rssi, bool) or not isinstance(self.rssi, int)):
            raise TypeError(f"rssi must be an int or None, got {self.rssi!r}")
        if not isinstance(self.address, str):
            raise TypeError("address must be a string")
        if self.local_name is not None and not isinstance(self.local_name, str):
            raise TypeError(f"local_name must be a string or None, got {type(self.local_name).__name__}")
        if self.tx_power is not None and (
            isinstance(self.tx_power, bool) or not isinstance(self.tx_power, int)
        ):
            raise TypeError(f"tx_power must be an int or None, got {self.tx_power!r:.40}")


def _uuid32(value: int) -> str:
    return f"{value:08x}{BASE_UUID_SUFFIX}"


def _uuid128(raw: bytes) -> str:
    text = raw[::-1].hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def from_ad_bytes(time: float, address: str, rssi: int | None, data: bytes) -> RecordedAdvert | None:
    """Split raw advertising data as BlueZ does for bleak; None when the AD structures are malformed."""
    try:
        structures = parse_ad_structures(data)
    except MalformedAdvertisingDataError:
        return None
    uuids: list[str] = []
    service_data: dict[str, bytes] = {}
    manufacturer_data: dict[int, bytes] = {}
    name: str | None = None
    tx_power: int | None = None
    for ad_type, body in structures:
        if ad_type in (0x02, 0x03):
            uuids += [
                uuid16_to_uuid128(int.from_bytes(body[i : i + 2], "little"))
                for i in range(0, len(body) - 1, 2)
            ]
        elif ad_type in (0x04, 0x05):
            uuids += [_uuid32(int.from_bytes(body[i : i + 4], "little")) for i in range(0, len(body) - 3, 4)]
        elif ad_type in (0x06, 0x07):
            uuids += [_uuid128(body[i : i + 16]) for i in range(0, len(body) - 15, 16)]
        elif ad_type in (0x08, 0x09):
            name = body.decode("utf-8", "replace")
        elif ad_type == 0x0A and len(body) == 1:
            tx_power = body[0] - 256 if body[0] > 127 else body[0]
        elif ad_type == 0x16 and len(body) >= 2:
            service_data[uuid16_to_uuid128(int.from_bytes(body[:2], "little"))] = body[2:]
        elif ad_type == 0x20 and len(body) >= 4:
            service_data[_uuid32(int.from_bytes(body[:4], "little"))] = body[4:]
        elif ad_type == 0x21 and len(body) >= 16:
            service_data[_uuid128(body[:16])] = body[16:]
        elif ad_type == 0xFF and len(body) >= 2:
            manufacturer_data[int.from_bytes(body[:2], "little")] = body[2:]
    return RecordedAdvert(time, address, rssi, service_data, manufacturer_data, tuple(uuids), name, tx_power)


def recorded_from_reports(
    reports: Iterable[AdvertisingReport], adapter: int | None = None
) -> Iterator[RecordedAdvert]:
    """The adverts of btsnoop reports (of one monitor ``adapter`` index, or all); malformed ones dropped."""
    for report in reports:
        if adapter is not None and report.adapter != adapter:
            continue
        advert = from_ad_bytes(report.time, report.address, report.rssi, report.data)
        if advert is not None:
            yield advert


def advert_to_json(advert: RecordedAdvert) -> str:
    """One JSON Lines line (without the newline)."""
    return json.dumps(
        {
            "time": advert.time,
            "address": advert.address,
            "rssi": advert.rssi,
            "service_uuids": list(advert.service_uuids),
            "service_data": {k: v.hex() for k, v in advert.service_data.items()},
            "manufacturer_data": {str(k): v.hex() for k, v in advert.manufacturer_data.items()},
            "local_name": advert.local_name,
            "tx_power": advert.tx_power,
        },
        separators=(",", ":"),
    )


def advert_from_json(line: str, where: str = "line 1") -> RecordedAdvert:
    """Parse one JSON Lines line; :class:`CaptureFormatError` names the line and the problem."""
    try:
        obj: Any = json.loads(line)
    except json.JSONDecodeError as error:
        raise CaptureFormatError(f"not JSON ({error.msg})", where) from None
    except (ValueError, RecursionError) as error:  # a 5,000-digit integer, nesting beyond the stack
        raise CaptureFormatError(f"not usable JSON ({type(error).__name__})", where) from None
    if not isinstance(obj, dict):
        raise CaptureFormatError("each line must be a JSON object", where)
    try:
        rssi = obj.get("rssi")
        tx_power = obj.get("tx_power")
        return RecordedAdvert(
            time=float(obj["time"]),
            address=str(obj["address"]),
            rssi=None if rssi is None else _integer(rssi, "rssi"),
            service_data={str(k).lower(): bytes.fromhex(v) for k, v in obj.get("service_data", {}).items()},
            manufacturer_data={
                _company(k): bytes.fromhex(v) for k, v in obj.get("manufacturer_data", {}).items()
            },
            service_uuids=tuple(str(u).lower() for u in obj.get("service_uuids", [])),
            local_name=obj.get("local_name"),
            tx_power=None if tx_power is None else _integer(tx_power, "tx_power"),
        )
    except KeyError as error:
        raise CaptureFormatError(f"missing field {error.args[0]!r}", where) from None
    except OverflowError:
        raise CaptureFormatError(
            f"time must be finite non-negative unix seconds, got {obj['time']!r:.40}", where
        ) from None
    except (TypeError, ValueError, AttributeError) as error:
        raise CaptureFormatError(str(error), where) from None


def _company(key: object) -> int:
    """A manufacturer-data key: a 16-bit Bluetooth SIG company identifier."""
    company = int(str(key))
    if not 0 <= company <= 0xFFFF:
        raise ValueError(f"manufacturer_data company id must be 0..65535, got {key!s:.40}")
    return company


def _integer(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer or null, got {value!r}")
    return value


def write_jsonl(adverts: Iterable[RecordedAdvert], stream: TextIO) -> int:
    """Append adverts to an open text stream, one line each, flushed; returns how many were written."""
    count = 0
    for advert in adverts:
        stream.write(advert_to_json(advert) + "\n")
        count += 1
    stream.flush()
    return count


def read_jsonl(text: str) -> list[RecordedAdvert]:
    """Every advert of a JSON Lines text (blank lines skipped)."""
    return [
        advert_from_json(line, f"line {number}")
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def load_capture(path: str | Path, adapter: int | None = None) -> list[RecordedAdvert]:
    """Read a btsnoop capture or a JSON Lines recording (told apart by the btsnoop magic), sorted by time."""
    raw = Path(path).read_bytes()
    if raw.startswith(MAGIC):
        adverts = list(recorded_from_reports(advertising_reports(raw), adapter))
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CaptureFormatError("neither btsnoop nor UTF-8 JSON Lines", str(path)) from None
        adverts = read_jsonl(text)
    return sorted(adverts, key=lambda a: a.time)
