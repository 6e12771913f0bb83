"""Device calibration: per-model RSSI correction and calibrated TX power, and attenuation from them.

One attenuation scale everywhere, GAEN's: attenuation = the sender's calibrated TX power (what it
broadcasts in its AEM; the table's ``tx``) - (raw RSSI + the receiver's ``rssi_correction``), floored
at 0 dB. Phones of different models read the same signal up to ~20 dB apart, so Google publishes a
table (oem, device, model, rssi_correction, tx, calibration_confidence); the package ships it
(data/calibration.csv, built by scripts/build_calibration.py, see data/README.md). Unknown models fall
back to the same model family (a model name sharing a long prefix, SIMILAR), then the OEM's median
(OEM), then the fleet value (FLEET): the median ``tx`` and ``rssi_correction`` of Google's 2020-08-12
list, -24 dBm and +3 dB (:data:`FLEET_TX_POWER_DBM`, :data:`FLEET_RSSI_CORRECTION_DB`). Recordings and
people name phones by marketing names; :func:`resolve_model` maps them through the package's alias file
(data/aliases.csv) to table rows, and treats sniffers (nRF52, Ubertooth) as receivers with the fleet
correction. A blank name is an unknown phone (fleet), unless the alias file holds a rule for the
recording file it comes from: a blank-name row with a ``dataset`` and the provenance sentence (``why``)
that establishes what those phones are (e.g. MIT Matrix, "between two iPhones": an iPhone of unknown
model, Apple's median row, which is the median iPhone since every Apple row is one).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cache
from importlib import resources

import numpy as np
from numpy.typing import NDArray

from proximity.errors import CalibrationError
from proximity.estimation.constants import DEFAULT_TX_POWER_DBM, FLEET_RSSI_CORRECTION_DB, FLEET_TX_POWER_DBM
from proximity.estimation.csvrows import BrokenCsv, cell_name, csv_rows

__all__ = [
    "COLUMNS",
    "DEFAULT_TX_POWER_DBM",
    "FLEET_RSSI_CORRECTION_DB",
    "FLEET_TX_POWER_DBM",
    "Calibration",
    "CalibrationLevel",
    "CalibrationRow",
    "CalibrationTable",
    "ModelAlias",
    "attenuation",
    "default_aliases",
    "default_calibration",
    "parse_aliases",
    "resolve_model",
]

COLUMNS = ("oem", "device", "model", "rssi_correction", "tx", "calibration_confidence")
# the project's earlier column names, still read
_LEGACY_COLUMNS = {"tx_power_correction": "tx", "confidence": "calibration_confidence"}


class CalibrationLevel(IntEnum):
    """How a model's correction was found; the value is GAEN's calibration confidence (0-3)."""

    FLEET = 0
    OEM = 1
    SIMILAR = 2
    EXACT = 3


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    oem: str
    device: str
    model: str
    rssi_correction: float
    tx: float  # calibrated TX power, dBm on GAEN's scale (what the model broadcasts in its AEM)
    confidence: int
    source: str = ""  # which published list the row comes from (one list per row)

    def __post_init__(self) -> None:
        # the shipped table builds ~12,000 rows per process: the usual case (two finite floats) first
        if not (_finite_number(self.rssi_correction) and _finite_number(self.tx)):
            for name in ("rssi_correction", "tx"):
                value = getattr(self, name)
                if not _finite_number(value):
                    raise CalibrationError(f"{name} must be a finite number of dB, got {value!r}")
        if self.confidence not in (0, 1, 2, 3):
            raise CalibrationError(f"confidence must be 0-3, got {self.confidence!r}")


@dataclass(frozen=True, slots=True)
class Calibration:
    """The values chosen for one model, and how they were found (``sniffer``: a receiver that is no
    phone, given the fleet correction)."""

    rssi_correction: float
    tx: float
    confidence: int
    level: CalibrationLevel
    sniffer: bool = False

    @property
    def how(self) -> str:
        """One word for reports: exact, family, oem, fleet or sniffer."""
        if self.sniffer:
            return "sniffer"
        return {3: "exact", 2: "family", 1: "oem", 0: "fleet"}[int(self.level)]


@dataclass(frozen=True)
class CalibrationTable:
    rows: tuple[CalibrationRow, ...]
    _index: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.rows:
            raise CalibrationError("a calibration table needs at least one row (the fleet average)")

    @classmethod
    def parse(cls, text: str, source: str = "calibration CSV") -> CalibrationTable:
        """Read the published CSV (a header with at least :data:`COLUMNS`; the earlier names
        ``tx_power_correction`` and ``confidence`` are read too; an optional ``list`` column). Blank
        lines are skipped; any other defect is one :class:`CalibrationError` naming ``source`` (the
        file), the row (1 = the header) and the column."""
        names: list[str] = []
        rows = []
        try:
            reader = csv_rows(text)
            names = [_LEGACY_COLUMNS.get(c, c) for c in next(reader, None) or ()]
            missing = [c for c in COLUMNS if c not in names]
            if missing:
                raise _row_error(source, 1, ", ".join(missing), "missing from the header")
            read = _row_reader(source, names)
            for number, cells in enumerate(reader, start=2):
                if cells:
                    rows.append(read(number, cells))
        except BrokenCsv as error:
            raise _row_error(source, error.row, cell_name(names, error.cell),
                             f"not a readable CSV ({error})") from None  # fmt: skip
        if not rows:
            raise CalibrationError(
                f"{source}: a calibration table needs at least one row (the fleet average)"
            )
        return cls(tuple(rows))

    def _lookup_index(self) -> tuple[dict[str, list[CalibrationRow]], dict[str, list[CalibrationRow]]]:
        """(rows by normalised OEM, rows by normalised device and by model), built once."""
        if not self._index:
            by_oem: dict[str, list[CalibrationRow]] = {}
            by_name: dict[str, list[CalibrationRow]] = {}
            for row in self.rows:
                by_oem.setdefault(_norm(row.oem), []).append(row)
                for key in {_norm(row.device), _norm(row.model)} - {""}:
                    by_name.setdefault(key, []).append(row)
            self._index.update(oem=by_oem, name=by_name, cache={})
        return self._index["oem"], self._index["name"]  # type: ignore[return-value]

    def lookup(self, oem: str = "", device: str = "", model: str = "") -> Calibration:
        """Values for a model: exact device/model, else its family (similar model), else OEM, else fleet."""
        key = (_norm(oem), _norm(device), _norm(model))
        by_oem, by_name = self._lookup_index()
        cache_: dict[tuple[str, str, str], Calibration] = self._index["cache"]  # type: ignore[assignment]
        if key not in cache_:
            cache_[key] = self._lookup(*key, by_oem, by_name)
        return cache_[key]

    def _lookup(
        self,
        oem_k: str,
        device_k: str,
        model_k: str,
        by_oem: dict[str, list[CalibrationRow]],
        by_name: dict[str, list[CalibrationRow]],
    ) -> Calibration:
        same_oem = by_oem.get(oem_k, []) if oem_k else []
        pool = same_oem or (list(self.rows) if not oem_k else [])
        exact = [
            r
            for k in (device_k, model_k)
            if k
            for r in by_name.get(k, [])
            if not oem_k or _norm(r.oem) == oem_k
        ]
        if exact:
            row = exact[0]
            return Calibration(row.rssi_correction, row.tx, row.confidence, CalibrationLevel.EXACT)
        if model_k and pool:
            best = max(_common_prefix(_norm(r.model), model_k) for r in pool)
            if best >= max(4, 0.75 * len(model_k)):
                similar = [r for r in pool if _common_prefix(_norm(r.model), model_k) == best]
                return _median(similar, CalibrationLevel.SIMILAR)
        if same_oem:
            return _median(same_oem, CalibrationLevel.OEM)
        return self.fleet()

    def fleet(self) -> Calibration:
        """The fleet value: the median of the table's non-reference (non-Apple) rows."""
        android = [r for r in self.rows if _norm(r.oem) != "apple"] or list(self.rows)
        return _median(android, CalibrationLevel.FLEET)


