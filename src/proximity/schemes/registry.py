"""One record per scheme, and the registry of them: every fact a consumer needs, in one place.

Code outside :mod:`proximity.schemes` never compares a scheme's name: it looks the record up
(:func:`scheme_record`) and asks it (``record.dedup_seconds``, ``record.metadata_length``,
``record.advert``...). Adding a scheme is a scheme module (with its key state in a key ring, a
:class:`~proximity.schemes.keys.SchemeKeys`), its payload codec, its record here, its key-file format
(with its export and, for a daily-key scheme, its :class:`DailyKeyUpload`) and its matcher: the key ring
and its file, ``ids``, ``keys``, ``publish``, the key server, the node and the simulator need no change.
``tests/test_scheme_registry.py`` parses ``src`` to hold the rule, and ``tests/test_scheme_footprint.py``
checks that DP-3T, the scheme added last, is named nowhere else.

Behaviour that lives above the pure core (the matcher, key-file readers, key states) is named by an entry
point string (``"module:attribute"``), resolved on use like a packaging entry point, so the registry stays
at the bottom of the import graph (the matcher imports :mod:`proximity.sightings`, which asks the registry).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from proximity.payloads.adverts import Advert, BluezoneAdvert, Dp3tAdvert, GaenAdvert
from proximity.schemes.bluezone import DEFAULT_IDS_PER_DAY as BLUEZONE_IDS_PER_DAY
from proximity.schemes.bluezone import ID_LENGTH as BLUEZONE_ID_LENGTH
from proximity.schemes.dp3t import EPHID_LENGTH, EPHIDS_PER_DAY, EPOCH_SECONDS, MAX_CHAIN_DAYS
from proximity.schemes.duty import CONTINUOUS, OPERATING_SYSTEMS, DutyCycle
from proximity.schemes.gaen import AEM_LENGTH, ENIN_SECONDS, RPI_LENGTH, TEK_ROLLING_PERIOD
from proximity.schemes.keys import SchemeKeys
from proximity.times import SECONDS_PER_DAY

__all__ = [
    "CONTINUOUS",
    "OPERATING_SYSTEMS",
    "RETENTION_DAYS",
    "SCHEME_NAMES",
    "DailyKeyUpload",
    "DutyCycle",
    "KeyFileFormat",
    "SchemeRecord",
    "UnknownSchemeError",
    "duty_cycles",
    "register_scheme",
    "scheme_of_code",
    "scheme_record",
    "scheme_records",
    "sniff_key_file",
]

RETENTION_DAYS = 14
"""How long sightings and own keys are kept, and how far back a published key can match (all three
schemes' 14 days: GAEN's key lifetime, Bluezone's and DP-3T's retention)."""


class UnknownSchemeError(KeyError):
    """A scheme name no record is registered for (a KeyError, as a dict lookup would raise)."""

    def __init__(self, name: object) -> None:
        super().__init__(name)
        self.name = name

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name,))

    def __str__(self) -> str:
        return f"unknown scheme {self.name!r}; expected one of {', '.join(SCHEME_NAMES)}"


class DailyKeyUpload(Protocol):
    """How a scheme's published day keys travel to a key server and back (``POST /<scheme>/v1/publish``
    with the same certificate check as GAEN's ``/v1/publish``, and the list the server serves).

    An upload item is one JSON object in the request's ``field`` list; the server keeps each as a row
    ``(key, time_start, time_end, param)`` (``param``: a scheme parameter, e.g. IDs per day; 0 if none).
    """

    field: str
    """The request's list of items (e.g. ``"dailyKeys"``)."""
    max_items: int
    """The most items one upload may carry."""
    after_upload: str
    """What ``proximity publish`` tells the user after a successful upload."""

    def items(self, published: Sequence[Any]) -> list[dict[str, Any]]:
        """The upload items of what a key ring publishes (``SchemeKeys.published``)."""
        ...

    def parse_item(self, item: Mapping[str, Any], where: str) -> tuple[bytes, int, int]:
        """``(key, time_start, param)`` of one item; ``ValueError`` naming ``where`` if malformed."""
        ...

    def mac_segment(self, key: bytes, time_start: int, param: int) -> str:
        """The item's segment of the certificate's HMAC (``tekmac``)."""
        ...

    def document(self, rows: Sequence[tuple[bytes, int, int, int]]) -> bytes:
        """The published list the server serves, of its rows ``(key, time_start, time_end, param)``."""
        ...


