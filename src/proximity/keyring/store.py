"""The key ring's file: one JSON document with a checksum, written atomically with mode 0600.

A torn, truncated or altered file is refused with :class:`KeyRingCorruptError` and left as it is: keys
are never silently replaced, since new keys would orphan every ID already broadcast.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from proximity.atomic_files import fsync_directory, write_atomically
from proximity.errors import (
    KeyRingCorruptError,
    KeyRingError,
    KeyRingNotFoundError,
    NotAKeyRingError,
    ProximityError,
)
from proximity.keyring.model import KeyRing, KeyRingSettings
from proximity.schemes.registry import UnknownSchemeError, scheme_record, scheme_records

__all__ = [
    "ENV_VAR",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_KEYRING_BYTES",
    "default_keyring_path",
    "dumps_keyring",
    "is_keyring_file",
    "load_keyring",
    "loads_keyring",
    "resolve_keyring_path",
    "save_keyring",
    "wipe_keyring",
]

ENV_VAR = "PROXIMITY_KEYRING"
FORMAT = "proximity-keyring"
FORMAT_VERSION = 3
# 1 and 2 had one top-level body field per scheme (2 added a scheme, which a ring of 1 gains at its next
# roll); 3 nests each scheme's entry under "keys", so a scheme added later needs no new version.
_READABLE_VERSIONS = (1, 2, 3)
FILE_NAME = "keyring.json"
# A key ring holds 14-odd keys (a few KB); anything bigger is not one and is not read whole.
MAX_KEYRING_BYTES = 1 << 20
_MARK = f'"format": "{FORMAT}"'.encode()


def default_keyring_path(environ: Mapping[str, str] = os.environ) -> Path:
    """The per-user data directory: ``$XDG_DATA_HOME/proximity/`` on Linux (``~/.local/share``)."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        xdg = environ.get("XDG_DATA_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "proximity" / FILE_NAME


def resolve_keyring_path(
    explicit: str | os.PathLike[str] | None, environ: Mapping[str, str] = os.environ
) -> Path:
    """``--keyring PATH`` first, then ``$PROXIMITY_KEYRING``, then :func:`default_keyring_path`."""
    if explicit:
        return Path(explicit)
    if environ.get(ENV_VAR):
        return Path(environ[ENV_VAR])
    return default_keyring_path(environ)


def _body(ring: KeyRing) -> dict[str, Any]:
    settings = ring.settings
    return {
        "settings": {
            "tx_power": settings.tx_power,
            "calibration_confidence": settings.calibration_confidence,
            "bluezone_ids_per_day": settings.bluezone_ids_per_day,
            "retention_days": settings.retention_days,
        },
        "keys": {name: scheme_record(name).load_keys().to_json(state) for name, state in ring.keys.items()},
    }


def _key_entries(body: Mapping[str, Any], version: int) -> Mapping[str, Any]:
    """Each scheme's entry: version 3 nests them under ``keys``; versions 1 and 2 had one top-level
    field per scheme beside ``settings`` (the same entries; null for a key not made yet)."""
    if version >= 3:
        entries: Mapping[str, Any] = body["keys"]
        if not isinstance(entries, dict):
            raise TypeError(f"keys must be an object, got {type(entries).__name__}")
        return entries
    return {name: entry for name, entry in body.items() if name != "settings" and entry is not None}


