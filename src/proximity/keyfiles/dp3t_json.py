"""Published DP-3T day keys as JSON, in the shape of the DP-3T backend's exposee list.

``{"exposed": [{"key": <base64 of SK_t, 32 bytes>, "keyDate": <UTC midnight of day t, unix ms>}, ...],
"batchReleaseTime": <unix ms>}`` -- the fields the DP-3T backend's ``ExposedOverview`` carried, so a list
from such a server reads as is. Each entry is the first day a diagnosed user was contagious; matching
chains it forward. Like Bluezone's records the list is unsigned, so its matches are unverified. Parsing
is pure; :func:`load_exposees` reads a file.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from proximity.errors import (
    InvalidKeyError,
    InvalidLengthError,
    MalformedKeyFileError,
    ProximityError,
    ResourceLimitError,
)
from proximity.keyfiles.bluezone_json import json_document
from proximity.schemes.dp3t import Dp3tDayKey
from proximity.times import format_utc

__all__ = [
    "EXPOSEE_UPLOAD",
    "MAX_FILE_BYTES",
    "ExposeeUpload",
    "dump_exposees",
    "export_exposees",
    "load_exposees",
    "looks_like_dp3t_json",
    "parse_exposees",
]

MAX_FILE_BYTES = 256 * 1024 * 1024
_MS_PER_DAY = 86_400_000


def parse_exposees(data: bytes | str, source: str = "DP-3T exposees") -> list[Dp3tDayKey]:
    """Day keys from ``{"exposed": [...]}``; a bad entry is a :class:`MalformedKeyFileError` naming it."""
    document = json_document(data, source)
    items = document.get("exposed") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise MalformedKeyFileError(source, 'expected {"exposed": [{"key": ..., "keyDate": ...}, ...]}')
    keys: list[Dp3tDayKey] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedKeyFileError(source, f"entry {i} is not an object")
        key, date = item.get("key"), item.get("keyDate")
        if not isinstance(key, str):
            raise MalformedKeyFileError(source, f"entry {i}: key must be a base64 string")
        if isinstance(date, bool) or not isinstance(date, int) or date % _MS_PER_DAY:
            raise MalformedKeyFileError(
                source, f"entry {i}: keyDate must be a UTC midnight in unix milliseconds, got {date!r:.40}"
            )
        try:
            raw = base64.b64decode(key, validate=True)
            keys.append(Dp3tDayKey(raw, date // 1000))
        except (binascii.Error, ValueError, InvalidKeyError, InvalidLengthError) as error:
            raise MalformedKeyFileError(source, f"entry {i}: {error}") from None
    return keys


def dump_exposees(keys: Iterable[Dp3tDayKey], release_time: int | None = None) -> str:
    """The JSON form, one entry per line; ``release_time`` (unix seconds) defaults to the latest day."""
    keys = list(keys)
    items = [{"key": base64.b64encode(k.key).decode(), "keyDate": k.day * 1000} for k in keys]
    release = release_time if release_time is not None else max((k.day for k in keys), default=0)
    lines = [json.dumps(item, separators=(", ", ": ")) for item in items]
    body = ",\n".join("  " + line for line in lines) + ("\n" if lines else "")
    return '{"exposed": [\n' + body + f'], "batchReleaseTime": {int(release) * 1000}}}\n'


def looks_like_dp3t_json(head: bytes) -> bool:
    """Cheap sniff on a file's first bytes: a JSON object whose text names ``"exposed"``."""
    return head.lstrip()[:1] == b"{" and b'"exposed"' in head


def load_exposees(path: str | os.PathLike[str]) -> list[Dp3tDayKey]:
    """Read a file; one larger than :data:`MAX_FILE_BYTES` is refused before it is read."""
    size = os.stat(path).st_size
    if size > MAX_FILE_BYTES:
        raise ResourceLimitError(str(path), "the file size", size, MAX_FILE_BYTES, "MAX_FILE_BYTES")
    with open(path, "rb") as handle:
        return parse_exposees(handle.read(), os.fspath(path))


def export_exposees(keys: Sequence[Dp3tDayKey], at: float) -> tuple[bytes, dict[str, object]]:
    """``proximity keys export``'s exposee list of a key ring's published day key, and its summary."""
    summary: dict[str, object] = {"keys": len(keys)}
    if keys:
        summary["day"] = format_utc(min(k.day for k in keys))[:10]
    return dump_exposees(keys, release_time=int(at)).encode(), summary


class ExposeeUpload:
    """DP-3T's upload to a key server, as the DP-3T backend took it: one item, the day key SK_t of the
    first contagious day, ``{key: base64, keyDate: unix ms}`` (a
    :class:`~proximity.schemes.registry.DailyKeyUpload`). The server serves the exposee list."""

    field = "exposed"
    max_items = 1
    after_upload = (
        "Uploaded: start a new key ring now (`proximity keys wipe` + `keys init`), since the published "
        "DP-3T day key reveals every later EphID of its chain."
    )

    def items(self, published: Sequence[Dp3tDayKey]) -> list[dict[str, Any]]:
        return [{"key": base64.b64encode(key.key).decode(), "keyDate": key.day * 1000} for key in published]

    def parse_item(self, item: Mapping[str, Any], where: str) -> tuple[bytes, int, int]:
        try:  # the exposee list's own entry checks (base64 of 32 bytes, keyDate a UTC midnight in ms)
            (key,) = parse_exposees(json.dumps({"exposed": [dict(item)]}), where)
        except (ProximityError, TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None
        return key.key, key.day, 0

    def mac_segment(self, key: bytes, time_start: int, param: int) -> str:
        return f"{key.hex()}.{time_start}"

    def document(self, rows: Sequence[tuple[bytes, int, int, int]]) -> bytes:
        return dump_exposees(Dp3tDayKey(key, start) for key, start, _, _ in rows).encode()


EXPOSEE_UPLOAD = ExposeeUpload()