@dataclass(frozen=True, slots=True)
class KeyFileFormat:
    """The file a health authority publishes a scheme's keys in, and the functions that handle it.

    ``sniff``, ``reader`` and ``writer`` are entry points (resolved on use): ``sniff(head: bytes) ->
    bool`` on a file's first 256 bytes; ``reader(path)`` returns the published keys, except for a
    ``signed`` format, whose files are read with the verifying stream the trusted keys go to;
    ``writer`` makes the file (its arguments are the format's own). A ``fallback`` sniff accepts any
    file of its kind (e.g. any JSON), so it is tried after every specific one. ``exporter`` (an
    unsigned format's) makes what ``proximity keys export`` writes: ``exporter(published, at) -> (bytes,
    summary)`` of what a key ring publishes and the release time, the summary being the command's output
    fields.
    """

    description: str
    sniff: str
    reader: str
    writer: str
    signed: bool = False
    fallback: bool = False
    exporter: str | None = None

    def sniffs(self, head: bytes) -> bool:
        """Whether a file starting with ``head`` looks like this format."""
        return bool(_resolve(self.sniff)(head))

    def load_reader(self) -> Any:
        return _resolve(self.reader)

    def load_writer(self) -> Any:
        return _resolve(self.writer)

    def load_exporter(self) -> Any | None:
        return None if self.exporter is None else _resolve(self.exporter)


@dataclass(frozen=True, slots=True)
class SchemeRecord:
    """Everything the rest of the library needs to know about one scheme.

        ``slot_seconds``/``ids_per_day`` are the default rotation (Bluezone's is configurable per ring);
        ``log_code`` is the integer the encounter log stores (never reuse one); ``dedup_seconds`` is the
        app's own logging rule (at most one row per ID per that many seconds; None: every advert);
        ``metadata_length`` is the length of encrypted metadata sent with the ID (GAEN's AEM), None when
        the scheme sends none; ``chained`` means a published key also reveals every later day's key
        (matched forward ``chain_days`` days); ``duty`` is the phone's scan/advertise duty cycle, which both
        the live node and the simulator use; ``keys`` names the scheme's own keys in a key ring
        (a :class:`~proximity.schemes.keys.SchemeKeys`: how they are made, rolled and stored, their broadcasts
    and ID tables, what a confirmed user publishes); ``matcher`` names the batch match function
        (``match(published, observations, workers=...) -> list[KeyMatch]``); ``key_files`` is the published
        key file format (:class:`KeyFileFormat`); ``foreground_only`` names the
        operating systems (of :data:`OPERATING_SYSTEMS`) on which the app cannot advertise from the
        background, so a phone there advertises only while the app is in the foreground (the simulator's
        ``foreground_share``); ``upload`` names the scheme's :class:`DailyKeyUpload` to a key server (None:
    the scheme uploads through GAEN's own publish API).
    """

    name: str
    label: str
    id_length: int
    slot_seconds: int
    ids_per_day: int
    log_code: int
    advert: type[Advert]
    duty: DutyCycle
    matcher: str
    keys: str
    key_files: KeyFileFormat
    dedup_seconds: float | None = None
    metadata_length: int | None = None
    chained: bool = False
    chain_days: int = 0
    foreground_only: frozenset[str] = frozenset()
    upload: str | None = None

    def load_upload(self) -> DailyKeyUpload | None:
        """The scheme's key-server upload (resolved on use), None for GAEN's own publish API."""
        upload: DailyKeyUpload | None = None if self.upload is None else _resolve(self.upload)
        return upload

    def load_matcher(self) -> Any:
        """The match function (resolved from its entry point on use)."""
        return _resolve(self.matcher)

    def load_keys(self) -> SchemeKeys:
        """The scheme's key state in a key ring (resolved from its entry point on use)."""
        keys: SchemeKeys = _resolve(self.keys)
        return keys


@functools.cache
def _resolve(entry_point: str) -> Any:
    """``"package.module:attribute"`` -> the attribute, importing the module on first use (then cached:
    a key ring asks for its schemes' key states on every roll)."""
    module, _, attribute = entry_point.partition(":")
    return getattr(importlib.import_module(module), attribute)


GAEN_RECORD = SchemeRecord(
    name="gaen",
    label="GAEN",
    id_length=RPI_LENGTH,
    slot_seconds=ENIN_SECONDS,
    ids_per_day=TEK_ROLLING_PERIOD,
    log_code=0,
    advert=GaenAdvert,
    # Android EN scans ~4 s every 210-300 s (GAEN BLE spec v1.2 allows that span); this library uses
    # the 300 s end (5 minutes, the interval Google documented for the EN service) in node and sim.
    # It advertises all the time (every 200-270 ms).
    duty=DutyCycle("gaen", 4.0, 300.0, 1.0, 1.0),
    matcher="proximity.matching.gaen:match_gaen",
    keys="proximity.keyring.scheme_keys:GAEN_KEYS",
    key_files=KeyFileFormat(
        "GAEN export (export.zip, or export.bin with --no-verify)",
        sniff="proximity.keyfiles.gaen_export:looks_like_export",
        reader="proximity.keyfiles.gaen_export:stream_exports",
        writer="proximity.keyfiles.gaen_export:write_export",
        signed=True,
    ),
    metadata_length=AEM_LENGTH,
)