def _checksum(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def dumps_keyring(ring: KeyRing) -> str:
    """The file's text."""
    body = _body(ring)
    document = {"format": FORMAT, "version": FORMAT_VERSION, "body": body, "sha256": _checksum(body)}
    return json.dumps(document, indent=2) + "\n"


def loads_keyring(text: str, path: str = "<memory>") -> KeyRing:
    """Parse the file's text; any defect is a :class:`KeyRingCorruptError` naming it."""
    ours = _MARK in text[:4096].encode("utf-8", "replace")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise KeyRingCorruptError(
            path, f"not complete JSON: {error.msg} at byte {error.pos}", ours=ours
        ) from None
    except (ValueError, RecursionError) as error:  # 5,000-digit integers, deep nesting
        raise KeyRingCorruptError(path, f"not usable JSON: {type(error).__name__}", ours=ours) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeyRingCorruptError(path, "not a proximity key ring", ours=False)
    if document.get("version") not in _READABLE_VERSIONS:
        raise KeyRingCorruptError(path, f"format version {document.get('version')!r:.40} is not supported")
    body = document.get("body")
    if not isinstance(body, dict) or document.get("sha256") != _checksum(body):
        raise KeyRingCorruptError(path, "checksum mismatch: the file was altered or damaged")
    try:
        settings = KeyRingSettings(**body["settings"])
        entries = _key_entries(body, document["version"])
        keys = {name: scheme_record(name).load_keys().from_json(entry) for name, entry in entries.items()}
        for record in scheme_records():
            if record.load_keys().made_at_install and record.name not in keys:
                raise KeyError(f"{record.name} (made when the ring was created)")
        return KeyRing(settings, keys)
    except UnknownSchemeError as error:
        raise KeyRingCorruptError(path, f"invalid content: {error}") from None
    except (KeyError, TypeError, ValueError, OverflowError, ProximityError) as error:
        raise KeyRingCorruptError(path, f"invalid content: {error!s:.200}") from None


def _read_regular(path: Path) -> bytes:
    """The file's bytes, opened without blocking and only if it is a regular file (a FIFO or a device
    at the path would block or never end) no bigger than :data:`MAX_KEYRING_BYTES`."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyRingCorruptError(str(path), "not a regular file", ours=False)
        if info.st_size > MAX_KEYRING_BYTES:
            raise KeyRingCorruptError(
                str(path), f"{info.st_size} bytes, more than a key ring's {MAX_KEYRING_BYTES}", ours=False
            )
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(MAX_KEYRING_BYTES + 1)
    finally:
        os.close(fd)


def load_keyring(path: Path) -> KeyRing:
    try:
        raw = _read_regular(path)
    except FileNotFoundError:
        raise KeyRingNotFoundError(str(path)) from None
    except OSError as error:
        raise KeyRingError(f"cannot read key ring {path}: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyRingCorruptError(str(path), "not UTF-8 text", ours=_MARK in raw[:4096]) from None
    return loads_keyring(text, str(path))


def is_keyring_file(path: Path) -> bool:
    """Whether ``path`` is recognisably a key ring, even a damaged one: a regular file whose start
    names the key-ring format. Only such a file may be deleted by :func:`wipe_keyring`."""
    try:
        raw = _read_regular(path)
    except (OSError, KeyRingError):
        return False
    return _MARK in raw[:4096]


def save_keyring(path: Path, ring: KeyRing, *, create: bool = False) -> None:
    """Write atomically: a 0600 temporary file beside the target, fsync, rename, fsync the directory.

    With ``create``, refuse to replace an existing key ring. A system error (no permission, disk full)
    is a :class:`FileWriteError` naming the path; the old file, if any, is untouched and no temporary
    file is left behind.
    """
    exists = f"a key ring already exists at {path}; it was left untouched"
    if create and path.exists():
        raise KeyRingError(exists)
    data = dumps_keyring(ring).encode()
    # a symlinked key ring (e.g. into an encrypted volume) is rewritten where it lives, link kept
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    # create: never replace, even a ring another process wrote meanwhile
    if not write_atomically(target, data, mode=0o600, what="key ring", replace=not create, make_parents=True):
        raise KeyRingError(exists)


def wipe_keyring(path: Path) -> bool:
    """Delete the key ring; False if there was none.

    Refuses (:class:`NotAKeyRingError`) anything that is not recognisably a key ring, so a mistyped
    ``--keyring`` cannot delete another file; a damaged ring that still names its format is deleted.
    """
    if not os.path.lexists(path):
        return False
    if path.is_symlink() or not is_keyring_file(path):
        kind = "a symbolic link" if path.is_symlink() else "its content does not name the key-ring format"
        raise NotAKeyRingError(str(path), kind)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_directory(path.parent)
    return True
