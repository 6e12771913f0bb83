"""``proximity match``: published key files x observed IDs -> matched keys per UTC day.

Key files are each scheme's published format (its record's ``key_files``; GAEN's export.bin only with
--no-verify); the scheme of each is sniffed from its first bytes unless --scheme says. Observations
come from a CSV (``id`` hex, ``time`` unix seconds, optional ``rssi`` and ``metadata`` hex AEM) or the
encounter log. A refused file aborts the whole run with one line saying why; no match is not an error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from proximity.cli.common import CommandError, print_json, print_table
from proximity.errors import InvalidTimeError, ObservationsFileError, ResourceLimitError
from proximity.estimation.constants import DEFAULT_ESTIMATOR, ESTIMATOR_NAMES, FLEET_RSSI_CORRECTION_DB
from proximity.keyfiles.gaen_export import TrustedKey
from proximity.matching.results import KeyMatch, group_by_day
from proximity.matching.source import SightingSource
from proximity.radio import rssi_problem
from proximity.schemes.gaen import AEM_LENGTH
from proximity.schemes.registry import SCHEME_NAMES, scheme_record, scheme_records, sniff_key_file
from proximity.sightings import ID_LENGTHS, Observations
from proximity.times import LATEST_TIME, format_utc, parse_time

__all__ = [
    "MAX_OBSERVED_ROWS",
    "MILLISECONDS_FLOOR",
    "read_observed_csv",
    "receiver_correction",
    "register",
]

PROGRESS_BYTES = 1 << 20  # key files at least this big get a progress bar
# Rows an observed CSV may hold (~200 bytes of memory each while read); bigger sets go in the log.
MAX_OBSERVED_ROWS = 10_000_000
# A CSV whose every time is above this (year 5138 in seconds, 1973 in milliseconds) is in milliseconds.
MILLISECONDS_FLOOR = 1e11
_PUBKEY_PREFIX = re.compile(r"^([A-Za-z0-9_]+)(?::([A-Za-z0-9_]*))?=(.+)$")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "match",
        help="match published key files against observed IDs",
        description="Match published keys ("
        + ", ".join(r.key_files.description for r in scheme_records())
        + ") against observed IDs.",
    )
    parser.add_argument(
        "--keys",
        nargs="+",
        required=True,
        metavar="FILE|URL",
        help="key files, or a key server's URL/v1/index.txt (every file it lists) or records.json",
    )
    parser.add_argument(
        "--pubkey",
        action="extend",
        nargs="+",
        default=[],
        metavar="[ID:VERSION=]PEM",
        help="a trusted export-signing public key; with ID (and VERSION) it only vouches for files "
        "whose signature info names it. Give several at once or repeat the option.",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="accept unsigned or unverifiable GAEN files (marked unverified)",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--observed", metavar="CSV", help="observed IDs: columns id, time[, rssi, metadata]")
    source.add_argument("--log", metavar="DB", help="the encounter log to match against")
    parser.add_argument("--scheme", choices=SCHEME_NAMES, help="scheme of every key file (default: sniffed)")
    parser.add_argument("--workers", type=int, metavar="N", help="worker processes (default: all cores)")
    parser.add_argument(
        "--json", action="store_true", help="print a JSON array, one object per key and UTC day"
    )
    parser.add_argument(
        "--estimator",
        default=DEFAULT_ESTIMATOR,
        choices=ESTIMATOR_NAMES,
        help=f"judge each exposure with this estimator (default: {DEFAULT_ESTIMATOR})",
    )
    calibration = parser.add_mutually_exclusive_group()
    calibration.add_argument(
        "--device",
        metavar="MODEL",
        help="this phone's model: its RSSI correction from the calibration table (else a similar model, "
        "the OEM's median, the fleet value)",
    )
    calibration.add_argument(
        "--rssi-correction",
        type=float,
        metavar="DB",
        help="this phone's RSSI correction in dB (default: the calibration table's fleet value, +3 dB)",
    )
    parser.set_defaults(handler=_match)


def _trusted_keys(specs: Sequence[str]) -> list[TrustedKey]:
    trusted: list[TrustedKey] = []
    for spec in specs:
        key_id = version = None
        path = spec
        found = _PUBKEY_PREFIX.match(spec)
        if found and not os.path.exists(spec):
            key_id, version, path = found.group(1), found.group(2) or None, found.group(3)
        try:
            pem = Path(path).read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read public key {path}: {error.strerror}") from None
        trusted.append(TrustedKey.from_pem(pem, key_id, version, source=path))
    return trusted


def _sniff(path: str) -> str:
    """The scheme of a key file, from its first bytes and the records' key-file formats."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(256)
    except OSError as error:
        raise CommandError(f"cannot read key file {path}: {error.strerror}") from None
    record = sniff_key_file(head)
    if record is None:
        formats = ", ".join(r.key_files.description for r in scheme_records())
        raise CommandError(f"{path}: not a key file this library reads ({formats})")
    return record.name


