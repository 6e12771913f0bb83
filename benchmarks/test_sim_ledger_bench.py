"""The heard ledger on a city-like stream: 100,000 agents, one-minute chunks of 300,000 sightings of
neighbours (each scanner hears agents close by in number, so pairs recur), forget 15 minutes, hold 30,
an hour. Reported in extra_info: rows added per second over the run, the peak rows held, and the
seconds of the last ten chunks against the first ten (an add and a settlement cost the chunk and the
pairs, not the rows held, so late chunks should cost about what early ones do)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from proximity.sim.ledger import HeardPairs

AGENTS = 100_000
CHUNKS = 60
ROWS = 300_000


def _run() -> tuple[list[float], int, int]:
    rng = np.random.default_rng(17)
    ledger = HeardPairs(AGENTS, forget=900.0, hold=1800.0)
    start = 86400.0 * 18479 + 43200.0
    took, settled = [], 0
    for chunk in range(CHUNKS):
        began = time.perf_counter()
        now = start + 60.0 * chunk
        scanner = rng.integers(0, AGENTS, ROWS)
        other = (scanner + rng.integers(1, 10, ROWS)) % AGENTS
        times = np.sort(now + rng.uniform(0.0, 60.0, ROWS))
        ledger.add(scanner, other, times, rng.integers(-100, -40, ROWS).astype(np.float64))
        settled += sum(piece[2].size for piece in ledger.settle_pieces(now + 60.0))
        took.append(time.perf_counter() - began)
    settled += sum(piece[2].size for piece in ledger.settle_pieces(start + 60.0 * CHUNKS, final=True))
    return took, settled, ledger.peak_rows


def test_heard_ledger_city_hour(benchmark: Any) -> None:
    took, settled, peak = benchmark.pedantic(_run, rounds=1, iterations=1)
    assert settled == CHUNKS * ROWS
    benchmark.extra_info["rows_per_s"] = CHUNKS * ROWS / sum(took)
    benchmark.extra_info["peak_rows"] = peak
    benchmark.extra_info["first_ten_chunks_s"] = sum(took[:10])
    benchmark.extra_info["last_ten_chunks_s"] = sum(took[-10:])
