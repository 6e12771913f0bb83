"""Named, independent random streams owned by one run (mesa/starsim habit).

Each component asks for its stream by name; the stream's seed is derived from the run seed and a
hash of the name (numpy SeedSequence spawn keys), so adding a component or drawing more in one never
changes another's draws. Same seed, same results.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Streams", "hash_normal", "hash_uniform", "normal_quantile"]


def _name_key(name: str) -> tuple[int, ...]:
    digest = hashlib.sha256(name.encode()).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


class Streams:
    """``streams("mobility")`` is the same Generator every time it is asked for, within one run."""

    def __init__(self, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed
        self._streams: dict[str, np.random.Generator] = {}

    def __call__(self, name: str) -> np.random.Generator:
        stream = self._streams.get(name)
        if stream is None:
            sequence = np.random.SeedSequence(self.seed, spawn_key=_name_key(name))
            stream = self._streams[name] = np.random.Generator(np.random.PCG64(sequence))
        return stream

    def key(self, name: str) -> np.uint64:
        """A 64-bit key for counter-based draws (:func:`hash_uniform`) of component ``name``."""
        sequence = np.random.SeedSequence(self.seed, spawn_key=_name_key(name))
        return np.uint64(int(sequence.generate_state(1, np.uint64)[0]))


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64's finaliser, vectorised (uint64 arithmetic wraps)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    out: NDArray[np.uint64] = x ^ (x >> np.uint64(31))
    return out


def hash_uniform(key: np.uint64, *counters: NDArray[np.integer[Any]]) -> NDArray[np.float64]:
    """Uniform(0, 1) draws that depend only on (key, counters): a value per pair without storing pairs."""
    with np.errstate(over="ignore"):
        x = np.full(np.broadcast_shapes(*(c.shape for c in counters)), key, dtype=np.uint64)
        for counter in counters:
            x = _mix(x ^ (counter.astype(np.uint64) + _GOLDEN))
    out: NDArray[np.float64] = ((x >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)
    return out


def hash_normal(key: np.uint64, *counters: NDArray[np.integer[Any]]) -> NDArray[np.float64]:
    """Standard normal draws from (key, counters): one hashed uniform through :func:`normal_quantile`."""
    return normal_quantile(hash_uniform(key, *counters))


# Acklam's rational approximation of the standard normal quantile (within 6.4e-6 of scipy's ndtri,
# tests/test_sim_kernel.py: at the joins of its tails, far below a dB); the C
# packet kernel (sim/_kernel.c) evaluates the same expressions in the same order.
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
      -3.066479806614716e01, 2.506628277459239e00)  # fmt: skip
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
      -1.328068155288572e01)  # fmt: skip
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549671010243111e00,
      4.374664141464968e00, 2.938163982698783e00)  # fmt: skip
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_P_LOW = 0.02425


def normal_quantile(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """The standard normal quantile of each ``p`` in (0, 1) (Acklam's approximation): one hashed uniform
    makes one normal draw, and a conditional draw (the tail past a threshold) is one more quantile."""
    p = np.asarray(p, np.float64)
    out = np.empty(p.shape, np.float64)
    central = (p >= _P_LOW) & (p <= 1.0 - _P_LOW)
    q = p[central] - 0.5
    r = q * q
    a, b = _A, _B
    out[central] = ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (
        ((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0
    )
    low = p < _P_LOW
    high = p > 1.0 - _P_LOW
    for mask, sign, tail in ((low, 1.0, p[low]), (high, -1.0, 1.0 - p[high])):
        t = np.sqrt(-2.0 * np.log(tail))
        c, d = _C, _D
        out[mask] = sign * (
            (((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5])
            / ((((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1.0)
        )
    return out
