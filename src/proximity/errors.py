"""One exception hierarchy for the whole library.

Every error the library raises on purpose derives from :class:`ProximityError`, so a caller can catch
the library's complaints in one place. Errors about a bad value also derive from :class:`ValueError`
(and errors about a bad type from :class:`TypeError`), as the standard library's callers expect.
Errors carry structured fields, not only a message, so programs need not parse text.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "BluetoothUnavailableError",
    "BtsnoopError",
    "CalibrationError",
    "CaptureFormatError",
    "EncounterLogBusyError",
    "EncounterLogCorruptError",
    "EncounterLogError",
    "EncounterLogVersionError",
    "EstimationParameterError",
    "FileWriteError",
    "InvalidBatchError",
    "InvalidKeyError",
    "InvalidLengthError",
    "InvalidMetadataError",
    "InvalidTimeError",
    "KeyFileError",
    "KeyFileSignatureError",
    "KeyRingCorruptError",
    "KeyRingError",
    "KeyRingNotFoundError",
    "KeyServerConfigError",
    "KeyServerError",
    "MalformedKeyFileError",
    "MalformedPayloadError",
    "NoKeyForTimeError",
    "NotAKeyRingError",
    "ObservationsFileError",
    "PayloadTypeError",
    "ProximityError",
    "RecordingFormatError",
    "ReplayError",
    "ResourceLimitError",
]


class ProximityError(Exception):
    """Base class of every error this library raises on purpose.

    Errors pickle with their fields (a worker process's error reaches the parent whole), whatever
    their ``__init__`` takes: the message and the fields travel, ``__init__`` is not called again.
    """

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[ProximityError], args: tuple[object, ...], state: dict[str, object]) -> ProximityError:
    error = cls.__new__(cls, *args)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InvalidLengthError(ProximityError, ValueError):
    """A byte string has the wrong length for what it claims to be."""

    def __init__(self, what: str, expected: int | str, actual: int) -> None:
        self.what = what
        self.expected = expected
        self.actual = actual
        super().__init__(f"{what} must be {expected} bytes, got {actual}")


class InvalidKeyError(ProximityError, ValueError):
    """A key or one of its parameters (start, period, ...) is out of range."""


class InvalidTimeError(ProximityError, ValueError):
    """A time could not be parsed, or lies outside what the caller's object covers."""


class NoKeyForTimeError(InvalidTimeError):
    """No key covers the requested time (a GAEN key's rolling period ended, or it has not begun)."""

    def __init__(self, scheme: str, at: float, detail: str = "") -> None:
        self.scheme = scheme
        self.at = at
        message = f"no {scheme} key covers unix time {at:g}"
        super().__init__(f"{message}: {detail}" if detail else message)


class MalformedPayloadError(ProximityError, ValueError):
    """A BLE advertisement is one of ours (right service or company id) but its payload is malformed."""

    def __init__(self, scheme: str, field: str, expected: int, actual: int) -> None:
        self.scheme = scheme
        self.field = field
        self.expected = expected
        self.actual = actual
        super().__init__(f"{scheme} {field} must be {expected} bytes, got {actual}")


class PayloadTypeError(ProximityError, TypeError):
    """An advert's payload is not bytes (e.g. an int from a broken backend, which ``bytes()`` would
    turn into that many zero bytes); ``what`` names the field."""

    def __init__(self, what: str, got: str) -> None:
        self.what = what
        self.got = got
        super().__init__(f"{what} must be bytes, got {got}")


class KeyRingError(ProximityError):
    """The device's key ring cannot be used."""


class KeyRingNotFoundError(KeyRingError, FileNotFoundError):
    """No key ring exists at the given path."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"no key ring at {path}; create one with `proximity keys init`")


class KeyRingCorruptError(KeyRingError, ValueError):
    """The key ring file is torn, tampered with or not a key ring; it is never replaced silently."""

    def __init__(self, path: str, reason: str, *, ours: bool = True) -> None:
        self.path = path
        self.reason = reason
        self.ours = ours  # recognisably a key ring (so `keys wipe` may remove it)
        advice = (
            "Restore it from a backup, or remove it with `proximity keys wipe` to start over"
            if ours
            else "It does not look like a key ring at all: check the path (--keyring, $PROXIMITY_KEYRING)"
        )
        super().__init__(f"key ring {path} is unreadable ({reason}); it was left untouched. {advice}")


class NotAKeyRingError(KeyRingError, ValueError):
    """A command would delete or replace ``path`` but it is not recognisably a key ring: refused."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path} is not a proximity key ring ({reason}); refusing to touch it")


