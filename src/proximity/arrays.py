"""Small numpy helpers shared by the core.

numpy's stable sort of 16-bit keys is a radix sort (linear time): :func:`stable_order` orders
integers below 2**32 by one or two such passes, several times faster than sorting them as int64.

``np.unique`` without ``return_*`` arguments asks ``np.ma.is_masked`` first, which imports
``numpy.ma`` (~6 ms, more than some whole steps of ``proximity match``) the first time: the hot paths
that only need the distinct values of a plain array use :func:`distinct` instead.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = ["distinct", "stable_order"]

ScalarT = TypeVar("ScalarT", bound=np.generic)


def distinct(values: NDArray[ScalarT]) -> NDArray[ScalarT]:
    """The sorted distinct values of an array, flattened: ``np.unique(values)`` for the integer arrays
    it serves (unlike ``np.unique``, NaNs in a float array are not merged into one)."""
    ordered = np.sort(np.asarray(values).reshape(-1))
    if ordered.size < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def stable_order(values: NDArray[np.integer], bound: int) -> NDArray[np.intp]:
    """``np.argsort(values, kind="stable")`` for integers in ``[0, bound)``: one radix pass of their
    low 16 bits, and a second of the next 16 where ``bound`` exceeds 2**16; over 2**32 the plain sort."""
    if bound > 1 << 32:
        return np.argsort(values, kind="stable")
    order = np.argsort(values.astype(np.uint16), kind="stable")  # the low 16 bits (astype wraps)
    if bound > 1 << 16:
        order = order[np.argsort((values[order] >> 16).astype(np.uint16), kind="stable")]
    return order
