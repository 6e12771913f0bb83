"""The simulator's optional C kernel (sim/_kernel.c: packets, the 5 s rule's pass), neighbour searches
(sim/_pairs.c) and walkers' step (sim/_walk.c), or None where they were not built (setup.py builds them
where a compiler is available; the numpy references run instead)."""

from __future__ import annotations

from types import ModuleType

__all__ = ["kernel", "native_kernel", "pairs", "walk"]

kernel: ModuleType | None
try:
    from proximity.sim import _kernel as kernel
except ImportError:  # pragma: no cover - no compiler at install time
    kernel = None

pairs: ModuleType | None
try:
    from proximity.sim import _pairs as pairs
except ImportError:  # pragma: no cover - no compiler at install time
    pairs = None

walk: ModuleType | None
try:
    from proximity.sim import _walk as walk
except ImportError:  # pragma: no cover - no compiler at install time
    walk = None


def native_kernel() -> bool:
    """Whether the C kernel was built (else every world runs the numpy reference)."""
    return kernel is not None