class EncounterLogError(ProximityError):
    """The encounter log (SQLite) cannot be used as asked."""


class EncounterLogCorruptError(EncounterLogError, ValueError):
    """The log file is damaged, not a SQLite file, or another program's database; it is never overwritten."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"encounter log {path} cannot be used ({reason}); it was left untouched. "
            "Point --db at another file, or remove this one yourself if it is really not needed"
        )


class EncounterLogVersionError(EncounterLogError):
    """The log was written by a newer version of this library (its schema version is unknown here)."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        self.path = path
        self.found = found
        self.supported = supported
        super().__init__(
            f"encounter log {path} has schema version {found}; this version of proximity reads up to "
            f"{supported}. Upgrade proximity-tracing"
        )


class InvalidBatchError(ProximityError, ValueError):
    """Some rows of a batch of sightings are impossible; nothing of the batch was written.

    ``bad_rows`` are the positions of the offending rows in the batch and ``reasons`` say, row by row,
    what is wrong, so a caller can drop them and retry (or pass ``on_bad="skip"``).
    """

    def __init__(self, bad_rows: tuple[int, ...], reasons: tuple[str, ...], total: int) -> None:
        self.bad_rows = bad_rows
        self.reasons = reasons
        self.total = total
        shown = "; ".join(f"row {row}: {why}" for row, why in zip(bad_rows[:3], reasons[:3], strict=False))
        more = f" (and {len(bad_rows) - 3} more)" if len(bad_rows) > 3 else ""
        super().__init__(f"{len(bad_rows)} of {total} sightings are invalid: {shown}{more}; none was written")


class CalibrationError(ProximityError, ValueError):
    """A device calibration table is malformed (missing column, bad number, confidence outside 0-3)."""


class RecordingFormatError(ProximityError, ValueError):
    """A file of RSSI recordings does not have the expected columns or values."""


class CaptureFormatError(ProximityError, ValueError):
    """A capture of adverts (btsnoop or JSON Lines) cannot be read; ``where`` locates the problem."""

    def __init__(self, reason: str, where: str) -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"unreadable capture: {reason} ({where})")


class BtsnoopError(CaptureFormatError):
    """A capture that is not btsnoop, uses an unsupported datalink, or is cut short (``offset`` in bytes).

    ``record`` numbers the record at fault (from 1) and ``offset`` is where it starts, when one is.
    """

    def __init__(self, reason: str, offset: int, record: int | None = None) -> None:
        self.offset = offset
        self.record = record  # 1-based number of the bad record, when one record is at fault
        where = f"at byte {offset}" if record is None else f"record {record} at byte {offset}"
        super().__init__(reason, where)


