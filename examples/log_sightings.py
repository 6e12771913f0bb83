"""Keep sightings in the SQLite encounter log, read them back for the matcher, prune old ones."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from proximity import Sighting
from proximity.errors import InvalidBatchError
from proximity.log import EncounterLog

T0 = 1_596_844_800.0  # 2020-08-08T00:00:00Z

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "encounters.db"
    with EncounterLog(path) as log:
        # One by one, as a scanner hears them (Bluezone keeps one row per ID every 5 s).
        heard = [Sighting("bluezone", b"\x3a" * 12, T0 + t, -70 - t % 7) for t in range(0, 60, 2)]
        print("bluezone:", log.add(heard, dedup_seconds=5))
        # Column-wise, as a replay or a simulator produces them: the fast path.
        rng = np.random.default_rng(1)
        n = 100_000
        ids = rng.integers(0, 256, (n, 16), dtype=np.uint8)
        times = T0 + np.sort(rng.uniform(0, 20 * 86_400, n))
        rssi = rng.integers(-100, -40, n).astype(float)
        print("gaen:", log.add_columns("gaen", ids, times, rssi).written, "rows")
        # A bad row is refused with its position; nothing of its batch is written.
        try:
            log.add_columns("gaen", [bytes(16), b"short"], [T0, T0], [-60.0, -61.0])
        except InvalidBatchError as error:
            print("refused:", error)
        stats = log.stats()
        print(f"{stats.sightings} sightings, {stats.distinct_ids} distinct IDs")
        observed = log.observations("gaen", since=T0 + 19 * 86_400)
        print(f"last day for the matcher: {len(observed)} sightings, ids {observed.ids.shape}")
        pruned = log.prune(days=14, now=T0 + 20 * 86_400)  # relative to a given now: replays stay safe
        print(f"pruned {pruned.sightings} sightings older than 14 days")
