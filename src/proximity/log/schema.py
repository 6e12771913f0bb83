"""The encounter log's SQLite schema and its versioned migrations (``PRAGMA user_version``).

Each migration is a list of statements that takes the schema from version ``i`` to ``i + 1``; a log is
migrated inside one transaction on open, so a crash mid-migration leaves the old version intact.
``PRAGMA application_id`` marks the file as ours, so another program's database is refused, not altered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from proximity.log.id_blocks import rebuild_all
from proximity.schemes.registry import scheme_records

if TYPE_CHECKING:
    import sqlite3

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "SCHEME_CODES", "SCHEME_NAMES_BY_CODE"]

APPLICATION_ID = 0x50524F58  # "PROX"

# Each scheme's integer in the ``scheme`` columns is its record's ``log_code`` (never reused).
SCHEME_CODES = {record.name: record.log_code for record in scheme_records()}
SCHEME_NAMES_BY_CODE = {code: name for name, code in SCHEME_CODES.items()}

# A step is an SQL statement or a function run on the connection (same transaction).
Step = str | Callable[["sqlite3.Connection"], None]

MIGRATIONS: tuple[tuple[Step, ...], ...] = (
    # 0 -> 1: raw sightings and the exposures found in them later.
    (
        """CREATE TABLE sightings (
            id INTEGER PRIMARY KEY,
            scheme INTEGER NOT NULL,
            observed_id BLOB NOT NULL,
            time REAL NOT NULL,
            rssi INTEGER,
            metadata BLOB,
            address TEXT,
            own_id BLOB
        )""",
        "CREATE INDEX sightings_by_time ON sightings (scheme, time)",
        """CREATE TABLE exposures (
            id INTEGER PRIMARY KEY,
            scheme INTEGER NOT NULL,
            key BLOB NOT NULL,
            day INTEGER NOT NULL,
            first_time REAL NOT NULL,
            last_time REAL NOT NULL,
            sightings INTEGER NOT NULL,
            found_at REAL NOT NULL,
            verdict TEXT
        )""",
        "CREATE INDEX exposures_by_day ON exposures (day)",
    ),
    # 1 -> 2: replayed captures by content hash, so replaying one twice adds nothing. Each sighting
    # names the source it came from (NULL: a live scan); a source is complete only once all its
    # sightings are committed, and an incomplete one's rows are replaced on the next replay. Logs
    # that already hold duplicate rows migrate as they are (no uniqueness on sightings).
    (
        "ALTER TABLE sightings ADD COLUMN source INTEGER",
        """CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            sha256 BLOB NOT NULL UNIQUE,
            name TEXT,
            started_at REAL NOT NULL,
            complete INTEGER NOT NULL DEFAULT 0,
            sightings INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX sightings_by_source ON sightings (source) WHERE source IS NOT NULL",
    ),
    # 2 -> 3: the columnar side store (proximity.log.id_blocks): every sighting's ID packed per scheme
    # and hour, so a matcher reads 100,000 IDs as a few hundred blobs. Existing sightings are packed
    # here, in the migration's transaction.
    (
        """CREATE TABLE id_blocks (
            id INTEGER PRIMARY KEY,
            scheme INTEGER NOT NULL,
            bucket INTEGER NOT NULL,
            count INTEGER NOT NULL,
            ids BLOB NOT NULL,
            UNIQUE (scheme, bucket)
        )""",
        # this library never updates a sighting's scheme, ID or time: another writer that does makes
        # the blocks disagree (their count drops), so readers fall back to the sightings themselves
        """CREATE TRIGGER sightings_changed AFTER UPDATE OF scheme, observed_id, time ON sightings
        BEGIN DELETE FROM id_blocks WHERE scheme IN (OLD.scheme, NEW.scheme); END""",
        rebuild_all,
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