class BluetoothUnavailableError(ProximityError):
    """This machine cannot scan or advertise now; ``reason`` says why (see ``BLUETOOTH_REASONS``).

    Reasons: "no-system-bus" (no D-Bus system bus), "no-bluez" (bluetoothd not running),
    "no-adapter", "powered-off", "permission", "unsupported" (no BlueZ advertising on this platform),
    "busy" (the controller refused, e.g. while scanning).
    """

    def __init__(self, reason: str, detail: str, adapter: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.adapter = adapter
        where = f" ({adapter})" if adapter else ""
        super().__init__(f"Bluetooth is not available{where}: {detail}")


class KeyFileError(ProximityError, ValueError):
    """A published key file (GAEN export, Bluezone JSON) cannot be used; ``source`` names it."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class MalformedKeyFileError(KeyFileError):
    """The file is not what it claims to be: bad header, zip, protobuf or JSON."""


class KeyFileSignatureError(KeyFileError):
    """A GAEN export is refused: unsigned, bare export.bin, no trusted key, or a bad signature.

    ``kind`` is one of "unsigned", "untrusted" (no trusted key matches its signature info) or
    "invalid" (a matching trusted key does not verify it).
    """

    def __init__(self, source: str, kind: str, reason: str) -> None:
        self.kind = kind
        super().__init__(source, reason)


class BackendUnavailableError(ProximityError, RuntimeError):
    """A matching backend was asked for (PROXIMITY_MATCH_BACKEND=c or ``backend="c"``) but cannot run.

    ``backend`` names it, ``reason`` says why (extension not built, no AES-NI, failed self test).
    """

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason
        super().__init__(f"matching backend {backend!r} is unavailable: {reason}")


class EstimationParameterError(ProximityError, ValueError):
    """An estimation parameter (channel model, scan grouping, close-contact rule) is out of range.

    ``parameter`` names it, ``value`` is what was given and ``expected`` says what is allowed.
    """

    def __init__(self, parameter: str, value: object, expected: str) -> None:
        self.parameter = parameter
        self.value = value
        self.expected = expected
        super().__init__(f"{parameter} must be {expected}, got {value!r}")


class ReplayError(ProximityError):
    """A replay stopped at one advert: ``index`` (1-based, in time order), ``time`` (its recorded unix
    time) and ``reason``; the original exception is the ``__cause__``."""

    def __init__(self, index: int, time: float, reason: str) -> None:
        self.index = index
        self.time = time
        self.reason = reason
        super().__init__(f"replay stopped at advert {index} (recorded at unix time {time:g}): {reason}")


class FileWriteError(ProximityError, OSError):
    """An output file (key ring, export, recording) could not be written; ``path`` names it and
    ``reason`` gives the system's words. No partial or temporary file is left behind."""

    def __init__(self, path: str, reason: str, what: str = "file") -> None:
        self.path = path
        self.reason = reason
        self.what = what
        super().__init__(f"cannot write {what} {path}: {reason}")


class EncounterLogBusyError(EncounterLogError):
    """Another connection holds the log's lock for longer than the timeout; nothing is wrong with the
    file (it was left untouched): retry later, or give a longer timeout."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"encounter log {path} is busy ({reason}): another program is using it; retry later")


class InvalidMetadataError(ProximityError, ValueError):
    """A GAEN metadata field (TX power, calibration confidence, version) is out of range.

    ``field`` names it, ``value`` is what was given and ``expected`` says what is allowed.
    """

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field} must be {expected}, got {value!r}")


class KeyServerError(ProximityError):
    """The key server (``proximity serve``) or its storage cannot do what was asked."""


class KeyServerConfigError(KeyServerError, ValueError):
    """A key-server option is wrong (an authority key, the database URL, a signing key)."""

    def __init__(self, option: str, reason: str) -> None:
        self.option = option
        self.reason = reason
        super().__init__(f"{option}: {reason}")


class ObservationsFileError(ProximityError, ValueError):
    """An observed-ID CSV (``match --observed``) cannot be used: ``path``, ``row`` (1 = first data row;
    None for the file as a whole), ``field`` (a column, or None) and ``reason`` locate the problem."""

    def __init__(self, path: str, reason: str, row: int | None = None, field: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.row = row
        self.field = field
        where = path if row is None else f"{path} row {row}"
        super().__init__(f"{where}: {reason}")


class ResourceLimitError(ProximityError, ValueError):
    """An input asks for more than a documented limit allows (days a key record spans, JSON nesting,
    a field's size, a scenario's memory): refused before anything is allocated.

    ``source`` names the input, ``limit`` the constant, ``value`` what was asked and ``maximum`` the cap.
    """

    def __init__(self, source: str, limit: str, value: object, maximum: object, detail: str = "") -> None:
        self.source = source
        self.limit = limit
        self.value = value
        self.maximum = maximum
        extra = f"; {detail}" if detail else ""
        super().__init__(f"{source}: {limit} is {value!r:.60}, more than the limit {maximum!r}{extra}")
