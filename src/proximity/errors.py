"""One exception hierarchy for the whole library.

Every error the library raises on purpose derives from :class:`ProximityError`, so a caller can catch
the library's complaints in one place. Errors about a bad value also derive from :class:`ValueError`
(and errors about a bad type from :class:`TypeError`), as the standard library's callers expect.
Errors carry structured fields, not only a message, so programs need not parse text.
"""

from __future__ import annotations

__all__ = [
    "InvalidKeyError",
    "InvalidLengthError",
    "InvalidTimeError",
    "KeyRingCorruptError",
    "KeyRingError",
    "KeyRingNotFoundError",
    "MalformedPayloadError",
    "NoKeyForTimeError",
    "ProximityError",
]


class ProximityError(Exception):
    """Base class of every error this library raises on purpose."""


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


class KeyRingError(ProximityError):
    """The device's key ring cannot be used."""


class KeyRingNotFoundError(KeyRingError, FileNotFoundError):
    """No key ring exists at the given path."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"no key ring at {path}; create one with `proximity keys init`")


class KeyRingCorruptError(KeyRingError, ValueError):
    """The key ring file is torn, tampered with or not a key ring; it is never replaced silently."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"key ring {path} is unreadable ({reason}); it was left untouched. "
            "Restore it from a backup, or remove it with `proximity keys wipe` to start over"
        )