BLUEZONE_RECORD = SchemeRecord(
    name="bluezone",
    label="Bluezone",
    id_length=BLUEZONE_ID_LENGTH,
    slot_seconds=SECONDS_PER_DAY // BLUEZONE_IDS_PER_DAY,
    ids_per_day=BLUEZONE_IDS_PER_DAY,
    log_code=1,
    advert=BluezoneAdvert,
    # Bluezone's Android app in the background: advertise 15 s on / 15 s off, scan 40 s every 300 s.
    duty=DutyCycle("bluezone", 40.0, 300.0, 15.0, 30.0),
    matcher="proximity.matching.bluezone:match_bluezone",
    keys="proximity.keyring.scheme_keys:BLUEZONE_KEYS",
    key_files=KeyFileFormat(
        "Bluezone daily-key JSON",
        sniff="proximity.keyfiles.bluezone_json:looks_like_bluezone_json",
        reader="proximity.keyfiles.bluezone_json:load_records",
        writer="proximity.keyfiles.bluezone_json:dump_records",
        exporter="proximity.keyfiles.bluezone_json:export_records",
        fallback=True,  # any JSON object or list: tried after the specific JSON formats
    ),
    upload="proximity.keyfiles.bluezone_json:DAILY_KEY_UPLOAD",
    dedup_seconds=5.0,  # the app logs a contact ID at most every 5 s
    chained=True,  # the published record says how many days it covers
    # iOS moves a background app's service UUIDs to an overflow area other phones do not see; Bluezone
    # had no Apple exemption (GAEN runs in the OS and has), so on iOS it advertises only in the foreground.
    foreground_only=frozenset({"ios"}),
)

DP3T_RECORD = SchemeRecord(
    name="dp3t",
    label="DP-3T",
    id_length=EPHID_LENGTH,
    slot_seconds=EPOCH_SECONDS,
    ids_per_day=EPHIDS_PER_DAY,
    log_code=2,
    advert=Dp3tAdvert,
    # The DP-3T Android SDK's defaults (AppConfigManager: DEFAULT_SCAN_INTERVAL 5 min, DEFAULT_SCAN_DURATION
    # 30 s; advertising continuous in ADVERTISE_MODE_LOW_POWER).
    duty=DutyCycle("dp3t", 30.0, 300.0, 1.0, 1.0),
    matcher="proximity.matching.dp3t:match_dp3t",
    keys="proximity.schemes.dp3t:DP3T_KEYS",
    key_files=KeyFileFormat(
        "DP-3T exposee JSON",
        sniff="proximity.keyfiles.dp3t_json:looks_like_dp3t_json",
        reader="proximity.keyfiles.dp3t_json:load_exposees",
        writer="proximity.keyfiles.dp3t_json:dump_exposees",
        exporter="proximity.keyfiles.dp3t_json:export_exposees",
    ),
    upload="proximity.keyfiles.dp3t_json:EXPOSEE_UPLOAD",
    chained=True,
    chain_days=MAX_CHAIN_DAYS,
)

_REGISTRY: dict[str, SchemeRecord] = {}
_CODES: dict[int, SchemeRecord] = {}
SCHEME_NAMES: tuple[str, ...] = ()


def register_scheme(record: SchemeRecord) -> SchemeRecord:
    """Add a scheme; its name and log code must be new (a log code, once written, means one scheme)."""
    global SCHEME_NAMES
    if record.name in _REGISTRY or record.name == CONTINUOUS.name:
        raise ValueError(f"scheme {record.name!r} is already registered")
    if record.log_code in _CODES:
        raise ValueError(f"log code {record.log_code} already belongs to {_CODES[record.log_code].name!r}")
    if unknown := sorted(record.foreground_only - set(OPERATING_SYSTEMS)):
        raise ValueError(f"scheme {record.name!r}: unknown operating system(s) {unknown}")
    if record.advert.scheme != record.name:
        raise ValueError(f"scheme {record.name!r}: its advert codec is {record.advert.scheme!r}'s")
    _REGISTRY[record.name] = record
    _CODES[record.log_code] = record
    SCHEME_NAMES = tuple(_REGISTRY)
    return record


def scheme_record(name: str) -> SchemeRecord:
    """The record of scheme ``name``; :class:`UnknownSchemeError` (a KeyError) for any other name."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownSchemeError(name) from None


def scheme_of_code(code: int) -> SchemeRecord | None:
    """The record whose ``log_code`` is ``code``, or None."""
    return _CODES.get(code)


def scheme_records() -> Iterator[SchemeRecord]:
    """Every registered record, in registration order."""
    return iter(tuple(_REGISTRY.values()))


def sniff_key_file(head: bytes) -> SchemeRecord | None:
    """The scheme whose key-file format a file starting with ``head`` has (specific sniffs first, then
    the fallbacks, each in registration order), or None."""
    ordered = sorted(_REGISTRY.values(), key=lambda record: record.key_files.fallback)
    return next((record for record in ordered if record.key_files.sniffs(head)), None)


def duty_cycles() -> dict[str, DutyCycle]:
    """Every duty cycle by name: each scheme's own, and ``continuous`` (a recording rig)."""
    return {CONTINUOUS.name: CONTINUOUS} | {r.name: r.duty for r in _REGISTRY.values()}


for _record in (GAEN_RECORD, BLUEZONE_RECORD, DP3T_RECORD):
    register_scheme(_record)