def read_observed_csv(path: str) -> dict[str, Observations]:
    """Observations per scheme from a CSV; the scheme of a row follows from its ID length.

    ``row_ids`` are the data rows' numbers (1 = first row after the header). UTF-8 (an Excel BOM is
    fine), any line ends; ``time`` is unix seconds or ISO 8601; ``rssi`` a whole number of dBm within
    :data:`proximity.radio.RSSI_RANGE` or empty. Any defect is an :class:`ObservationsFileError`
    naming the row and column; more than :data:`MAX_OBSERVED_ROWS` rows are refused.
    """
    import csv  # only for --observed: a match on the log never loads it

    by_length: dict[int, str] = {}
    for scheme_name, length in ID_LENGTHS.items():  # GAEN (registered first) owns 16 bytes unless told
        by_length.setdefault(length, scheme_name)
    columns: dict[str, dict[str, list[Any]]] = {
        s: {"id": [], "t": [], "r": [], "m": [], "n": []} for s in ID_LENGTHS
    }
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed below)
    except OSError as error:
        raise ObservationsFileError(path, f"cannot read it: {error.strerror or error}") from None
    number = 0
    try:
        with handle:
            reader = csv.DictReader(handle)
            fields = [name.strip() for name in reader.fieldnames or []]
            if "id" not in fields or "time" not in fields:
                raise ObservationsFileError(
                    path, "the header must name the columns id and time (and maybe rssi, metadata)"
                )
            reader.fieldnames = fields
            for number, row in enumerate(reader, start=1):
                if number > MAX_OBSERVED_ROWS:
                    raise ResourceLimitError(path, "MAX_OBSERVED_ROWS", number, MAX_OBSERVED_ROWS,
                                             "use the encounter log (--log) for more")  # fmt: skip
                scheme, value, at, rssi, metadata = _observed_row(path, number, row, by_length)
                col = columns[scheme]
                col["id"].append(value)
                col["t"].append(at)
                col["r"].append(rssi)
                col["m"].append(metadata)
                col["n"].append(number)
    except UnicodeDecodeError:
        raise ObservationsFileError(path, f"not UTF-8 text after data row {number}: is it a CSV?") from None
    except csv.Error as error:  # e.g. a field longer than csv.field_size_limit(), a NUL byte
        raise ObservationsFileError(path, f"not a readable CSV ({error})", number + 1) from None
    times = [t for col in columns.values() for t in col["t"]]
    if times and min(times) > MILLISECONDS_FLOOR:
        raise ObservationsFileError(
            path,
            f"every time exceeds {MILLISECONDS_FLOOR:.0e}: they look like milliseconds; give unix seconds",
            field="time",
        )
    out: dict[str, Observations] = {}
    for scheme, col in columns.items():
        n = len(col["id"])
        aem = np.zeros((n, AEM_LENGTH), dtype=np.uint8)
        has_aem = np.array([m is not None for m in col["m"]], dtype=np.bool_)
        for i in np.flatnonzero(has_aem):
            aem[i] = np.frombuffer(col["m"][i], dtype=np.uint8)
        out[scheme] = Observations(
            scheme,
            np.frombuffer(b"".join(col["id"]), dtype=np.uint8).reshape(n, ID_LENGTHS[scheme]).copy(),
            np.array(col["t"], dtype=np.float64),
            np.array(col["r"], dtype=np.float64),
            aem,
            has_aem,
            np.array(col["n"], dtype=np.int64),
        )
    return out


