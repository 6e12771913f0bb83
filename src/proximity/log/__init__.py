"""The encounter log (edge adapter on stdlib sqlite3): sightings kept safely, handed to the matcher."""

from proximity.log.store import (
    DEFAULT_RETENTION_DAYS,
    EncounterLog,
    ExposureRecord,
    IngestReport,
    LogStats,
    PruneReport,
)

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "EncounterLog",
    "ExposureRecord",
    "IngestReport",
    "LogStats",
    "PruneReport",
]
