"""proximity.arrays: the distinct values of an array, as np.unique gives them; the stable sort order of
integer codes, as np.argsort gives it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from proximity.arrays import distinct, stable_order


@given(st.lists(st.integers(-5, 5)), st.sampled_from([np.int64, np.float64, np.uint8]))
def test_distinct_is_np_unique(values: list[int], dtype: type[np.generic]) -> None:
    array = np.array(values, dtype=np.int64).astype(dtype)
    got = distinct(array)
    assert got.dtype == array.dtype and got.tolist() == np.unique(array).tolist()


@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.int32, np.uint16])
@pytest.mark.parametrize("high", [2, 300, 70_000, 2**33, 2**62])
def test_stable_order_is_the_stable_argsort(dtype: type[np.integer], high: int) -> None:
    """Codes of any width (one to four 16-bit digits), many ties: the same order, ties in input order."""
    rng = np.random.default_rng(high)
    codes = rng.integers(0, high, 5_000, dtype=np.int64)
    codes = codes[rng.integers(0, 1_000, codes.size)].astype(dtype)  # ties
    assert np.array_equal(stable_order(codes), np.argsort(codes, kind="stable"))


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=40))
def test_stable_order_of_any_int64_is_the_stable_argsort(values: list[int]) -> None:
    codes = np.array(values, dtype=np.int64)
    assert np.array_equal(stable_order(codes), np.argsort(codes, kind="stable"))


def test_stable_order_of_the_largest_uint64() -> None:
    codes = np.array([2**64 - 1, 0, 2**63, 5, 2**64 - 1, 2**48], np.uint64)
    assert stable_order(codes).tolist() == [1, 3, 5, 2, 0, 4]
