"""The simulator's optional C kernel (sim/_kernel.c: packets, the 5 s rule's pass), or None where it
was not built (setup.py builds it where a compiler is available; the numpy references run instead)."""

from __future__ import annotations

from types import ModuleType

__all__ = ["kernel", "native_kernel"]

kernel: ModuleType | None
try:
    from proximity.sim import _kernel as kernel
except ImportError:  # pragma: no cover - no compiler at install time
    kernel = None


def native_kernel() -> bool:
    """Whether the C kernel was built (else every world runs the numpy reference)."""
    return kernel is not None
