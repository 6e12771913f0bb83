"""The simulator's phone set-up: every app user's key ring, ID and AEM tables over the run's slots and
published keys, made at once (``KeyRings`` and the schemes' batch methods). The city-1m hour has
299,800 GAEN phones, and every shard of a split run builds all of them; one phone at a time this was
~32 s CPU a shard (issue 17). Reported as phones per second in extra_info."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from proximity.sim.phones import Phones

NOON = 1596628800.0  # 2020-08-05 12:00 UTC, city-1m's start


@pytest.mark.parametrize(("scheme", "phones"), [("gaen", 299_800), ("bluezone", 100_000), ("dp3t", 100_000)])
def test_phones_for_an_hour(benchmark: Any, scheme: str, phones: int) -> None:
    users = np.arange(phones, dtype=np.int64)
    tx = np.random.default_rng(0).integers(-30, -10, phones)  # a few dozen settings, as device models give
    conf = np.random.default_rng(1).integers(0, 4, phones)

    def build() -> tuple[Phones, Any]:
        built = Phones(scheme, users, phones, NOON, NOON + 3600, np.random.default_rng(2), tx, conf)
        return built, built.published_keys(users)

    built, (published, _) = benchmark.pedantic(build, rounds=3, iterations=1)
    assert built.ids.shape[:2] == (phones, 3600 // built.slot_seconds) and len(published) == phones
    benchmark.extra_info["phones_per_s"] = phones / benchmark.stats.stats.min
