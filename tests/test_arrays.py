"""proximity.arrays: the distinct values of an array, as np.unique gives them."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from proximity.arrays import distinct


@given(st.lists(st.integers(-5, 5)), st.sampled_from([np.int64, np.float64, np.uint8]))
def test_distinct_is_np_unique(values: list[int], dtype: type[np.generic]) -> None:
    array = np.array(values, dtype=np.int64).astype(dtype)
    got = distinct(array)
    assert got.dtype == array.dtype and got.tolist() == np.unique(array).tolist()
