"""One schema, two engines: SQLite (the embedded default) and PostgreSQL (psycopg 3), plain DB-API.

The server's SQL is a dozen statements; what matters is transaction control (``BEGIN IMMEDIATE`` in
SQLite, row locks and an advisory lock in PostgreSQL), which plain DB-API states directly. Statements
are written once with ``?`` placeholders; the PostgreSQL connection rewrites them to ``%s``. Column
types differ only by name (``{blob}``, ``{bigint}``, ``{serial}``), filled in per engine.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from proximity.errors import KeyServerConfigError, KeyServerError

__all__ = ["ConflictError", "Database", "Transaction", "open_database"]


class ConflictError(KeyServerError):
    """A concurrent transaction stored the same row first (a unique constraint); running again is safe."""


_TYPES = {
    "sqlite": {"blob": "BLOB", "bigint": "INTEGER", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"},
    "postgresql": {"blob": "BYTEA", "bigint": "BIGINT", "serial": "BIGSERIAL PRIMARY KEY"},
}

# Each migration is a list of statements; a database records the versions it has applied.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE exposures (
            key {blob} PRIMARY KEY,
            rolling_start {bigint} NOT NULL,
            rolling_period INTEGER NOT NULL,
            transmission_risk INTEGER NOT NULL,
            report_type INTEGER NOT NULL,
            days_since_onset INTEGER,
            traveler INTEGER NOT NULL,
            health_authority TEXT NOT NULL,
            created_at {bigint} NOT NULL,
            available_at {bigint} NOT NULL,
            export_id {bigint},
            revised_report_type INTEGER,
            revised_at {bigint},
            revised_export_id {bigint}
        )""",
        "CREATE INDEX exposures_pending ON exposures (available_at) WHERE export_id IS NULL",
        "CREATE INDEX exposures_revised ON exposures (revised_at) WHERE revised_export_id IS NULL",
        """CREATE TABLE exports (
            id {serial},
            name TEXT NOT NULL UNIQUE,
            start_ts {bigint} NOT NULL,
            end_ts {bigint} NOT NULL,
            key_count INTEGER NOT NULL,
            revised_count INTEGER NOT NULL,
            created_at {bigint} NOT NULL,
            data {blob} NOT NULL
        )""",
        """CREATE TABLE daily_keys (
            scheme TEXT NOT NULL,
            key {blob} NOT NULL,
            time_start {bigint} NOT NULL,
            time_end {bigint} NOT NULL,
            param INTEGER NOT NULL,
            health_authority TEXT NOT NULL,
            created_at {bigint} NOT NULL,
            PRIMARY KEY (scheme, key, time_start)
        )""",
        "CREATE TABLE secrets (name TEXT PRIMARY KEY, value {blob} NOT NULL)",
        "CREATE TABLE watermarks (name TEXT PRIMARY KEY, value {bigint} NOT NULL)",
    ],
]


