"""The encounter log's SQLite schema and its versioned migrations (``PRAGMA user_version``).

Each migration is a list of statements that takes the schema from version ``i`` to ``i + 1``; a log is
migrated inside one transaction on open, so a crash mid-migration leaves the old version intact.
``PRAGMA application_id`` marks the file as ours, so another program's database is refused, not altered.
"""

from __future__ import annotations

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "SCHEME_CODES", "SCHEME_NAMES_BY_CODE"]

APPLICATION_ID = 0x50524F58  # "PROX"

SCHEME_CODES = {"gaen": 0, "bluezone": 1}
SCHEME_NAMES_BY_CODE = {code: name for name, code in SCHEME_CODES.items()}

MIGRATIONS: tuple[tuple[str, ...], ...] = (
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
)

SCHEMA_VERSION = len(MIGRATIONS)
