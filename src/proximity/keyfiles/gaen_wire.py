"""The keys of a GAEN export straight from the protobuf wire format into numpy columns.

Reading 100,000 parsed ``TemporaryExposureKey`` messages field by field costs ~1 µs a key in Python
attribute access, several times the parse itself and most of ``proximity match``'s per-key cost. Here
the message is walked once (a tight loop over the ``keys``/``revised_keys`` entries only), then every
entry's fields are decoded together, one numpy step per field position (keys have at most a handful of
fields). The protobuf library still parses the file first: it alone decides what is malformed, and
anything this decoder does not expect (a multi-byte tag, a known field with another wire type, more
than :data:`MAX_FIELDS` fields in a key) makes it answer None, so the caller uses the object path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from proximity.arrays import distinct

__all__ = ["MAX_FIELDS", "WireKeys", "decode_keys"]

MAX_FIELDS = 16
_DEFAULT_PERIOD = 144  # export.proto: rolling_period [default = 144]
_REPORT_TYPES = 6  # closed proto2 enum 0..5: another value is an unknown field, the field stays unset
_KEYS, _REVISED = 7, 8
_RUN = 512  # entries checked at once for a run of equal-length keys


@dataclass(frozen=True, slots=True, eq=False)
class WireKeys:
    """The fields of n TemporaryExposureKey messages as columns (absent = protobuf's default)."""

    key_data: NDArray[np.uint8]  # (n, 16); zeros where the key is not 16 bytes long
    key_length: NDArray[np.int64]
    rolling_start_interval_number: NDArray[np.int64]
    has_start: NDArray[np.bool_]
    rolling_period: NDArray[np.int64]
    transmission_risk_level: NDArray[np.int64]
    report_type: NDArray[np.int64]
    days_since_onset_of_symptoms: NDArray[np.int64]
    has_onset: NDArray[np.bool_]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _entries(body: bytes) -> tuple[list[tuple[int, int, int]], list[int]] | None:
    """Where the ``keys`` entries are, as runs (first entry's start, entry length, count: a run's
    entries lie back to back, each behind its 2-byte tag and length), and start, end, start, end... of
    every ``revised_keys`` entry; None for anything unexpected."""
    keys: list[tuple[int, int, int]] = []
    revised: list[int] = []
    pos, end = 0, len(body)
    array = np.frombuffer(body, np.uint8)

    def add(start: int, length: int, count: int) -> None:
        if keys and keys[-1][1] == length and keys[-1][0] + keys[-1][2] * (length + 2) == start:
            keys[-1] = (keys[-1][0], length, keys[-1][2] + count)  # the run goes on
        else:
            keys.append((start, length, count))

    try:
        while pos < end:
            tag = body[pos]
            if tag == 0x3A and body[pos + 1] < 0x80:  # keys, length < 128: the common case
                step = body[pos + 1] + 2
                count = min((end - pos) // step, _RUN)
                if count > 1:  # a run of keys of this length back to back, checked in one numpy step
                    heads = array[pos : pos + count * step].reshape(count, step)
                    same = (heads[:, 0] == 0x3A) & (heads[:, 1] == step - 2)
                    count = count if same.all() else int(np.argmin(same))
                    add(pos + 2, step - 2, count)
                    pos += count * step
                    continue
                add(pos + 2, step - 2, 1)
                pos += step
                continue
            tag, pos = _varint(body, pos)
            wire = tag & 7
            if wire == 0:
                _, pos = _varint(body, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length, pos = _varint(body, pos)
                if tag >> 3 == _KEYS:
                    keys.append((pos, length, 1))  # a long entry: its length prefix is wider
                elif tag >> 3 == _REVISED:
                    revised += (pos, pos + length)
                pos += length
            else:
                return None
    except (IndexError, ValueError):
        return None
    return (keys, revised) if pos == end else None


_SHIFTS = np.arange(0, 70, 7, dtype=np.uint64)  # 7 bits a byte


def _varints(
    data: NDArray[np.uint8], at: NDArray[np.int64], wide: int = 5
) -> tuple[NDArray[np.uint64], NDArray[np.int64]] | tuple[None, None]:
    """The varint starting at each of ``at``: (value, bytes). Read ``wide`` bytes at a time (5 hold any
    non-negative int32); the few longer ones (negative int32 take 10) are read again 10 wide."""
    window = data[at[:, None] + np.arange(wide)]
    continues = window >= 0x80
    open_ended = continues.all(axis=1)
    width = np.argmin(continues, axis=1) + 1
    parts = (window & 0x7F).astype(np.uint64) << _SHIFTS[:wide]
    parts[np.arange(wide) >= width[:, None]] = 0
    value = np.bitwise_or.reduce(parts, axis=1)
    if open_ended.any():
        if wide >= 10:
            return None, None
        rows = np.flatnonzero(open_ended)
        long_value, long_width = _varints(data, at[rows], 10)
        if long_value is None or long_width is None:
            return None, None
        value[rows], width[rows] = long_value, long_width
    return value, width


def _blank(n: int) -> tuple[dict[int, NDArray[np.int64]], dict[int, NDArray[np.bool_]]]:
    """Columns of n keys with protobuf's defaults (field number -> column), and the presence flags."""
    columns = {f: np.zeros(n, np.int64) for f in (2, 3, 4, 5, 6)}
    columns[4][:] = _DEFAULT_PERIOD
    return columns, {f: np.zeros(n, np.bool_) for f in (3, 6)}


def _wire_keys(
    key_data: NDArray[np.uint8],
    key_length: NDArray[np.int64],
    columns: dict[int, NDArray[np.int64]],
    present: dict[int, NDArray[np.bool_]],
) -> WireKeys:
    return WireKeys(
        key_data,
        key_length,
        columns[3],
        present[3],
        columns[4],
        columns[2],
        columns[5],
        columns[6],
        present[6],
    )


def _decode(data: NDArray[np.uint8], spans: list[int]) -> WireKeys | None:
    n = len(spans) // 2
    bounds = np.array(spans, dtype=np.int64).reshape(n, 2)
    cursor, ends = bounds[:, 0].copy(), bounds[:, 1]
    columns, present = _blank(n)
    key_at = np.full(n, -1, np.int64)
    key_length = np.zeros(n, np.int64)
    for _ in range(MAX_FIELDS):
        active = np.flatnonzero(cursor < ends)
        if active.size == 0:
            break
        at = cursor[active]
        tag = data[at].astype(np.int64)
        if (tag >= 0x80).any():
            return None
        field, wire = tag >> 3, tag & 7
        if not np.isin(wire, (0, 1, 2, 5)).all():
            return None
        value, width = _varints(data, at + 1)
        if value is None or width is None:
            return None
        varint_end = at + 1 + width
        step = np.select(
            [wire == 0, wire == 2, wire == 1],
            [varint_end, varint_end + value.astype(np.int64), at + 9],
            at + 5,
        )
        known = (field >= 1) & (field <= 6)
        if ((known & (field == 1) & (wire != 2)) | (known & (field != 1) & (wire != 0))).any():
            return None
        as_int32 = (value & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.int32).astype(np.int64)
        for number in (2, 3, 4):
            mine = field == number
            columns[number][active[mine]] = as_int32[mine]
        mine = (field == 5) & (value < _REPORT_TYPES)
        columns[5][active[mine]] = value[mine].astype(np.int64)
        mine = field == 6  # sint32: zigzag
        zig = (value & np.uint64(0xFFFFFFFF)).astype(np.int64)
        columns[6][active[mine]] = (zig[mine] >> 1) ^ -(zig[mine] & 1)
        present[3][active[field == 3]] = True
        present[6][active[mine]] = True
        mine = field == 1
        key_at[active[mine]] = varint_end[mine]
        key_length[active[mine]] = value[mine].astype(np.int64)
        cursor[active] = step
    else:
        if (cursor < ends).any():
            return None
    if (cursor != ends).any():
        return None
    key_data = np.zeros((n, 16), np.uint8)
    whole = np.flatnonzero(key_length == 16)
    key_data[whole] = data[key_at[whole][:, None] + np.arange(16)]
    return _wire_keys(key_data, key_length, columns, present)


def _layout(entry: bytes) -> list[tuple[int, int, int, int, int]] | None:
    """(tag offset, field, wire type, varint width, value) of each field of one entry, for the fields
    the fast path handles (one-byte tags; varint or length-delimited); None otherwise."""
    out: list[tuple[int, int, int, int, int]] = []
    pos = 0
    try:
        while pos < len(entry):
            tag = entry[pos]
            if tag >= 0x80 or tag & 7 not in (0, 2):
                return None
            value, end = _varint(entry, pos + 1)
            out.append((pos, tag >> 3, tag & 7, end - pos - 1, value))
            pos = end + (value if tag & 7 == 2 else 0)
    except (IndexError, ValueError):
        return None
    return out if pos == len(entry) else None


_Out = tuple[NDArray[np.uint8], NDArray[np.int64], dict[int, NDArray[np.int64]], dict[int, NDArray[np.bool_]]]


def _fill_layout(matrix: NDArray[np.uint8], rows: NDArray[np.int64], out: _Out) -> NDArray[np.bool_] | None:
    """Decode the entries (rows of ``matrix``, all of one length) laid out byte for byte like the first
    (same fields, same varint widths) into rows ``rows`` of ``out``, one numpy step per field; which
    were decoded. None if a known field has the wrong wire type (the whole file then takes the object
    path, as :func:`_decode` would). ``matrix`` may be a strided view of the file."""
    key_data, key_length, columns, present = out
    layout = _layout(matrix[0].tobytes())
    if layout is None:
        return np.zeros(rows.size, np.bool_)
    same = np.ones(rows.size, np.bool_)
    for at, field, wire, width, _ in layout:
        if 1 <= field <= 6 and (wire == 2) != (field == 1):
            return None  # a known field with another wire type: the object path decides
        same &= matrix[:, at] == matrix[0, at]
        # byte columns one at a time: 1-D steps over a strided view are fast, (n, 2-3) reductions not
        for k in range(at + 1, at + 1 + width):
            if wire == 2:  # the same length prefix, so the later fields sit where they do in the first
                same &= matrix[:, k] == matrix[0, k]
            else:  # a varint of the same width
                same &= (matrix[:, k] >= 0x80) if k < at + width else (matrix[:, k] < 0x80)
    chosen: NDArray[np.int64] | slice = rows
    if same.all() and rows.size and rows[-1] - rows[0] == rows.size - 1:
        chosen = slice(int(rows[0]), int(rows[-1]) + 1)  # one run: plain slices, no gather
    else:
        chosen, matrix = rows[same], matrix[same]
    for at, field, wire, width, value in layout:
        if field == 1:
            key_length[chosen] = value
            key_data[chosen] = matrix[:, at + 1 + width : at + 1 + width + 16] if value == 16 else 0
            continue
        if wire != 0 or not 2 <= field <= 6:
            continue  # an unknown field: skipped, as protobuf keeps it aside
        varint = (matrix[:, at + 1] & 0x7F).astype(np.uint64)
        for k in range(1, width):
            varint |= (matrix[:, at + 1 + k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        low = varint & np.uint64(0xFFFFFFFF)
        if field == 5:  # a closed enum: an unknown value leaves the field unset
            known = varint < _REPORT_TYPES
            target = columns[5][chosen]  # a view for a slice, a copy for rows: written back below
            target[known] = varint[known].astype(np.int64)
            columns[5][chosen] = target
        elif field == 6:  # sint32: zigzag
            zig = low.astype(np.int64)
            columns[6][chosen] = (zig >> 1) ^ -(zig & 1)
            present[6][chosen] = True
        else:
            columns[field][chosen] = low.astype(np.uint32).view(np.int32).astype(np.int64)
            if field == 3:
                present[3][chosen] = True
    return same


def _same_layout(
    data: NDArray[np.uint8], bounds: NDArray[np.int64], rows: NDArray[np.int64], out: _Out
) -> NDArray[np.bool_] | None:
    """:func:`_fill_layout` for scattered entries (start, end in ``bounds``), gathered by length: which
    were decoded, or None when the file must take the object path."""
    done = np.zeros(rows.size, np.bool_)
    lengths = bounds[:, 1] - bounds[:, 0]
    for length in distinct(lengths).tolist():
        mine = np.flatnonzero(lengths == length)
        same = _fill_layout(data[bounds[mine, 0][:, None] + np.arange(length)], rows[mine], out)
        if same is None:
            return None
        done[mine] = same
    return done


_MIN_RUN = 16  # a run at least this long is decoded in place (a strided view of the file), not gathered


def _decode_fast(data: NDArray[np.uint8], runs: list[tuple[int, int, int]]) -> WireKeys | None:
    """:func:`_decode`, taking the entries laid out like their neighbours in bulk first: each long run
    as a view of the file (no copy), the other entries gathered by length."""
    n = sum(count for _, _, count in runs)
    columns, present = _blank(n)
    out: _Out = (np.zeros((n, 16), np.uint8), np.zeros(n, np.int64), columns, present)
    done = np.zeros(n, np.bool_)
    offset = 0
    for start, length, count in runs:
        if count >= _MIN_RUN:
            step = length + 2
            matrix = data[start - 2 : start - 2 + count * step].reshape(count, step)[:, 2:]
            same = _fill_layout(matrix, np.arange(offset, offset + count), out)
            if same is None:
                return None
            done[offset : offset + count] = same
        offset += count
    rest = np.flatnonzero(~done)
    if rest.size == 0:
        return _wire_keys(*out)
    starts = np.concatenate([np.zeros(0, np.int64), *(s + (k + 2) * np.arange(c) for s, k, c in runs)])
    lengths = np.concatenate([np.zeros(0, np.int64), *(np.full(c, k) for _, k, c in runs)])
    bounds = np.stack([starts, starts + lengths], axis=1)
    short = np.repeat([count < _MIN_RUN for _, _, count in runs], [count for _, _, count in runs])
    scattered = np.flatnonzero(short)  # entries outside long runs: in bulk by length first
    if scattered.size:
        same = _same_layout(data, bounds[scattered], scattered, out)
        if same is None:
            return None
        done[scattered] = same
        rest = np.flatnonzero(~done)
    decoded = _wire_keys(*out)
    if rest.size:
        others = _decode(data, bounds[rest].reshape(-1).tolist())
        if others is None:
            return None
        for name in WireKeys.__dataclass_fields__:
            getattr(decoded, name)[rest] = getattr(others, name)
    return decoded


def decode_keys(body: bytes, *, keys: bool = True) -> tuple[WireKeys, WireKeys] | None:
    """The ``keys`` and ``revised_keys`` of a serialized TemporaryExposureKeyExport (without the
    16-byte header) as columns, or None when the file needs the general (object) path. ``keys=False``
    decodes the revised keys only (the keys come back as no rows)."""
    found = _entries(body)
    if found is None:
        return None
    data = np.frombuffer(body + bytes(16), dtype=np.uint8)  # slack: varints are read 10 bytes wide
    decoded = _decode_fast(data, found[0] if keys else [])
    revised = _decode(data, found[1])
    return None if decoded is None or revised is None else (decoded, revised)
