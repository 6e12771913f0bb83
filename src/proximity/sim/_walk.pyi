"""Typed stub of the optional C walkers' step built from _walk.c (see proximity.sim.mobility)."""

from typing import Any, TypeAlias

import numpy as np
from typing_extensions import Buffer

_In: TypeAlias = Buffer | np.ndarray[Any, Any]  # any C-contiguous buffer

def step(
    t: float,
    walkers: _In,
    pause_until: _In,
    pos: _In,
    start: _In,
    target: _In,
    length: _In,
    need: _In,
    reach: _In,
    moved: _In,
    followers: _In,
    followed: _In,
    leader: _In,
    offset: _In,
    width: float,
    height: float,
    /,
) -> bytearray: ...
def arrive(
    t: float,
    legs: _In,
    u: _In,
    low: float,
    span: float,
    width: float,
    height: float,
    walkers: _In,
    targets: _In,
    pause_until: _In,
    start: _In,
    target: _In,
    length: _In,
    need: _In,
    reach: _In,
    moved: _In,
    /,
) -> None: ...
