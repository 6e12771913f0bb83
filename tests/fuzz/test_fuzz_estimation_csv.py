"""Fuzz: the recordings CSV (`evaluate`) and the calibration CSV -> parse_recordings, CalibrationTable.

These readers belong to issue 14 (src/proximity/estimation/, validated there): their harnesses count
escapes and report them (FUZZ_REPORT) instead of failing, until that work lands; hangs and the memory
cap still fail them.
"""

from __future__ import annotations

import gzip
from importlib import resources

from fuzzing import FUZZ_SETTINGS, guarded, inputs
from hypothesis import given

from conftest import TESTS
from proximity.estimation.calibration import CalibrationTable
from proximity.estimation.evaluation import parse_recordings

with gzip.open(TESTS.parent / "data" / "mit-matrix-rssi.csv.gz", "rb") as handle:
    _LINES = handle.read(200_000).split(b"\n")
RECORDINGS = [b"\n".join(_LINES[:1] + _LINES[1 + i * 40 : 41 + i * 40]) + b"\n" for i in range(3)]
_CALIBRATION = resources.files("proximity.estimation").joinpath("data/calibration.csv").read_bytes()
CALIBRATION = [b"\n".join(_CALIBRATION.split(b"\n")[:30]) + b"\n"]


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def test_fuzz_recordings_csv() -> None:
    with guarded("recordings-csv (issue 14)", allow_escapes=True) as guard:

        @FUZZ_SETTINGS
        @given(inputs(RECORDINGS).map(_text))
        def run(text: str) -> None:
            guard.call(lambda: parse_recordings(text))

        run()


def test_fuzz_calibration_csv() -> None:
    with guarded("calibration-csv (issue 14)", allow_escapes=True) as guard:

        @FUZZ_SETTINGS
        @given(inputs(CALIBRATION).map(_text))
        def run(text: str) -> None:
            guard.call(lambda: CalibrationTable.parse(text))

        run()
