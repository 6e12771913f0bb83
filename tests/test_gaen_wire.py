"""The column decoder of export files agrees with the protobuf object path on every message."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from proximity.keyfiles import export_pb2 as pb
from proximity.keyfiles.gaen_export import _batch, _object_columns
from proximity.keyfiles.gaen_wire import decode_keys

int32 = st.integers(-(2**31), 2**31 - 1)
COLUMNS = (
    "key_data",
    "rolling_start",
    "rolling_period",
    "transmission_risk_level",
    "report_type",
    "days_since_onset",
)


@st.composite
def tek(draw: st.DrawFn) -> pb.TemporaryExposureKey:
    key = pb.TemporaryExposureKey()
    if draw(st.booleans()):
        key.key_data = draw(st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=40)))
    for field, values in [
        ("transmission_risk_level", st.one_of(st.integers(0, 8), int32)),
        ("rolling_start_interval_number", st.one_of(st.integers(2_600_000, 2_900_000), int32)),
        ("rolling_period", st.one_of(st.integers(1, 144), int32)),
        ("report_type", st.integers(0, 5)),
        ("days_since_onset_of_symptoms", int32),
        ("variant_of_concern", st.integers(0, 4)),
    ]:
        if draw(st.booleans()):
            setattr(key, field, draw(values))
    return key


@st.composite
def export(draw: st.DrawFn) -> bytes:
    message = pb.TemporaryExposureKeyExport(
        keys=draw(st.lists(tek(), max_size=30)), revised_keys=draw(st.lists(tek(), max_size=5))
    )
    if draw(st.booleans()):
        message.region = draw(st.text(max_size=5))
        message.start_timestamp = draw(st.integers(0, 2**63))
    body = message.SerializeToString()
    if draw(st.booleans()):  # an unknown report type (closed enum: an unknown field) or other unknown fields
        body += draw(st.sampled_from([b"\x3a\x02\x28\x09", b"\x48\x01", b"\x3a\x03\x58\x96\x01"]))
    return body


def _same(body: bytes) -> None:
    message = pb.TemporaryExposureKeyExport()
    message.ParseFromString(body)
    expected = [
        _batch(_object_columns(message.keys), True),
        _batch(_object_columns(message.revised_keys), True),
    ]
    wire = decode_keys(body)
    assert wire is not None
    for (want, want_skipped), columns in zip(expected, wire, strict=True):
        got, skipped = _batch(columns, True)
        assert skipped == want_skipped
        for name in COLUMNS:
            assert np.array_equal(getattr(got, name), getattr(want, name)), name


@settings(max_examples=300, deadline=None)
@given(export())
def test_columns_match_the_object_path(body: bytes) -> None:
    _same(body)


def test_a_typical_file_takes_the_column_path() -> None:
    keys = [
        pb.TemporaryExposureKey(
            key_data=bytes([i]) * 16,
            rolling_start_interval_number=2_650_032 + i,
            report_type=pb.TemporaryExposureKey.CONFIRMED_TEST,
        )
        for i in range(100)
    ]
    body = pb.TemporaryExposureKeyExport(keys=keys, region="DE").SerializeToString()
    wire = decode_keys(body)
    assert wire is not None and wire[0].key_data.shape == (100, 16) and len(wire[1].key_length) == 0
    revisions_only = decode_keys(body, keys=False)  # ExportStream.revisions()'s first pass
    assert revisions_only is not None and len(revisions_only[0].key_length) == 0
    _same(body)


def test_what_it_does_not_expect_goes_to_the_object_path() -> None:
    assert decode_keys(b"\x3a\x05\x0a\x10") is None  # truncated
    assert decode_keys(b"\x3a\x02\x10\x0a\x10") is None  # field 2 as a length-delimited field, then junk
    assert decode_keys(b"\x3b\x00") is None  # wire type 3 (groups)


def test_runs_of_equal_length_keys_with_different_layouts_decode_as_the_object_path() -> None:
    """The bulk path takes a key laid out like the first of its length; look-alikes must not fool it."""
    rng = np.random.default_rng(6)
    keys = []
    for i in range(3000):
        key = pb.TemporaryExposureKey(
            key_data=rng.bytes(16), rolling_start_interval_number=2_650_032 - 144 * (i % 14)
        )
        kind = i % 23
        if kind != 1:
            key.transmission_risk_level = int(rng.integers(0, 9))
        if kind == 2:  # the same entry length as the common keys, other fields
            key.ClearField("transmission_risk_level")
            key.report_type = pb.TemporaryExposureKey.CONFIRMED_TEST
        if kind == 3:
            key.days_since_onset_of_symptoms = int(rng.integers(-14, 15))
        if kind == 4:
            key.rolling_start_interval_number = -5  # a 10-byte varint
        if kind == 5:
            key.key_data = rng.bytes(15)  # a short key: skipped
        if kind == 6:
            key.rolling_period = int(rng.integers(1, 145))
        keys.append(key)
    body = pb.TemporaryExposureKeyExport(keys=keys).SerializeToString()
    body += b"\x3a\x0a\x0a\x00" + b"\x18\x80\x80\x80\x01" + b"\x20\x90\x01"  # varints of other widths
    body += b"\x3a\x09\x58\x01\x0a\x00\x18\x81\x80\x80\x01"  # an unknown field first
    _same(body)


# Keys of one serialized length but other layouts (varint widths), another length, an unknown field,
# and a key with an unknown report type: long runs of these are read in place, in bulk.
_TEMPLATES = [
    pb.TemporaryExposureKey(
        key_data=b"k" * 16, transmission_risk_level=1, rolling_start_interval_number=2_650_032
    ),
    pb.TemporaryExposureKey(
        key_data=b"l" * 16, transmission_risk_level=200, rolling_start_interval_number=20_000
    ),
    pb.TemporaryExposureKey(
        key_data=b"m" * 16, transmission_risk_level=3, rolling_start_interval_number=2_650_176
    ),
    pb.TemporaryExposureKey(
        key_data=b"n" * 16, rolling_start_interval_number=-5, days_since_onset_of_symptoms=-3
    ),
    pb.TemporaryExposureKey(
        key_data=b"o" * 15, report_type=pb.TemporaryExposureKey.RECURSIVE, rolling_period=7
    ),
]
_ODD = [b"\x3a\x14\x0a\x10" + b"p" * 16 + b"\x28\x09", b"\x3a\x15\x0a\x10" + b"q" * 16 + b"\x58\x96\x01"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_TEMPLATES) + len(_ODD) - 1), st.integers(1, 60)), max_size=12))
def test_long_runs_of_keys_match_the_object_path(runs: list[tuple[int, int]]) -> None:
    body = b""
    for which, count in runs:
        if which < len(_TEMPLATES):
            body += pb.TemporaryExposureKeyExport(keys=[_TEMPLATES[which]] * count).SerializeToString()
        else:
            body += _ODD[which - len(_TEMPLATES)] * count
    _same(body)


def test_a_run_of_mixed_layouts_is_read_whole() -> None:
    keys = [_TEMPLATES[i % 3] for i in range(500)] + [_TEMPLATES[4]] * 40 + [_TEMPLATES[0]] * 100
    _same(pb.TemporaryExposureKeyExport(keys=keys, revised_keys=[_TEMPLATES[3]]).SerializeToString())
