"""Whole-or-nothing file writes for what the library must never leave half-written (key ring, exports,
signing keys): a temporary file beside the target, fsync, rename, fsync the directory."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from proximity.errors import FileWriteError

__all__ = ["fsync_directory", "make_private_dirs", "write_atomically"]


def write_atomically(
    path: Path,
    data: bytes,
    *,
    mode: int = 0o644,
    what: str = "file",
    replace: bool = True,
    make_parents: bool = False,
) -> bool:
    """Write ``data`` to ``path`` whole or not at all; False (nothing written) when ``replace`` is off
    and ``path`` exists, also if another process creates it meanwhile.

    The temporary file is created exclusively with ``mode`` (never through a planted file or link) and
    is removed whatever happens. ``make_parents`` creates missing directories (mode 0700). A system
    error (no permission, disk full, a file where a directory should be) is a :class:`FileWriteError`
    naming ``what`` and ``path``; an existing file is then untouched.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if make_parents:
            make_private_dirs(path.parent)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if replace:
                os.replace(temporary, path)
            else:
                try:
                    os.link(temporary, path)  # fails if the target exists, however it got there
                except FileExistsError:
                    return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        fsync_directory(path.parent)
    except OSError as error:
        reason = error.strerror or str(error)
        if isinstance(error, FileExistsError) and not path.parent.is_dir():  # mkdir met a file
            reason = f"{path.parent} is not a directory"
        raise FileWriteError(str(path), reason, what) from error
    return True


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable (a no-op on Windows, which cannot open one)."""
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and every missing parent with mode 0700 (``mkdir(parents=True)`` gives the
    parents the umask's mode, typically 0755, which shows who keeps personal data there)."""
    missing: list[Path] = []
    here = directory
    while not here.exists():
        missing.append(here)
        if here.parent == here:
            break
        here = here.parent
    if not here.is_dir():  # a file where a directory should be
        raise FileExistsError(17, "File exists", str(here))
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            if not folder.is_dir():
                raise
