"""Fuzz: the encounter log file (a real one, mutated byte-wise) -> open, stats, read every row."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from fuzzing import FUZZ_SETTINGS, guarded, mutated
from hypothesis import given

from proximity.log import EncounterLog
from proximity.sightings import Sighting


def _seed(folder: Path) -> bytes:
    path = folder / "seed.db"
    with EncounterLog(path) as log:
        rng = np.random.default_rng(0)
        log.add_columns(
            "gaen",
            rng.integers(0, 256, (40, 16), dtype=np.uint8),
            1.7e9 + np.arange(40.0),
            -60 - np.arange(40.0),
        )
        log.add(
            [
                Sighting("bluezone", bytes(12), 1.7e9, -70, own_id=bytes(12)),
                Sighting("gaen", bytes(16), 1.7e9, None, bytes(4)),
            ]
        )
        log._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.read_bytes()


def _read(path: Path) -> None:
    with EncounterLog(path, create=False, timeout=1.0) as log:
        log.stats()
        log.observations("gaen")
        log.observations("bluezone")
        for _ in log.iter_sightings():
            pass
        log.exposures()


def test_fuzz_log() -> None:
    with tempfile.TemporaryDirectory() as name, guarded("log-file") as guard:
        folder = Path(name)
        seeds = [_seed(folder)]
        path = folder / "log.db"

        @FUZZ_SETTINGS
        @given(mutated(seeds, max_mutations=4))
        def run(data: bytes) -> None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                if os.path.exists(f"{path}{suffix}"):
                    os.unlink(f"{path}{suffix}")
            path.write_bytes(data)
            guard.call(lambda: _read(path))

        run()
