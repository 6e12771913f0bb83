"""SIGKILL of the server mid-publish and of the export worker mid-pass: no accepted upload is lost and
no half-made file is ever listed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from keyserver_harness import (
    ISSUER,
    backends,
    cli,
    count_rows,
    get,
    make_keys,
    new_database,
    running_server,
    storage_args,
)
from proximity.errors import KeyServerError
from proximity.keyfiles.gaen_export import TrustedKey, parse_export_zip
from proximity.schemes.gaen import TemporaryExposureKey
from proximity.server.client import gaen_publish_request, gaen_segments, post_json
from proximity.server.db import open_database
from proximity.server.exporter import EXPORT_LOCK
from proximity.times import SECONDS_PER_DAY, now


@pytest.mark.parametrize("backend", backends())
def test_sigkill_server_loses_no_acknowledged_upload(backend: str, tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    db = new_database(backend, tmp_path)
    acknowledged: list[bytes] = []
    lock = threading.Lock()
    enough = threading.Event()
    start = TemporaryExposureKey.generate(now() - SECONDS_PER_DAY).rolling_start_interval_number

    with running_server(db, keys) as server:

        def client() -> None:
            while True:
                tek = TemporaryExposureKey(os.urandom(16), start)
                certificate, hmac_key = keys.certificate(gaen_segments([tek]))
                document = gaen_publish_request(
                    [tek], certificate=certificate, hmac_key=hmac_key, authority=ISSUER
                )
                try:
                    status, _ = post_json(server.url + "/v1/publish", document, timeout=30)
                except KeyServerError:
                    return  # the server is gone
                if status == 200:
                    with lock:
                        acknowledged.append(tek.key_data)
                        if len(acknowledged) >= 60:
                            enough.set()

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        assert enough.wait(timeout=300)
        server.kill()  # SIGKILL while the clients are still uploading
        for thread in threads:
            thread.join(timeout=120)

    database = open_database(db)
    with database.transaction(write=False) as tx:
        stored = {bytes(r[0]) for r in tx.fetchall("SELECT key FROM exposures")}
    database.close()
    assert set(acknowledged) <= stored and len(acknowledged) >= 60
    with running_server(db, keys) as again:  # after the crash: every acknowledged key gets published
        subprocess.run(cli("serve-export", *storage_args(db, keys)), capture_output=True, check=True)
        trusted = [TrustedKey.from_pem(keys.signing_public.read_bytes())]
        published: set[bytes] = set()
        for name in get(again.url + "/v1/index.txt").decode().split():
            export = parse_export_zip(get(f"{again.url}/v1/exports/{name}"), trusted)
            published |= {bytes(k) for k in export.keys.key_data}
    assert set(acknowledged) <= published
    print(
        f"\nSIGKILL server ({backend}): {len(acknowledged)} uploads acknowledged, "
        f"{len(stored)} stored, all published"
    )


def _export_running(db: str, backend: str) -> bool:
    """True while an export pass holds its lock (SQLite's write lock; the PostgreSQL advisory lock)."""
    if backend == "sqlite":
        connection = sqlite3.connect(db, timeout=0, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            connection.close()
    database = open_database(db, pool_size=1)
    try:
        with database.transaction(write=False) as tx:
            row = tx.fetchone(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = ?", (EXPORT_LOCK,)
            )
    finally:
        database.close()
    return bool(row and row[0])


@pytest.mark.parametrize("backend", backends())
def test_sigkill_export_worker_lists_no_half_file(backend: str, tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    db = new_database(backend, tmp_path)
    database = open_database(db)
    day = TemporaryExposureKey.generate(now() - 2 * SECONDS_PER_DAY).rolling_start_interval_number
    total = 120_000
    rows = [(os.urandom(16), day, 144, 2, 1, 0, ISSUER, int(now()), int(now())) for _ in range(total)]
    with database.transaction() as tx:
        tx.executemany(
            "INSERT INTO exposures (key, rolling_start, rolling_period, transmission_risk, report_type, "
            "traveler, health_authority, created_at, available_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    database.close()

    worker = subprocess.Popen(cli("serve-export", *storage_args(db, keys)), stdout=subprocess.DEVNULL)
    # Mid-pass: the lock seen held on 10 polls in a row (the start-up migration holds it for only ms).
    deadline = time.monotonic() + 300
    held = 0
    while held < 10:
        held = held + 1 if _export_running(db, backend) else 0
        assert worker.poll() is None, "the export pass ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=60)

    assert count_rows(db, "exports") == 0
    database = open_database(db)
    with database.transaction(write=False) as tx:
        pending = tx.fetchone("SELECT COUNT(*) FROM exposures WHERE export_id IS NULL")
    database.close()
    assert pending == (total,)
    done = subprocess.run(cli("serve-export", *storage_args(db, keys)), capture_output=True, check=True)
    assert b"exported 120000 keys" in done.stdout
    assert count_rows(db, "exports") == 1
    print(
        f"\nSIGKILL export worker ({backend}) mid-pass: 0 files listed, "
        f"{pending[0]} keys still pending; rerun: 1 file"
    )
