"""Typed stub of the optional C packet kernel built from _kernel.c (see proximity.sim.world)."""

from typing import Any, TypeAlias

import numpy as np
from typing_extensions import Buffer

_In: TypeAlias = Buffer | np.ndarray[Any, Any]  # any C-contiguous buffer

def packets(
    positions: _In,
    scan: _In,
    adv: _In,
    n: int,
    first: int,
    reach_tx: _In,
    reach_rx: _In,
    grid: _In,
    table: _In,
    device_tx: _In,
    device_rx: _In,
    enter: _In,
    carriage: _In,
    hours: int,
    carriage_loss: _In,
    params: _In,
    keys: _In,
    present: _In,
    /,
) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes, bytes]: ...
def keep_spaced(group: _In, times: _In, thresholds: _In, every: float, /) -> tuple[bytes, bytes]: ...