def _observed_row(
    path: str, number: int, row: dict[str | Any, str | Any], by_length: dict[int, str]
) -> tuple[str, bytes, float, float, bytes | None]:
    """One data row checked field by field: (scheme, id, time, rssi or NaN, metadata or None)."""

    def bad(name: str, reason: str) -> ObservationsFileError:
        return ObservationsFileError(path, reason, number, name)

    if None in row:
        raise bad("", f"{len(row[None])} more field(s) than the header names")
    text = {name: (row.get(name) or "").strip() for name in ("id", "time", "rssi", "metadata", "scheme")}
    if len(text["id"]) > 2 * max(ID_LENGTHS.values()):
        raise bad("id", f"id must be hex of 12 or 16 bytes, got {len(text['id'])} characters")
    try:
        value = bytes.fromhex(text["id"])
    except ValueError:
        raise bad("id", f"id must be hex, got {text['id']!r:.60}") from None
    scheme = text["scheme"] or by_length.get(len(value))
    if scheme is None:
        lengths = ", ".join(f"{r.label} ({r.id_length})" for r in scheme_records())
        raise bad("id", f"an ID of {len(value)} bytes is none of {lengths}")
    if scheme not in ID_LENGTHS:
        raise bad("scheme", f"scheme must be one of {', '.join(SCHEME_NAMES)}, got {scheme!r:.40}")
    if len(value) != ID_LENGTHS[scheme]:
        raise bad("id", f"a {scheme} ID is {ID_LENGTHS[scheme]} bytes, got {len(value)}")
    try:
        at = parse_time(text["time"])
    except InvalidTimeError as error:
        raise bad("time", str(error)) from None
    if not 0 <= at <= LATEST_TIME:
        hint = "; it looks like milliseconds" if 0 <= at / 1000 <= LATEST_TIME else ""
        given = f"{text['time']!r:.40}"
        raise bad("time", f"time must be from 1970 to year 9998 (unix 0..{LATEST_TIME}), got {given}{hint}")
    rssi = math.nan
    if text["rssi"]:
        try:
            rssi = float(text["rssi"])
        except ValueError:
            raise bad("rssi", f"rssi must be a number of dBm, got {text['rssi']!r:.40}") from None
        if (problem := rssi_problem(rssi)) is not None:
            raise bad("rssi", problem)
    metadata = None
    if text["metadata"]:
        try:
            metadata = bytes.fromhex(text["metadata"])
        except ValueError:
            raise bad("metadata", f"metadata must be hex, got {text['metadata']!r:.40}") from None
        if scheme_record(scheme).metadata_length != len(metadata):
            raise bad("metadata", "metadata must be a 4-byte GAEN AEM")
    return scheme, value, at, rssi, metadata


def _observations_from_log(
    path: str, schemes: Sequence[str], opened: contextlib.ExitStack
) -> dict[str, Observations | SightingSource]:
    """Each scheme's sightings in the log, as a matcher reads them: its IDs from the side store now,
    the sightings of the IDs it finds later (so the log stays open in ``opened``)."""
    from proximity.log import EncounterLog  # the log (sqlite3) loads only when asked for

    if not os.path.exists(path):
        raise CommandError(f"no encounter log at {path}")
    log = opened.enter_context(EncounterLog(path, create=False))
    opened.enter_context(log.snapshot())  # both passes of a match see one state of a live log
    return {scheme: log.matchable(scheme) for scheme in schemes}


class _Progress:
    """A one-line progress bar on stderr: keys done, and files done out of all."""

    def __init__(self, total_files: int, stream: TextIO, enabled: bool) -> None:
        self.total_files = total_files
        self.stream = stream
        self.enabled = enabled
        self.keys = 0
        self.files = 0
        self.shown = 0.0

    def add_keys(self, count: int) -> None:
        self.keys += count
        self.draw()

    def file_done(self) -> None:
        self.files += 1
        self.draw()

    def draw(self, final: bool = False) -> None:
        if not self.enabled or (not final and time.monotonic() - self.shown < 0.2):
            return
        self.shown = time.monotonic()
        fraction = self.files / self.total_files if self.total_files else 1.0
        bar = "#" * int(30 * fraction)
        self.stream.write(f"\rmatching [{bar:<30}] {self.files}/{self.total_files} files, {self.keys:,} keys")
        if final:
            self.stream.write("\n")
        self.stream.flush()


def _per_file(batches: Iterator[Any], progress: _Progress) -> Iterator[Any]:
    for batch in batches:  # one batch per export file
        yield batch
        progress.file_done()


