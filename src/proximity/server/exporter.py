"""The export pass: pending keys -> signed export.zip files in the database, index, retention.

One pass runs in one transaction, so a crash leaves either the whole pass (files listed, keys marked
exported) or nothing (keys still pending, no file). Two workers at once are safe: the pass holds a lock
for its transaction (a PostgreSQL advisory transaction lock, or SQLite's write lock from ``BEGIN
IMMEDIATE``), which a killed worker releases at once, unlike a lease that must expire. Files are
padded with fake keys to ``min_keys`` plus a random 0-100 and their keys are
sorted by key bytes (random), so neither the count nor the order says anything about uploads.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from proximity.errors import KeyServerConfigError
from proximity.keyfiles.gaen_export import write_export
from proximity.schemes.gaen import ENIN_SECONDS, TemporaryExposureKey
from proximity.schemes.published import DiagnosisKey, ReportType
from proximity.server.config import ServerConfig
from proximity.server.db import Database, Transaction
from proximity.times import SECONDS_PER_DAY

__all__ = ["ExportReport", "Exporter", "export_data", "export_index", "export_name"]

EXPORT_LOCK = 7219012  # PostgreSQL advisory lock id of the export pass
PADDING_JITTER = 101  # fake keys: min_keys plus a random 0..100
_KEY_COLUMNS = "key, rolling_start, rolling_period, transmission_risk, {report}, days_since_onset"


EXPORT_NAME = re.compile(r"^[0-9]{1,12}-[0-9]{1,12}-[0-9]{5}\.zip$")  # what index.txt may list


def export_name(start: int, end: int, number: int) -> str:
    return f"{start}-{end}-{number:05d}.zip"


@dataclass
class ExportReport:
    files: list[str] = field(default_factory=list)
    keys: int = 0
    revised_keys: int = 0
    deleted_keys: int = 0
    deleted_files: int = 0
    lock_busy: bool = False


def _diagnosis_key(row: Sequence[Any]) -> DiagnosisKey:
    key, start, period, risk, report, onset = row
    return DiagnosisKey(TemporaryExposureKey(bytes(key), start, period), risk, ReportType(report), onset)


class Exporter:
    """Runs export passes for one region; safe to run in several processes against one database."""

    def __init__(self, config: ServerConfig, database: Database) -> None:
        if config.signing_key is None:
            raise KeyServerConfigError("--signing-key", "exports must be signed: give a P-256 private key")
        self.config = config
        self.database = database

    def run_once(self, now: float | None = None) -> ExportReport:
        """One pass up to ``now`` (default: the clock): export, then apply retention."""
        at = int(time.time() if now is None else now)
        with self.database.transaction() as tx:
            if self.database.postgres:
                # Released at commit, rollback or when a killed worker's connection drops.
                row = tx.fetchone("SELECT pg_try_advisory_xact_lock(?)", (EXPORT_LOCK,))
                if row is None or not row[0]:
                    return ExportReport(lock_busy=True)
            # SQLite: BEGIN IMMEDIATE holds the write lock; a second worker waits, then finds nothing new.
            report = self._export(tx, at)
            self._retain(tx, at, report)
        return report

    def _export(self, tx: Transaction, at: int) -> ExportReport:
        config = self.config
        report = ExportReport()
        lock = " FOR UPDATE" if self.database.postgres else ""
        pending = tx.fetchall(
            f"SELECT {_KEY_COLUMNS.format(report='COALESCE(revised_report_type, report_type)')} "
            "FROM exposures WHERE export_id IS NULL AND available_at <= ? "
            f"AND COALESCE(revised_report_type, report_type) <> ? ORDER BY key{lock}",
            (at, int(ReportType.REVOKED)),
        )
        revised = tx.fetchall(
            f"SELECT {_KEY_COLUMNS.format(report='revised_report_type')} FROM exposures "
            "WHERE export_id IS NOT NULL AND revised_report_type IS NOT NULL "
            f"AND revised_export_id IS NULL{lock}",
        )
        mark = tx.fetchone("SELECT value FROM watermarks WHERE name = 'export_end'")
        start = int(mark[0]) if mark else at - config.batch_minutes * 60
        quiet = not pending and not revised
        # Nothing new: a padded file still goes out once per batch period (quiet periods look alike),
        # but not before the first key ever arrived.
        if at <= start or (quiet and (mark is None or at - start < config.batch_minutes * 60)):
            return report
        chunks = [
            pending[i : i + config.max_keys_per_file]
            for i in range(0, len(pending), config.max_keys_per_file)
        ] or [[]]
        for number, chunk in enumerate(chunks, start=1):
            revised_here = revised if number == 1 else []
            name = export_name(start, at, number)
            data = write_export(
                [_diagnosis_key(row) for row in chunk],
                self.config.signing_key,  # type: ignore[arg-type]  # checked in __init__
                key_id=config.key_id,
                key_version=config.key_version,
                region=config.region,
                start_timestamp=start,
                end_timestamp=at,
                revised_keys=[_diagnosis_key(row) for row in revised_here],
                pad_to=config.min_keys + secrets.randbelow(PADDING_JITTER),
            )
            row = tx.fetchone(
                "INSERT INTO exports (name, start_ts, end_ts, key_count, revised_count, created_at, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (name, start, at, len(chunk), len(revised_here), at, data),
            )
            assert row is not None
            self._mark(tx, "export_id", row[0], [r[0] for r in chunk])
            self._mark(tx, "revised_export_id", row[0], [r[0] for r in revised_here])
            report.files.append(name)
            report.keys += len(chunk)
            report.revised_keys += len(revised_here)
        # Keys revised before their first export went out with their new type: nothing left to revise.
        tx.execute(
            "UPDATE exposures SET revised_export_id = export_id "
            "WHERE revised_report_type IS NOT NULL AND revised_export_id IS NULL AND export_id IN "
            "(SELECT id FROM exports WHERE end_ts = ?)",
            (at,),
        )
        tx.execute(
            "INSERT INTO watermarks (name, value) VALUES ('export_end', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (at,),
        )
        return report

    def _mark(self, tx: Transaction, column: str, export_id: int, keys: list[bytes]) -> None:
        if not keys:
            return
        if self.database.postgres:
            tx.execute(f"UPDATE exposures SET {column} = ? WHERE key = ANY(?)", (export_id, keys))
        else:
            tx.executemany(f"UPDATE exposures SET {column} = ? WHERE key = ?", [(export_id, k) for k in keys])

    def _retain(self, tx: Transaction, at: int, report: ExportReport) -> None:
        cutoff = at - self.config.retention_days * SECONDS_PER_DAY
        report.deleted_keys = tx.rowcount(
            "DELETE FROM exposures WHERE (rolling_start + rolling_period) * ? < ?", (ENIN_SECONDS, cutoff)
        )
        report.deleted_files = tx.rowcount("DELETE FROM exports WHERE end_ts < ?", (cutoff,))
        tx.execute("DELETE FROM daily_keys WHERE time_end < ?", (cutoff,))


def export_index(database: Database) -> list[str]:
    """The region's current files, oldest first."""
    with database.transaction(write=False) as tx:
        return [r[0] for r in tx.fetchall("SELECT name FROM exports ORDER BY end_ts, id")]


def export_data(database: Database, name: str) -> bytes | None:
    with database.transaction(write=False) as tx:
        row = tx.fetchone("SELECT data FROM exports WHERE name = ?", (name,))
    return None if row is None else bytes(row[0])