def _finite_number(value: object) -> bool:
    """An int or float (bool included, as isinstance has it) that is finite."""
    if type(value) is float:
        return math.isfinite(value)
    return isinstance(value, int | float) and math.isfinite(value)


def _row_error(source: str, row: int, column: str, problem: str) -> CalibrationError:
    return CalibrationError(f"{source}: row {row}, column {column}: {problem}")


_NUMBERS = ("rssi_correction", "tx", "calibration_confidence")


def _row_reader(source: str, names: list[str]) -> Callable[[int, list[str]], CalibrationRow]:
    """How to read one data row of a calibration CSV with header ``names`` (where each column is
    found once, not per row), each value checked where it is read."""
    at = {name: i for i, name in enumerate(names)}  # a repeated name: its last column, as before
    oem, device, model, listing = at["oem"], at["device"], at["model"], at.get("list")
    numbers = [(name, at[name]) for name in _NUMBERS]

    def read(number: int, cells: list[str]) -> CalibrationRow:
        if len(cells) != len(names):
            raise _row_error(source, number, cell_name(names, min(len(cells), len(names))),
                             f"{len(cells)} cells where the header has {len(names)}")  # fmt: skip
        values = []
        for name, i in numbers:
            cell = cells[i].strip()
            try:
                value = float(cell)
            except ValueError:
                raise _row_error(source, number, name, f"not a number: {cell[:40]!r}") from None
            if not math.isfinite(value):
                raise _row_error(source, number, name, f"must be finite, got {cell[:40]!r}")
            values.append(value)
        correction, tx, confidence = values
        if confidence not in (0, 1, 2, 3):
            raise _row_error(source, number, "calibration_confidence",
                             f"must be 0-3, got {cells[numbers[2][1]][:40]!r}")  # fmt: skip
        return CalibrationRow(cells[oem].strip(), cells[device].strip(), cells[model].strip(), correction, tx,
                              int(confidence), "" if listing is None else cells[listing].strip())  # fmt: skip

    return read


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _median(rows: list[CalibrationRow], level: CalibrationLevel) -> Calibration:
    return Calibration(
        float(np.median([r.rssi_correction for r in rows])),
        float(np.median([r.tx for r in rows])),
        int(level),
        level,
    )


