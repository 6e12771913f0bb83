"""The encounter log survives a writer killed mid-ingest, and readers run beside a writer."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from proximity.log import EncounterLog

BATCH = 2_000

# The writer reports a batch number on stdout only after that batch's transaction committed.
WRITER = """
import sys
import numpy as np
from proximity.log import EncounterLog

path, run, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(run)
log = EncounterLog(path)
for i in range(1_000_000):
    number = run * 1_000_000 + i
    ids = rng.integers(0, 256, (batch, 16), dtype=np.uint8)
    times = 1.6e9 + number + np.arange(batch) / batch
    rssi = rng.integers(-100, -40, batch).astype(float)
    log.add_columns("gaen", ids, times, rssi, address=[str(number)] * batch)
    print(number, flush=True)
"""


def _start_writer(script: Path, db: Path, run: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), str(db), str(run), str(BATCH)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_mid_ingest_loses_no_committed_batch(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db = tmp_path / "log.db"
    reported: set[int] = set()
    chooser = random.Random(4)
    for run in range(20):
        writer = _start_writer(script, db, run)
        assert writer.stdout is not None
        first = writer.stdout.readline()  # the writer is now ingesting
        assert first, writer.stderr.read() if writer.stderr else "writer died"
        time.sleep(chooser.uniform(0.0, 0.12))
        os.kill(writer.pid, signal.SIGKILL)
        out, _ = writer.communicate()
        assert writer.returncode == -signal.SIGKILL
        lines = (first + out).split("\n")
        reported.update(int(line) for line in lines[:-1])  # the last piece may be a torn line
    with EncounterLog(db, create=False) as log:
        assert log.integrity_check() == "ok"
        counts = dict(log._db.execute("SELECT address, count(*) FROM sightings GROUP BY address").fetchall())
    stored = {int(address): n for address, n in counts.items()}
    assert reported <= set(stored), f"lost committed batches: {sorted(reported - set(stored))[:5]}"
    assert set(stored.values()) == {BATCH}, "a batch was stored in part"
    assert len(reported) >= 20


def test_readers_beside_a_writer_never_see_database_locked(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db = tmp_path / "log.db"
    EncounterLog(db).close()
    writer = _start_writer(script, db, 1)
    try:
        assert writer.stdout is not None
        writer.stdout.readline()
        seen = []
        deadline = time.monotonic() + 2.0
        with EncounterLog(db) as reader:
            while time.monotonic() < deadline:
                seen.append(len(reader.observations("gaen")))
                assert reader.stats().sightings % BATCH == 0  # a reader sees whole batches only
        assert seen == sorted(seen) and seen[-1] > seen[0]
        # a second writer waits for the lock instead of failing
        with EncounterLog(db) as other:
            assert other.add_columns("bluezone", [bytes(12)], [1.7e9], [-60.0]).written == 1
    finally:
        writer.kill()
        writer.communicate()
