"""DP-3T day keys and EphIDs against the reference implementation's values, and the broadcast order."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from conftest import load_vectors
from proximity.errors import InvalidKeyError, InvalidLengthError, NoKeyForTimeError
from proximity.schemes.dp3t import (
    DP3T,
    EPHIDS_PER_DAY,
    EPOCH_SECONDS,
    Dp3tDayKey,
    broadcast_order,
    ephids_for_day,
    next_day_key,
)

VECTORS: dict[str, Any] = load_vectors("dp3t-vectors.json")
SK0 = bytes.fromhex(VECTORS["sk0"])
SK1 = bytes.fromhex(VECTORS["sk1"])
DAY = 1_596_240_000  # 2020-08-01T00:00:00Z


def test_day_key_chain() -> None:
    assert next_day_key(SK0) == SK1
    assert Dp3tDayKey(SK0, DAY).on_day(DAY + 86_400 + 5) == Dp3tDayKey(SK1, DAY + 86_400)


@pytest.mark.parametrize(("index", "ephid"), sorted(VECTORS["ephids_of_sk1"].items()))
def test_ephid_vectors(index: str, ephid: str) -> None:
    assert ephids_for_day(SK1)[int(index)].tobytes().hex() == ephid


def _order_by_ecb(day_key: bytes) -> list[int]:
    """A second rendering of the order: AES-256-ECB over explicit big-endian counter blocks."""
    order_key = hmac.new(day_key, b"broadcast order", hashlib.sha256).digest()
    counters = b"".join(i.to_bytes(16, "big") for i in range(EPHIDS_PER_DAY * 8 // 16))
    stream = Cipher(algorithms.AES(order_key), modes.ECB()).encryptor().update(counters)
    sort_keys = [int.from_bytes(stream[8 * i : 8 * i + 8], "big") for i in range(EPHIDS_PER_DAY)]
    return sorted(range(EPHIDS_PER_DAY), key=lambda i: (sort_keys[i], i))


def test_broadcast_order_is_a_keyed_permutation() -> None:
    order = broadcast_order(SK1)
    assert sorted(order.tolist()) == list(range(EPHIDS_PER_DAY))
    assert order.tolist() == _order_by_ecb(SK1)
    assert order.tolist() != list(range(EPHIDS_PER_DAY))
    assert order.tolist() != broadcast_order(SK0).tolist()


def test_ids_of_key_and_id_at_agree() -> None:
    key = Dp3tDayKey(SK1, DAY)
    batch = DP3T.ids_of_key(key)
    assert len(batch) == EPHIDS_PER_DAY and batch.id_length == 16
    assert sorted(map(bytes, batch.ids)) == sorted(map(bytes, ephids_for_day(SK1)))
    for epoch in (0, 1, 47, 95):
        at = DAY + epoch * EPOCH_SECONDS + 450
        got = DP3T.id_at(key, at)
        assert got.value == batch.ids[epoch].tobytes()
        assert (got.start, got.end) == (int(batch.starts[epoch]), int(batch.ends[epoch]))
    # an older key chains forward to the day asked for
    assert DP3T.id_at(Dp3tDayKey(SK0, DAY - 86_400), DAY + 450).value == batch.ids[0].tobytes()


def test_refusals() -> None:
    with pytest.raises(InvalidLengthError):
        Dp3tDayKey(SK1[:31], DAY)
    with pytest.raises(InvalidKeyError, match="UTC midnight"):
        Dp3tDayKey(SK1, DAY + 1)
    with pytest.raises(InvalidKeyError, match="must be an int"):
        Dp3tDayKey(SK1, float(DAY))  # type: ignore[arg-type]
    with pytest.raises(NoKeyForTimeError):
        DP3T.id_at(Dp3tDayKey(SK1, DAY), DAY - 1)
    with pytest.raises(TypeError):
        ephids_for_day("00" * 32)  # type: ignore[arg-type]


def test_generate_uses_the_given_randomness() -> None:
    key = Dp3tDayKey.generate(DAY + 3_600, random_bytes=lambda n: bytes(range(n)))
    assert key == Dp3tDayKey(bytes(range(32)), DAY)
    assert "key=<32 bytes>" in repr(key) and bytes(range(32)).hex() not in repr(key)
    assert np.array_equal(DP3T.ids_of_key(key).starts[:2], [DAY, DAY + EPOCH_SECONDS])
