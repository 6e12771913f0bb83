"""Issue 15 in the estimation core: the recordings and calibration readers answer any text with one
typed line (file, row, column), and verdicts report a consistent attenuation range and duration."""

from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np
import pytest
from numpy.typing import NDArray

from proximity.errors import CalibrationError, RecordingFormatError
from proximity.estimation.calibration import CalibrationTable
from proximity.estimation.estimators import EstimationSettings, estimate, estimator_names, verdict
from proximity.estimation.recordings import parse_recordings
from proximity.estimation.windows import FIRST_SCAN_SECONDS

RECORDINGS = "config,session,distance_m,t_s,rssi\n"
CALIBRATION = "oem,device,model,rssi_correction,tx,calibration_confidence\n"
TOO_LONG = "9" * (csv.field_size_limit() + 1)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("A,s\r1,0,-60\n", "row 2, column distance_m"),  # was _csv.Error: new-line in unquoted field
        ("A,s\n", "row 2, column distance_m"),  # a short row names its first missing column
        ("A,s,1,0,-60,9\n", "row 2, column #6 (beyond the header)"),
        ("A,s,1,0,-60\n\n", "row 3, column config"),  # a blank line is a row of no cells
        (f"A,s,1,0,-60\nA,s,1,1,{TOO_LONG}\n", "row 3, column rssi: not a readable CSV"),
    ],
)
def test_recordings_reader_names_file_row_and_column(body: str, where: str) -> None:
    with pytest.raises(RecordingFormatError) as caught:
        parse_recordings(RECORDINGS + body, "walk.csv")
    message = str(caught.value)
    assert message.startswith(f"walk.csv: {where}") and "\n" not in message


def test_recordings_header_that_breaks_the_csv_module_is_refused() -> None:
    with pytest.raises(RecordingFormatError, match=r"walk\.csv: row 1, column #1: not a readable CSV"):
        parse_recordings(f'"{TOO_LONG}\n', "walk.csv")


def test_recordings_keep_quoted_line_breaks_inside_a_cell() -> None:
    (session,) = parse_recordings(RECORDINGS + '"A\r\nB",s,1,0,-60\n', "walk.csv")
    assert session.config == "A\r\nB"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("A,b\rc,1,1,3\n", "row 2, column model"),  # was _csv.Error
        ("A,b\n", "row 2, column model"),  # was a float(None) TypeError turned into an unnamed line
        ("A,b,c,1,1,3,extra\n", "row 2, column #7 (beyond the header)"),  # was silently accepted
        ("A,b,c,1,nan,3\n", "row 2, column tx: must be finite"),
        ("A,b,c,1,1,x\n", "row 2, column calibration_confidence: not a number"),
        ("A,b,c,1,1,2.5\n", "row 2, column calibration_confidence: must be 0-3"),
        (f"A,b,c,1,1,3\n\nA,b,{TOO_LONG},1,1,3\n", "row 4, column model: not a readable CSV"),
    ],
)
def test_calibration_reader_names_file_row_and_column(body: str, where: str) -> None:
    with pytest.raises(CalibrationError) as caught:
        CalibrationTable.parse(CALIBRATION + body, "phones.csv")
    message = str(caught.value)
    assert message.startswith(f"phones.csv: {where}") and "\n" not in message


def test_calibration_reader_skips_blank_lines_and_reads_crlf() -> None:
    table = CalibrationTable.parse(CALIBRATION.replace("\n", "\r\n") + "\r\nA,b,c,1,-20,3\r\n")
    assert [(r.model, r.tx, r.confidence) for r in table.rows] == [("c", -20.0, 3)]


@dataclass(frozen=True)
class _Heard:
    times: NDArray[np.float64]
    rssi: NDArray[np.float64]
    tx_power: NDArray[np.float64]


def _heard(times: NDArray[np.float64], rssi: float) -> _Heard:
    return _Heard(times, np.full(times.size, rssi), np.full(times.size, -24.0))


SCAN_BASED = [name for name in estimator_names() if name != "mean-attenuation"]


@pytest.mark.parametrize("estimator", SCAN_BASED)
def test_attenuation_range_holds_the_median(estimator: str) -> None:
    # every packet at 59.33 dB: the scan's typical attenuation is 59, its packet minimum 59.33
    settings = EstimationSettings(rssi_correction=0.33)
    heard = _heard(np.arange(0.0, 600.0, 4.0), -83.66)  # -24 - (-83.66 + 0.33) = 59.33
    result = verdict(heard, estimator, settings)
    assert result["attenuation_min_db"] <= result["attenuation_median_db"] <= result["attenuation_max_db"]
    assert result["attenuation_min_db"] == result["attenuation_max_db"] == 59.0


@pytest.mark.parametrize("estimator", [*SCAN_BASED, "mean-attenuation"])
def test_minutes_observed_stay_within_the_span_plus_one_scan_interval(estimator: str) -> None:
    # heard every 4 s for 19 min 56 s: scans every 28 s; the first scan was credited 120 s (21.6 min)
    times = np.arange(0.0, 1196.0 + 1, 4.0)
    (day,) = estimate(_heard(times, -70.0), estimator)
    assert day.minutes_observed * 60 <= 1196 + 28
    assert day.minutes_observed * 60 >= 1196 - 28
    if day.minutes_within is not None:
        assert day.minutes_within <= day.minutes_observed


def test_a_lone_scan_and_slow_scans_keep_gaens_first_scan_credit() -> None:
    (lone,) = estimate(_heard(np.array([100.0, 104.0]), -70.0), "probabilistic")
    assert lone.minutes_observed * 60 == FIRST_SCAN_SECONDS
    (slow,) = estimate(_heard(np.array([0.0, 300.0, 600.0]), -70.0), "probabilistic")
    assert slow.minutes_observed * 60 == FIRST_SCAN_SECONDS + 600
