"""How fast IDs are made: the per-key cost every matcher and simulator pays."""

from __future__ import annotations

from typing import Any

from proximity import BLUEZONE, GAEN, BluezoneDailyKey, TemporaryExposureKey
from proximity.schemes.gaen import derive_rpik

TEK = TemporaryExposureKey(bytes.fromhex("75c734c6dd1a782de7a965da5eb93125"), 2642976)
RECORD = BluezoneDailyKey(bytes(32), 1596844800, 1596844800 + 14 * 86_400)


def test_gaen_hkdf_rpik(benchmark: Any) -> None:
    benchmark(derive_rpik, TEK.key_data)


def test_gaen_all_144_rpis_of_a_key(benchmark: Any) -> None:
    batch = benchmark(GAEN.ids_of_key, TEK)
    assert len(batch) == 144


def test_bluezone_14_day_record_ids(benchmark: Any) -> None:
    batch = benchmark(BLUEZONE.ids_of_key, RECORD)
    assert len(batch) == 14 * 96
