"""Small numpy helpers shared by the core.

``np.unique`` without ``return_*`` arguments asks ``np.ma.is_masked`` first, which imports
``numpy.ma`` (~6 ms, more than some whole steps of ``proximity match``) the first time: the hot paths
that only need the distinct values of a plain array use :func:`distinct` instead.

numpy sorts 16-bit integers stably by radix (linear passes) but wider ones by timsort:
:func:`stable_order` sorts non-negative integer codes 16 bits at a time, the same order (a stable
sort's order is unique), 2-3x faster on the hundreds of thousands of rows a simulator chunk or a
log's IDs hold.
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


def stable_order(codes: NDArray[np.integer]) -> NDArray[np.intp]:
    """``np.argsort(codes, kind="stable")`` of a 1-D integer array, by radix where no code is negative."""
    if codes.size < 2 or codes.dtype.itemsize <= 2 or int(codes.min()) < 0:
        return np.argsort(codes, kind="stable")
    wide = codes.astype(np.uint64)
    order = np.argsort(wide.astype(np.uint16), kind="stable")  # astype keeps the low 16 bits
    for shift in range(16, int(codes.max()).bit_length(), 16):
        digit = (wide[order] >> np.uint64(shift)).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
    return order
