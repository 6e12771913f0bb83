"""Opening an encounter log's SQLite file safely: refuse what is not ours, migrate, one transaction shape.

Kept apart from the log's API (:mod:`proximity.log.store`) because it is the part that can damage a
file: a foreign or newer file is refused before anything is written, a migration runs in one
transaction before the switch to WAL (so a failed one leaves the file as it was found), and every
write goes through :func:`transaction`. SQLite's complaints come out as the library's typed errors.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from proximity.errors import (
    EncounterLogBusyError,
    EncounterLogCorruptError,
    EncounterLogError,
    EncounterLogVersionError,
)
from proximity.log.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

__all__ = ["guard", "integrity_check", "is_busy", "open_database", "snapshot", "transaction"]

_SQLITE_MAGIC = b"SQLite format 3\x00"


def open_database(path: str, *, create: bool, timeout: float, check: bool) -> sqlite3.Connection:
    """A connection to the log at ``path``, identified as ours, migrated and in WAL mode.

    ``create=False`` refuses a missing file; ``check`` runs SQLite's quick check. Every failure closes
    the connection and raises a typed error (busy, corrupt, version, other)."""
    _refuse_foreign_file(path, create)
    try:
        _create_private(path)
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except (sqlite3.Error, OSError) as error:
        raise EncounterLogCorruptError(path, str(error)) from None
    try:
        db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        _identity(db, path)  # refuse another program's file or a newer schema before changing anything
        # migrate before switching to WAL: a file whose migration fails is left as it was found
        _migrate(db, path)
        _configure(db, path)
        if check and (problems := integrity_check(db, path, quick=True)) != "ok":
            raise EncounterLogCorruptError(path, f"integrity check failed: {problems[:200]}")
    except sqlite3.DatabaseError as error:
        db.close()
        if is_busy(error):  # another connection holds the lock: the file is fine, retry later
            raise EncounterLogBusyError(path, str(error)) from None
        raise EncounterLogCorruptError(path, str(error)) from None
    except UnicodeDecodeError:  # SQLite text (e.g. the schema) that is not UTF-8: a damaged file
        db.close()
        raise EncounterLogCorruptError(path, "its schema text is not UTF-8") from None
    except BaseException:
        db.close()
        raise
    return db


@contextmanager
def transaction(db: sqlite3.Connection, path: str) -> Iterator[None]:
    """The one write transaction: ``BEGIN IMMEDIATE`` (a busy log is :class:`EncounterLogBusyError`),
    COMMIT when the block ends, ROLLBACK when anything (even KeyboardInterrupt) escapes it."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if is_busy(error):
            raise EncounterLogBusyError(path, str(error)) from None
        raise EncounterLogError(f"encounter log {path}: {error}") from None
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


@contextmanager
def snapshot(db: sqlite3.Connection, path: str) -> Iterator[None]:
    """One read transaction: every read inside sees the same state of the file, whatever another
    process writes meanwhile (WAL: writers are not blocked). Nested use joins the open one."""
    if db.in_transaction:
        yield
        return
    with guard(path):
        db.execute("BEGIN")
    try:
        yield
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")  # nothing was written: ending the read is all


@contextmanager
def guard(path: str) -> Iterator[None]:
    """SQLite's complaints as our typed errors: damage -> EncounterLogCorruptError, busy -> ..."""
    try:
        yield
    except sqlite3.OperationalError as error:
        if is_busy(error):
            raise EncounterLogBusyError(path, str(error)) from None
        raise EncounterLogError(f"encounter log {path}: {error}") from None
    except sqlite3.DatabaseError as error:
        raise EncounterLogCorruptError(path, str(error)) from None
    except UnicodeDecodeError:
        raise EncounterLogCorruptError(path, "stored text is not UTF-8") from None


def integrity_check(db: sqlite3.Connection, path: str, *, quick: bool = False) -> str:
    """SQLite's ``PRAGMA integrity_check`` (or ``quick_check``): "ok" or the problems found."""
    with guard(path):
        rows = db.execute(f"PRAGMA {'quick_check' if quick else 'integrity_check'}").fetchall()
    return "; ".join(str(r[0]) for r in rows)


def is_busy(error: sqlite3.Error) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED (also as extended codes): another connection holds a lock.

    Python 3.11+ gives every error that comes from SQLite its code; the module's own errors have none.
    """
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _identity(db: sqlite3.Connection, path: str) -> int:
    """The schema version of a file that is ours (or empty); refuse another program's or a newer one."""
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if app_id != APPLICATION_ID:
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != 0 or version != 0 or tables:
            raise EncounterLogCorruptError(path, "it is another program's SQLite database")
    if version > SCHEMA_VERSION:
        raise EncounterLogVersionError(path, version, SCHEMA_VERSION)
    if version < 0:  # no version of this library writes one: a damaged header
        raise EncounterLogCorruptError(path, f"its schema version {version} is impossible")
    return int(version)


def _migrate(db: sqlite3.Connection, path: str) -> None:
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if app_id == APPLICATION_ID and version == SCHEMA_VERSION:
        return
    with transaction(db, path):
        version = _identity(db, path)  # again, under the write lock: another process may have migrated
        if db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
                if isinstance(statement, str):
                    db.execute(statement)
                else:
                    statement(db)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _configure(db: sqlite3.Connection, path: str) -> None:
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise EncounterLogError(f"encounter log {path}: cannot enable WAL mode (got {mode})")
    # FULL: a committed batch survives a power cut too, not only a killed process.
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA foreign_keys = ON")


def _refuse_foreign_file(path: str, create: bool) -> None:
    """Refuse, before SQLite touches it, a file that is not SQLite at all; never create unless asked."""
    file = Path(path)
    if not file.exists():
        if not create:
            raise EncounterLogError(f"no encounter log at {path}")
        return
    if file.is_dir():
        raise EncounterLogCorruptError(path, "it is a directory")
    if not file.is_file():
        raise EncounterLogCorruptError(path, "it is not a regular file (a socket, FIFO or device)")
    try:
        with file.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError as error:
        raise EncounterLogError(f"cannot read encounter log {path}: {error.strerror or error}") from None
    if head and head != _SQLITE_MAGIC:
        raise EncounterLogCorruptError(path, "it is not a SQLite database")


def _create_private(path: str) -> None:
    """Create a new log file 0600 before SQLite opens it (SQLite gives its -wal and -shm files the
    database's mode): it holds the phone's own IDs and whom it met."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