@cache
def default_calibration() -> CalibrationTable:
    """The calibration table shipped as package data (11,921 rows; read once per process)."""
    text = resources.files("proximity.estimation").joinpath("data/calibration.csv").read_text("utf-8")
    return CalibrationTable.parse(text)


def attenuation(
    rssi: NDArray[np.float64],
    tx_power: NDArray[np.float64] | float | None = None,
    rssi_correction: float = 0.0,
    default_tx_power: float = DEFAULT_TX_POWER_DBM,
) -> NDArray[np.float64]:
    """GAEN attenuation in dB: max(TX - (RSSI + correction), 0); NaN where the RSSI is unknown.

    ``tx_power`` may hold NaN where unknown; those sightings (and ``None``) use ``default_tx_power``.
    """
    rssi = np.asarray(rssi, dtype=np.float64)
    tx = np.full(rssi.shape, default_tx_power) if tx_power is None else np.asarray(tx_power, np.float64)
    tx = np.where(np.isnan(tx), default_tx_power, tx)
    with np.errstate(invalid="ignore"):
        return np.maximum(tx - (rssi + rssi_correction), 0.0)


@dataclass(frozen=True, slots=True)
class ModelAlias:
    """A name phones go by (a recording's marketing name) -> a table key, or a sniffer (no phone).

    With ``dataset`` set and ``name`` blank it is that recording file's rule for blank model names,
    ``why`` the documented provenance that justifies it."""

    name: str
    oem: str
    model: str
    sniffer: bool = False
    dataset: str = ""
    why: str = ""


def _blank_key(dataset: str) -> str:
    """The alias key of a file's rule for blank names; no name collides (recording model names never
    hold control characters, recordings.py refuses them)."""
    return "\x00" + _norm(dataset)


@cache
def default_aliases() -> dict[str, ModelAlias]:
    """The package's alias file (data/aliases.csv), by normalised name; each file's blank-name rule
    under its own key."""
    text = resources.files("proximity.estimation").joinpath("data/aliases.csv").read_text("utf-8")
    return parse_aliases(text)


def parse_aliases(text: str) -> dict[str, ModelAlias]:
    """An alias CSV (name, oem, model, kind phone|sniffer[, dataset, why]). A row with a blank name is
    the rule for blank model names in recording file ``dataset`` (its name without .csv.gz) and must
    say ``why`` (the provenance sentence that establishes the phones)."""
    aliases = {}
    for line, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=2):
        name, kind, dataset, why = ((row.get(c) or "").strip() for c in ("name", "kind", "dataset", "why"))
        if (kind or "phone") not in ("phone", "sniffer"):
            raise CalibrationError(f"aliases line {line}: kind must be phone or sniffer, got {kind!r}")
        if bool(name) == bool(dataset) or (dataset and not why):
            raise CalibrationError(
                f"aliases line {line}: need a name, or (for blank names in one file) a dataset and why"
            )
        alias = ModelAlias(name, (row.get("oem") or "").strip(), (row.get("model") or "").strip(),
                           kind == "sniffer", dataset, why)  # fmt: skip
        aliases[_norm(name) if name else _blank_key(dataset)] = alias
    return aliases


def resolve_model(
    name: str,
    table: CalibrationTable | None = None,
    aliases: dict[str, ModelAlias] | None = None,
    dataset: str = "",
) -> Calibration:
    """A phone named as people and recordings name it: through the alias file to the table, else the
    name itself as a model (its family, then the OEM its first word names), else the fleet value.
    A sniffer gets the fleet values, marked ``sniffer``. A blank name from recording file ``dataset``
    follows that file's blank-name rule if the alias file has one, else gets the fleet value."""
    table = table or default_calibration()
    aliases = default_aliases() if aliases is None else aliases
    key = _norm(name) or (_blank_key(dataset) if dataset else "")
    alias = aliases.get(key) if key else None
    if alias is not None and alias.sniffer:
        fleet = table.fleet()
        return Calibration(fleet.rssi_correction, fleet.tx, fleet.confidence, fleet.level, sniffer=True)
    if alias is not None:
        return table.lookup(alias.oem, model=alias.model, device=alias.model)
    words = name.split()
    found = [table.lookup(model=name, device=name)]
    if len(words) > 1:  # "Google Pixel 5": OEM then model
        found.append(table.lookup(words[0], model=" ".join(words[1:]), device=" ".join(words[1:])))
    return max(found, key=lambda c: int(c.level))