def receiver_correction(device: str | None, rssi_correction: float | None) -> tuple[float, str]:
    """The scanner's RSSI correction in dB, and a line saying where it came from.

    The channel model's attenuation at 1 m assumes corrected RSSI, so with nothing given the fleet
    value of the calibration table (its median) is used (not 0). Only ``device`` loads the table.
    """
    if rssi_correction is not None:
        if not math.isfinite(rssi_correction):
            raise CommandError(f"--rssi-correction must be a finite number of dB, got {rssi_correction}")
        return rssi_correction, f"{rssi_correction:+.1f} dB (given)"
    if device:  # the table (11,921 rows) is read only here: the fleet value is a constant held to it
        from proximity.estimation.calibration import CalibrationLevel, default_calibration, resolve_model

        found = resolve_model(device, default_calibration())
        how = {
            CalibrationLevel.EXACT: f"model {device}",
            CalibrationLevel.SIMILAR: f"a model like {device}",
            CalibrationLevel.OEM: "its maker's average",
            CalibrationLevel.FLEET: "fleet value, model unknown",
        }
        return found.rssi_correction, f"{found.rssi_correction:+.1f} dB ({how[found.level]})"
    return FLEET_RSSI_CORRECTION_DB, (
        f"{FLEET_RSSI_CORRECTION_DB:+.1f} dB (fleet value; give --device MODEL or --rssi-correction DB)"
    )


def _match(args: argparse.Namespace) -> int:
    if not any(spec.startswith(("http://", "https://")) for spec in args.keys):
        return _match_files(args)  # local files: the HTTP client (urllib, ssl, the key ring) stays unloaded
    import tempfile

    from proximity.server.client import download_key_files

    with tempfile.TemporaryDirectory(prefix="proximity-keys-") as scratch:
        args.keys = download_key_files(args.keys, Path(scratch))
        return _match_files(args)


def _match_files(args: argparse.Namespace) -> int:
    schemes: dict[str, list[str]] = {name: [] for name in SCHEME_NAMES}
    for path in args.keys:
        scheme = args.scheme or _sniff(path)
        if args.scheme and _sniff(path) != args.scheme:
            raise CommandError(f"{path} is not a {args.scheme} key file")
        schemes[scheme].append(path)
    if args.workers is not None and args.workers < 1:
        raise CommandError("--workers must be at least 1")
    wanted = [s for s, files in schemes.items() if files]
    with contextlib.ExitStack() as opened:
        observed: dict[str, Observations | SightingSource] = {}
        if args.observed:
            observed.update(read_observed_csv(args.observed))
        else:
            observed.update(_observations_from_log(args.log, wanted, opened))
        matches, keys_read, skipped = _match_all(args, schemes, observed)
    days = group_by_day(matches)
    correction_db, correction = receiver_correction(args.device, args.rssi_correction)
    summary = (
        f"{len(args.keys)} key file(s), {keys_read:,} keys"
        + (f" ({skipped} malformed skipped)" if skipped else "")
        + f", {len(matches)} matched"
    )
    verdicts = _verdicts(days, args.estimator, correction_db)
    if args.log and days:
        kept = _record_exposures(args.log, days, verdicts)
        print(f"{kept} exposure(s) kept in the log {args.log}", file=sys.stderr)
    if args.json:
        print_json(
            [
                {**_day_json(day), "verdict": v, "rssi_correction_db": correction_db}
                for day, v in zip(days, verdicts, strict=True)
            ]
        )
        print(f"{summary}; RSSI correction {correction}", file=sys.stderr)
        return 0
    if not days:
        print(f"no matches: {summary}")
        return 0
    print_table(
        [
            *("scheme", "key", "day (UTC)", "sightings", "IDs", "first seen (UTC)", "last seen (UTC)"),
            *("verified", "close contact", args.estimator),
        ],
        [
            [
                day.match.scheme,
                day.match.key_data.hex(),
                format_utc(day.day)[:10],
                day.sightings,
                len(day.unique_ids),
                format_utc(day.first_seen),
                format_utc(day.last_seen),
                "yes" if day.match.verified else "no",
                _yes_no_unknown(v["close_contact"]),
                "-" if v["score"] is None else round(v["score"], 3),
            ]
            for day, v in zip(days, verdicts, strict=True)
        ],
    )
    print(f"\n{summary}\nRSSI correction {correction}; close contact unknown = heard without an RSSI")
    return 0