class Transaction(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...
    def rowcount(self, sql: str, params: Sequence[Any] = ()) -> int: ...


class _Cursor:
    """A transaction's statements, with the engine's placeholder style."""

    def __init__(self, cursor: Any, postgres: bool) -> None:
        self._cursor = cursor
        self._postgres = postgres

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), [tuple(r) for r in rows])

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.execute(sql, params)
        return [tuple(row) for row in self._cursor.fetchall()]

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self.execute(sql, params)
        row = self._cursor.fetchone()
        return None if row is None else tuple(row)

    def rowcount(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.execute(sql, params)
        return int(self._cursor.rowcount)


class Database:
    """A small pool of connections to one database; :meth:`transaction` is the only way in."""

    def __init__(self, target: str, *, pool_size: int = 16) -> None:
        self.target = target
        self.dialect = "postgresql" if target.startswith(("postgresql://", "postgres://")) else "sqlite"
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._open = 0
        self._pool_size = pool_size
        self._closed = False
        # SQLite has one writer at a time: queue this process's writers here rather than in SQLite's
        # busy handler, whose sleeps back off and waste the lock under load.
        self._write_lock = threading.Lock()

    @property
    def postgres(self) -> bool:
        return self.dialect == "postgresql"

    def describe(self) -> str:
        if self.postgres:
            # Never print a password: neither the URL's user info nor its query (``?password=``).
            parts = urlsplit(self.target)
            return f"PostgreSQL {parts.netloc.rpartition('@')[2]}{parts.path}"
        return f"SQLite {self.target}"

    def _connect(self) -> Any:
        if self.postgres:
            try:
                import psycopg
            except ImportError:
                raise KeyServerConfigError(
                    "--db", "PostgreSQL needs psycopg: pip install 'proximity-tracing[server]'"
                ) from None
            try:
                return psycopg.connect(self.target, autocommit=True)
            except psycopg.Error as error:
                raise KeyServerError(f"cannot connect to {self.describe()}: {error}") from None
        path = Path(self.target)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=120)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
        except (OSError, sqlite3.Error) as error:
            raise KeyServerError(f"cannot open {self.describe()}: {error}") from None
        return connection

    def _acquire(self) -> Any:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._open < self._pool_size:
                self._open += 1
                try:
                    return self._connect()
                except BaseException:
                    self._open -= 1
                    raise
        return self._pool.get()

    def _release(self, connection: Any, broken: bool) -> None:
        if broken or self._closed:
            with contextlib.suppress(Exception):
                connection.close()
            with self._lock:
                self._open -= 1
            return
        self._pool.put(connection)

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Transaction]:
        """One transaction; SQLite writers take the write lock at BEGIN (no upgrade deadlocks)."""
        serialise = write and not self.postgres
        if serialise:
            self._write_lock.acquire()
        try:
            with self._transaction(write) as tx:
                yield tx
        finally:
            if serialise:
                self._write_lock.release()

    @contextlib.contextmanager
    def _transaction(self, write: bool) -> Iterator[Transaction]:
        connection = self._acquire()
        broken = False
        cursor = connection.cursor()
        try:
            if self.postgres:
                cursor.execute("BEGIN")
            else:
                cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _Cursor(cursor, self.postgres)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
        except (sqlite3.IntegrityError, _psycopg_integrity_error()):
            # Not a broken connection: the transaction was rolled back. The message (its DETAIL names
            # the row's values, e.g. an embargoed key) stays out of the error and the logs.
            raise ConflictError(f"a concurrent write stored the same row first ({self.describe()})") from None
        except (sqlite3.Error, _psycopg_error()) as error:
            broken = True
            raise KeyServerError(f"database error ({self.describe()}): {error}") from error
        finally:
            with contextlib.suppress(Exception):
                cursor.close()
            self._release(connection, broken)

    def migrate(self) -> int:
        """Apply the migrations this database lacks; returns the schema version."""
        with self.transaction() as tx:
            if self.postgres:
                tx.execute("SELECT pg_advisory_xact_lock(7219011)")  # one migrator at a time
            tx.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
            row = tx.fetchone("SELECT MAX(version) FROM schema_migrations")
            current = int(row[0]) if row and row[0] is not None else 0
            if current > len(MIGRATIONS):
                raise KeyServerError(
                    f"{self.describe()} has schema version {current}; this proximity knows {len(MIGRATIONS)}"
                )
            for version in range(current + 1, len(MIGRATIONS) + 1):
                for statement in MIGRATIONS[version - 1]:
                    tx.execute(statement.format(**_TYPES[self.dialect]))
                tx.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
        return len(MIGRATIONS)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                connection = self._pool.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(Exception):
                connection.close()


def _psycopg_error() -> type[Exception]:
    try:
        import psycopg
    except ImportError:
        return sqlite3.Error
    return psycopg.Error


def _psycopg_integrity_error() -> type[Exception]:
    try:
        import psycopg
    except ImportError:
        return sqlite3.IntegrityError
    return psycopg.IntegrityError


def open_database(target: str, *, pool_size: int = 16) -> Database:
    """Open (and migrate) the server's database: a SQLite path or a ``postgresql://`` URL."""
    if not target:
        raise KeyServerConfigError("--db", "give a SQLite path or a postgresql:// URL")
    database = Database(target, pool_size=pool_size)
    database.migrate()
    return database
