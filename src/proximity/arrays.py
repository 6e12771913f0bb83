"""Small numpy helpers shared by the core.

``np.unique`` without ``return_*`` arguments asks ``np.ma.is_masked`` first, which imports
``numpy.ma`` (~6 ms, more than some whole steps of ``proximity match``) the first time: the hot paths
that only need the distinct values of a plain array use :func:`distinct` instead.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = ["distinct"]

ScalarT = TypeVar("ScalarT", bound=np.generic)


def distinct(values: NDArray[ScalarT]) -> NDArray[ScalarT]:
    """The sorted distinct values of an array, flattened: ``np.unique(values)`` for the integer arrays
    it serves (unlike ``np.unique``, NaNs in a float array are not merged into one)."""
    ordered = np.sort(np.asarray(values).reshape(-1))
    if ordered.size < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