def _match_all(
    args: argparse.Namespace,
    schemes: dict[str, list[str]],
    observed: dict[str, Observations | SightingSource],
) -> tuple[list[KeyMatch], int, int]:
    """Every scheme's key files against its observations: (matches, keys read, keys skipped)."""
    trusted = _trusted_keys(args.pubkey)
    for record in scheme_records():
        if schemes[record.name] and record.key_files.signed and not trusted and not args.no_verify:
            raise CommandError(
                f"{record.label} files need a trusted public key (--pubkey PEM), "
                "or --no-verify to skip checks"
            )
    size = sum(os.path.getsize(p) for p in args.keys)
    progress = _Progress(len(args.keys), sys.stderr, size >= PROGRESS_BYTES)
    matches: list[KeyMatch] = []
    keys_read = skipped = 0
    for record in scheme_records():
        files = schemes[record.name]
        if not files:
            continue
        match = record.load_matcher()
        if record.key_files.signed:  # a verifying stream: the keys, then their revisions, as values
            stream = record.key_files.load_reader()(files, trusted, verify=not args.no_verify)
            matches += match(
                _per_file(stream.keys(), progress),
                observed[record.name],
                revised_keys=stream.revision_list(),
                workers=args.workers,
                progress=progress.add_keys,
            )
            keys_read += stream.total_keys
            skipped += stream.skipped_keys
        else:
            # All files in one run: a record published in several files is one match, not one per file.
            counted = [0]
            matches += match(
                _records(record.key_files.load_reader(), files, progress, counted),
                observed[record.name],
                workers=args.workers,
                progress=progress.add_keys,
            )
            keys_read += counted[0]
    progress.draw(final=True)
    return matches, keys_read, skipped


def _verdicts(days: Sequence[Any], estimator: str, rssi_correction: float) -> list[dict[str, Any]]:
    """Each matched day judged by ``estimator``; the estimators load only when something matched."""
    if not days:
        return []
    from proximity.estimation.estimators import EstimationSettings, verdict

    settings = EstimationSettings(rssi_correction=rssi_correction)
    # the verdict's day is the ISO date, as at the top level (it was unix seconds; see CHANGELOG.md)
    return [{**verdict(day.match, estimator, settings), "day": format_utc(day.day)[:10]} for day in days]


def _record_exposures(path: str, days: Sequence[Any], verdicts: Sequence[dict[str, Any]]) -> int:
    """Keep what `match --log` found in the log it read (the README's "exposures found later")."""
    from proximity.log import EncounterLog, ExposureRecord

    found_at = time.time()
    records = [
        ExposureRecord(
            scheme=day.match.scheme,
            key=day.match.key_data,
            day=int(day.day),
            first_time=float(day.first_seen),
            last_time=float(day.last_seen),
            sightings=int(day.sightings),
            found_at=found_at,
            verdict=json.dumps(_nulls(v), allow_nan=False, default=str),
        )
        for day, v in zip(days, verdicts, strict=True)
    ]
    with EncounterLog(path, create=False) as log:
        return log.record_exposures(records)


def _nulls(value: Any) -> Any:
    """NaN and infinities as null: the stored verdict is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nulls(v) for v in value]
    return value


def _yes_no_unknown(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def _records(
    load: Callable[[str], Sequence[Any]], paths: Sequence[str], progress: _Progress, counted: list[int]
) -> Iterator[Any]:
    for path in paths:  # one file in memory at a time
        records = load(path)
        counted[0] += len(records)
        yield from records
        progress.file_done()


def _day_json(day: Any) -> dict[str, Any]:
    match: KeyMatch = day.match
    return {
        "scheme": match.scheme,
        "key": match.key_data.hex(),
        "day": format_utc(day.day)[:10],
        "ids": [value.hex() for value in day.unique_ids],
        "first_seen": day.first_seen,
        "last_seen": day.last_seen,
        "sightings": day.sightings,
        "verified": match.verified,
        "report_type": match.report_type.name,
        "transmission_risk_level": match.transmission_risk_level,
        "days_since_onset_of_symptoms": match.days_since_onset_of_symptoms,
    }
