"""Bluezone daily-key records in the JSON form the server pushes (spec/bluezone.md).

``{"data": [{"daily_key": <64 hex>, "time_start": <UTC midnight s>, "max": 96, "time_end": <s>}, ...]}``.
The records carry no signature (securing the transport is the integrator's job), so whatever is
matched from them is marked unverified. Parsing is pure; :func:`load_records` reads a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from proximity.errors import (
    InvalidKeyError,
    InvalidLengthError,
    MalformedKeyFileError,
    ProximityError,
    ResourceLimitError,
)
from proximity.schemes.bluezone import KEY_LENGTH, BluezoneDailyKey, chained_key
from proximity.times import SECONDS_PER_DAY

__all__ = [
    "DAILY_KEY_UPLOAD",
    "MAX_FILE_BYTES",
    "DailyKeyUpload",
    "dump_records",
    "export_records",
    "load_records",
    "looks_like_bluezone_json",
    "parse_records",
]

# A day's national records are a few MB (~130 bytes each); JSON parsing takes ~10x the file in memory.
MAX_FILE_BYTES = 256 * 1024 * 1024


def json_document(data: bytes | str, source: str) -> Any:
    """``data`` parsed as JSON, or a :class:`MalformedKeyFileError` saying why not (shared by the JSON
    key-file readers)."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:  # also a 5,000-digit integer (str limit)
        raise MalformedKeyFileError(source, f"not JSON ({str(error)[:200]})") from None
    except RecursionError:
        raise MalformedKeyFileError(source, "not JSON (nested deeper than the parser allows)") from None


def parse_records(data: bytes | str, source: str = "bluezone records") -> list[BluezoneDailyKey]:
    """Records from the JSON form (``{"data": [...]}``, or a bare list); a bad record names its index."""
    document = json_document(data, source)
    items = document.get("data") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise MalformedKeyFileError(source, 'expected {"data": [records...]} or a list of records')
    records: list[BluezoneDailyKey] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedKeyFileError(source, f"record {i} is not an object")
        try:
            records.append(BluezoneDailyKey.from_record(item))
        except (InvalidKeyError, InvalidLengthError) as error:
            raise MalformedKeyFileError(source, f"record {i}: {error}") from None
    return records


def dump_records(records: Iterable[BluezoneDailyKey]) -> str:
    """The JSON form, one record per line for readable diffs."""
    lines = [json.dumps(record.to_record(), separators=(", ", ": ")) for record in records]
    return '{"data": [\n' + ",\n".join("  " + line for line in lines) + ("\n" if lines else "") + "]}\n"


def looks_like_bluezone_json(data: bytes) -> bool:
    """Cheap sniff used to infer the scheme of a key file: JSON rather than a zip or export.bin."""
    return data.lstrip()[:1] in (b"{", b"[")


def load_records(path: str | os.PathLike[str]) -> list[BluezoneDailyKey]:
    """Read a file of records; one larger than :data:`MAX_FILE_BYTES` is refused before it is read."""
    size = os.stat(path).st_size
    if size > MAX_FILE_BYTES:
        raise ResourceLimitError(str(path), "the file size", size, MAX_FILE_BYTES, "MAX_FILE_BYTES")
    return parse_records(Path(path).read_bytes(), source=str(path))


def export_records(records: Sequence[BluezoneDailyKey], at: float) -> tuple[bytes, dict[str, object]]:
    """``proximity keys export``'s file of a key ring's published records, and its summary."""
    return dump_records(records).encode(), {"records": len(records), "days": sum(r.days for r in records)}


class DailyKeyUpload:
    """Bluezone's upload to a key server: one item per day, ``{daily_key: hex, time_start, max}``, the
    day's key of the chain (a :class:`~proximity.schemes.registry.DailyKeyUpload`)."""

    field = "dailyKeys"
    max_items = 15
    after_upload = (
        "Uploaded: start a new Bluezone base key now (`proximity keys wipe` + `keys init`), since "
        "a published daily key reveals every later ID of its chain."
    )

    def items(self, published: Sequence[BluezoneDailyKey]) -> list[dict[str, Any]]:
        return [
            {
                "daily_key": chained_key(record.daily_key, i).hex(),
                "time_start": day,
                "max": record.ids_per_day,
            }
            for record in published
            for i, day in enumerate(range(record.time_start, record.time_end, SECONDS_PER_DAY))
        ]

    def parse_item(self, item: Mapping[str, Any], where: str) -> tuple[bytes, int, int]:
        key_hex, start, ids = item.get("daily_key"), item.get("time_start"), item.get("max")
        if not isinstance(key_hex, str) or not isinstance(start, int) or not isinstance(ids, int):
            raise ValueError(f"{where} must be {{daily_key: hex, time_start: int, max: int}}")
        try:
            key = bytes.fromhex(key_hex)
            BluezoneDailyKey(key, start, start + SECONDS_PER_DAY, ids)  # the scheme's own checks
        except (ValueError, ProximityError) as error:
            raise ValueError(f"{where}: {error}") from None
        if len(key) != KEY_LENGTH:
            raise ValueError(f"{where}: a daily key is {KEY_LENGTH} bytes")
        return key, start, ids

    def mac_segment(self, key: bytes, time_start: int, param: int) -> str:
        return f"{key.hex()}.{time_start}.{param}"

    def document(self, rows: Sequence[tuple[bytes, int, int, int]]) -> bytes:
        return dump_records(BluezoneDailyKey(key, start, end, ids) for key, start, end, ids in rows).encode()


DAILY_KEY_UPLOAD = DailyKeyUpload()
