"""Typed stub of the optional C neighbour searches built from _pairs.c (see proximity.sim.neighbours)."""

from typing import Any, TypeAlias

import numpy as np
from typing_extensions import Buffer

_In: TypeAlias = Buffer | np.ndarray[Any, Any]  # any C-contiguous buffer

def close_pairs(
    points: _In, low_x: float, low_y: float, side: float, radius2: float, layer: _In, layers: int, /
) -> tuple[bytearray, bytearray, bytearray]: ...
def near(
    a: _In,
    origin_x: float,
    origin_y: float,
    side: float,
    radius2: float,
    rows: int,
    starts: _In,
    order: _In,
    x: _In,
    y: _In,
    /,
) -> tuple[bytearray, bytearray, bytearray]: ...
def movers(
    a: _In,
    ids: _In,
    origin_x: float,
    origin_y: float,
    side: float,
    radius2: float,
    rows: int,
    starts: _In,
    agents: _In,
    x: _In,
    y: _In,
    present: _In,
    owned: _In,
    low_x: float,
    low_y: float,
    cell: float,
    /,
) -> tuple[bytearray, bytearray, bytearray]: ...
