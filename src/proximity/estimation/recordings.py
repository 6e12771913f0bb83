"""Recorded sessions at known distances (the shared CSV format), parsed column-wise and calibrated.

One session = one (config, session) of one file: one receiver hearing one beacon at one fixed
distance. Its attenuation is on GAEN's scale, like everything else in the project: the beacon's
calibrated TX power and the receiver's RSSI correction come from the calibration table, by the
recording's model names through the alias file (:func:`resolve_model`: exact, family, OEM or fleet;
sniffers get the fleet correction; a blank name follows its file's blank-name rule, if the alias file
has one). The recordings' ``tx_power`` column is the advert's TX Power Level, another quantity on
another scale: it is kept (``tx_power``, NaN where not reported) but never used for attenuation.

Bad input is refused whole with one line naming the file, the row and the column: missing columns, a
row with too few cells (the first missing column is named) or too many, text the csv module cannot
read (a field over its size limit), a non-numeric or fractional RSSI, a bad time or distance, a
session whose distance changes, a model name with control characters or over 100 characters.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from proximity.errors import RecordingFormatError
from proximity.estimation.calibration import (
    FLEET_RSSI_CORRECTION_DB,
    FLEET_TX_POWER_DBM,
    Calibration,
    CalibrationLevel,
    CalibrationTable,
    ModelAlias,
    resolve_model,
)
from proximity.estimation.csvrows import BrokenCsv, cell_name, csv_rows
from proximity.estimation.windows import ScanInstances, scan_instances
from proximity.radio import TX_POWER_RANGE

__all__ = [
    "MAX_MODEL_NAME",
    "REQUIRED",
    "RSSI_NOT_AVAILABLE",
    "TX_PLAUSIBLE",
    "Session",
    "fallback_counts",
    "parse_recordings",
]

RSSI_NOT_AVAILABLE = 127
REQUIRED = ("config", "session", "distance_m", "t_s", "rssi")
MAX_MODEL_NAME = 100
TX_PLAUSIBLE = (float(TX_POWER_RANGE[0]), float(TX_POWER_RANGE[1]))  # outside it (e.g. -999) = not reported
_FLEET = Calibration(FLEET_RSSI_CORRECTION_DB, FLEET_TX_POWER_DBM, 0, CalibrationLevel.FLEET)


@dataclass(frozen=True, eq=False)
class Session:
    """One recorded encounter: RSSI packets at one fixed distance ("not available" rows dropped).

    ``receiver`` and ``beacon`` are the calibrations found for the two models; ``dataset`` names the
    file (configurations are keyed by (dataset, config))."""

    config: str
    session: str
    distance_m: float
    times: NDArray[np.float64]
    rssi: NDArray[np.float64]
    tx_power: NDArray[np.float64]  # the advert's TX Power Level (another scale); NaN where not reported
    receiver_model: str = ""
    beacon_model: str = ""
    dataset: str = ""
    receiver: Calibration = _FLEET
    beacon: Calibration = _FLEET
    _cache: dict[str, object] = field(default_factory=dict, init=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        """The configuration this session belongs to, across files."""
        return (self.dataset, self.config)

    def attenuation(self) -> NDArray[np.float64]:
        """GAEN attenuation of each packet: beacon TX - (RSSI + receiver correction), floored at 0."""
        if "attenuation" not in self._cache:
            raw = self.beacon.tx - (self.rssi + self.receiver.rssi_correction)
            self._cache["attenuation"] = np.maximum(raw, 0.0)
        return self._cache["attenuation"]  # type: ignore[return-value]

    def scans(self) -> ScanInstances:
        if "scans" not in self._cache:
            self._cache["scans"] = scan_instances(
                self.times, self.attenuation(), self.rssi, first_scan_seconds=None
            )
        return self._cache["scans"]  # type: ignore[return-value]


def _fail(source: str, row: int, column: str, problem: str) -> RecordingFormatError:
    return RecordingFormatError(f"{source}: row {row}, column {column}: {problem}")


def _numbers(source: str, name: str, cells: tuple[str, ...]) -> NDArray[np.float64]:
    """A column as float64; the first cell that is not a number is named (row 2 = first data row)."""
    try:
        return np.asarray(cells, dtype=np.float64)
    except ValueError:
        for i, cell in enumerate(cells):
            try:
                float(cell)
            except ValueError:
                raise _fail(source, i + 2, name, f"not a number: {cell[:40]!r}") from None
        raise  # pragma: no cover - numpy and float agree on what a number is


def _check_names(source: str, name: str, cells: tuple[str, ...]) -> None:
    for value in set(cells):
        bad = len(value) > MAX_MODEL_NAME or any(unicodedata.category(ch)[0] == "C" for ch in value)
        if bad:
            row = cells.index(value) + 2
            what = "over 100 characters" if len(value) > MAX_MODEL_NAME else "control characters"
            raise _fail(source, row, name, f"model name with {what}: {value[:40]!r}")


def parse_recordings(
    text: str,
    source: str = "recordings",
    *,
    table: CalibrationTable | None = None,
    aliases: dict[str, ModelAlias] | None = None,
) -> list[Session]:
    """Sessions from the CSV text (columns config, session, distance_m, t_s, rssi[, tx_power,
    receiver_model, beacon_model, ...]); ``source`` names the file in errors and is the dataset."""
    header: list[str] = []
    try:
        reader = csv_rows(text)
        header = next(reader, [])
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise _fail(source, 1, ", ".join(missing), "missing from the header")
        rows = list(reader)
    except BrokenCsv as error:
        raise _fail(
            source, error.row, cell_name(header, error.cell), f"not a readable CSV ({error})"
        ) from None
    if not rows:
        raise RecordingFormatError(f"{source}: holds no session with an RSSI")
    width = len(header)
    for i, row in enumerate(rows):
        if len(row) != width:
            raise _fail(source, i + 2, cell_name(header, min(len(row), width)),
                        f"{len(row)} cells where the header has {width}")  # fmt: skip
    columns = dict(zip(header, zip(*rows, strict=True), strict=True))
    del rows
    rssi = _numbers(source, "rssi", columns["rssi"])
    whole = np.isfinite(rssi) & (rssi == np.round(rssi))
    if not whole.all():
        i = int(np.flatnonzero(~whole)[0])
        raise _fail(source, i + 2, "rssi", f"must be a whole number of dBm, got {columns['rssi'][i]!r}")
    times = _numbers(source, "t_s", columns["t_s"])
    distance = _numbers(source, "distance_m", columns["distance_m"])
    for name, ok in (("t_s", np.isfinite(times)), ("distance_m", np.isfinite(distance) & (distance >= 0))):
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise _fail(source, i + 2, name, f"needs a finite {'non-negative ' * (name != 't_s')}number")
    empty = ("",) * len(times)
    tx_cells = tuple(c.strip() or "nan" for c in columns.get("tx_power", ("nan",) * len(times)))
    tx = _numbers(source, "tx_power", tx_cells)
    tx = np.where((tx >= TX_PLAUSIBLE[0]) & (tx <= TX_PLAUSIBLE[1]), tx, np.nan)
    receivers, beacons = columns.get("receiver_model", empty), columns.get("beacon_model", empty)
    _check_names(source, "receiver_model", receivers)
    _check_names(source, "beacon_model", beacons)
    index: dict[tuple[str, str], int] = {}
    code = np.fromiter(
        (index.setdefault(k, len(index)) for k in zip(columns["config"], columns["session"], strict=True)),
        np.int64,
        len(times),
    )
    first = np.full(len(index), len(times), np.int64)
    np.minimum.at(first, code, np.arange(len(times)))
    changed = distance != distance[first[code]]
    if changed.any():
        i = int(np.flatnonzero(changed)[0])
        raise _fail(source, i + 2, "distance_m", f"session {columns['session'][i]!r} changes distance")
    keep = rssi != RSSI_NOT_AVAILABLE
    order = np.argsort(code[keep], kind="stable")
    kept = np.flatnonzero(keep)[order]
    bounds = np.flatnonzero(np.diff(code[kept])) + 1
    table_args = {"table": table, "aliases": aliases, "dataset": source}
    found: dict[str, Calibration] = {}

    def calibration(name: str) -> Calibration:
        if name not in found:
            found[name] = resolve_model(name, **table_args)  # type: ignore[arg-type]
        return found[name]

    keys = list(index)
    sessions = []
    for rows_of in np.split(kept, bounds) if kept.size else []:
        i = int(rows_of[0])
        config, session = keys[int(code[i])]
        sessions.append(
            Session(config, session, float(distance[i]), times[rows_of], rssi[rows_of], tx[rows_of],
                    receivers[i], beacons[i], source, calibration(receivers[i]), calibration(beacons[i]))
        )  # fmt: skip
    if not sessions:
        raise RecordingFormatError(f"{source}: holds no session with an RSSI")
    return sessions


def fallback_counts(sessions: Iterable[Session]) -> dict[str, dict[str, int]]:
    """How many sessions' receiver and beacon calibrations were found how (exact, family, oem, fleet,
    sniffer)."""
    counts: dict[str, dict[str, int]] = {"receiver": {}, "beacon": {}}
    for s in sessions:
        for role, cal in (("receiver", s.receiver), ("beacon", s.beacon)):
            counts[role][cal.how] = counts[role].get(cal.how, 0) + 1
    return counts
