"""How many steps the neighbour search takes at once: read by the world (to batch) and by the scenario
(to estimate a run's memory before it starts), so it lives below both."""

from __future__ import annotations

__all__ = ["BATCH_POINTS", "BATCH_STEPS"]

BATCH_STEPS = 32  # steps searched for neighbours together (numpy call overhead amortised) ...
BATCH_POINTS = 64_000  # ... while that many agent positions fit in one search (a city searches one step)
