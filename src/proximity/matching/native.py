"""The C matching backend, and the choice between it and the pure Python path.

The extension ``proximity.matching._native`` (built from ``_native.c`` when a C compiler is there) runs
the per-key loops: HKDF, 144 AES-NI encryptions and the index probe per GAEN key, the SHA-256 chains
per Bluezone record. It is used when it imports, the CPU has AES-NI, and it reproduces an official
GAEN vector; otherwise the Python path runs, with the same results.

One environment variable chooses the crypto for the whole process, ``PROXIMITY_MATCH_BACKEND`` =
``auto`` (default: C if it runs here, else Python with libcrypto's AES if it loads, else the portable
AES) | ``c`` | ``python`` (Python path, fastest AES) | ``libcrypto`` | ``portable`` (Python path with
that AES backend, :mod:`proximity.matching.aes`). Matchers also take ``backend=`` ("c" or "python").
Asking for ``c`` where it cannot run raises
:class:`~proximity.errors.BackendUnavailableError` rather than silently running something else.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from proximity.errors import BackendUnavailableError

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "bluezone_ids",
    "gaen_probe",
    "gaen_rpis",
    "hkdf16",
    "native_module",
    "probe",
    "resolve_backend",
    "unavailable_reason",
]


class ObservedIdIndex(Protocol):
    """The fields of :class:`proximity.matching.index.ObservedIdIndex` the C probe reads (a protocol, so
    this module does not import the index, which imports it)."""

    @property
    def id_length(self) -> int: ...
    @property
    def keys(self) -> NDArray[np.uint64]: ...
    @property
    def unique_ids(self) -> NDArray[np.uint8]: ...
    @property
    def packed_bitmap(self) -> NDArray[np.uint8]: ...
    @property
    def packed_bitmap2(self) -> NDArray[np.uint8]: ...
    @property
    def prefix_bits(self) -> int: ...


BACKENDS = ("c", "python")
PYTHON_CHOICES = ("python", "libcrypto", "portable")  # the Python path; the last two also pick its AES
ENV_VAR = "PROXIMITY_MATCH_BACKEND"
PERIOD = 144

# Official GAEN vector set 0 (google/exposure-notifications-internals TestVectors): the self test.
_TEK = bytes.fromhex("75c734c6dd1a782de7a965da5eb93125")
_RPIK = bytes.fromhex("185ad91db69ec7dd048960f1f3ba6175")
_START = 2642976
_RPI_0 = bytes.fromhex("8be6cd371c5c891604bfbe49df845096")
_RPI_143 = bytes.fromhex("f431b62ecf443102ce4ed0407de54bd4")

_checked: tuple[ModuleType | None, str | None] | None = None


def _load() -> tuple[ModuleType | None, str | None]:
    try:
        from proximity.matching import _native
    except ImportError as error:
        return None, f"the C extension is not built ({error})"
    if not _native.features()["aesni"]:
        return None, "this CPU has no AES-NI"
    rpik = bytearray(16)
    _native.hkdf16(_TEK, b"EN-RPIK", rpik)
    rpis = bytearray(PERIOD * 16)
    _native.gaen_rpis(_TEK, np.array([_START], np.uint32), rpis)
    if bytes(rpik) != _RPIK or rpis[:16] != _RPI_0 or rpis[-16:] != _RPI_143:
        return None, "the C extension failed its self test on the official GAEN vector"
    return _native, None


def _status() -> tuple[ModuleType | None, str | None]:
    global _checked
    if _checked is None:
        _checked = _load()
    return _checked


def native_module() -> ModuleType | None:
    """The extension if it is usable here, else None."""
    return _status()[0]


def unavailable_reason() -> str | None:
    """Why the C backend cannot run here (None when it can)."""
    return _status()[1]


def resolve_backend(backend: str | None = None) -> str:
    """``"c"`` or ``"python"``: ``backend`` if given, else ``PROXIMITY_MATCH_BACKEND``, else automatic."""
    choice = (backend if backend is not None else os.environ.get(ENV_VAR, "")).strip().lower() or "auto"
    if choice == "auto":
        return "c" if native_module() is not None else "python"
    if choice in PYTHON_CHOICES:
        return "python"
    if choice == "c":
        reason = unavailable_reason()
        if reason is not None:
            raise BackendUnavailableError("c", reason)
        return "c"
    raise ValueError(f"matching backend must be one of c, python, libcrypto, portable, auto; got {choice!r}")


def _module() -> ModuleType:
    module = native_module()
    if module is None:
        raise BackendUnavailableError("c", unavailable_reason() or "unknown")
    return module


def hkdf16(key_data: NDArray[np.uint8], info: bytes) -> NDArray[np.uint8]:
    """HKDF-SHA256 (zero salt, ``info``, L = 16) of every row of an (n, 16) uint8 array."""
    keys = np.ascontiguousarray(key_data, dtype=np.uint8)
    out = np.empty_like(keys)
    _module().hkdf16(keys, info, out)
    return out


def gaen_rpis(key_data: NDArray[np.uint8], starts: NDArray[np.int64]) -> NDArray[np.uint8]:
    """The 144 RPIs of every TEK from its start interval, as (n, 144, 16)."""
    keys = np.ascontiguousarray(key_data, dtype=np.uint8)
    out = np.empty((keys.shape[0], PERIOD, 16), dtype=np.uint8)
    _module().gaen_rpis(keys, np.ascontiguousarray(starts, dtype=np.uint32), out)
    return out


def _index_args(index: ObservedIdIndex) -> tuple[NDArray[np.uint64], NDArray[np.uint8], object, object, int]:
    return index.keys, index.unique_ids, index.packed_bitmap, index.packed_bitmap2, index.prefix_bits


def probe(
    index: ObservedIdIndex, candidates: NDArray[np.uint8]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """:meth:`ObservedIdIndex.find` in C: positions of the observed candidates and their unique index."""
    cands = np.ascontiguousarray(candidates, dtype=np.uint8)
    n = int(cands.shape[0])
    pos = np.empty(n, dtype=np.int64)
    uniq = np.empty(n, dtype=np.int64)
    keys, ids, bitmap, bitmap2, bits = _index_args(index)
    found = _module().probe(cands, index.id_length, keys, ids, bitmap, bitmap2, bits, pos, uniq)
    return pos[:found].copy(), uniq[:found].copy()


def gaen_probe(
    index: ObservedIdIndex,
    key_data: NDArray[np.uint8],
    starts: NDArray[np.int64],
    periods: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Derive each key's first ``periods[i]`` RPIs and probe the (16-byte) index with them, all in C.

    Returns (``key * 144 + interval offset`` of every observed RPI, its unique-ID index), the same as
    deriving the RPIs, probing with :meth:`ObservedIdIndex.find` and dropping offsets past the period.
    """
    keys_in = np.ascontiguousarray(key_data, dtype=np.uint8)
    n = int(keys_in.shape[0])
    pos = np.empty(n * PERIOD, dtype=np.int64)
    uniq = np.empty(n * PERIOD, dtype=np.int64)
    keys, ids, bitmap, bitmap2, bits = _index_args(index)
    found = _module().gaen_probe(
        keys_in,
        np.ascontiguousarray(starts, dtype=np.uint32),
        np.ascontiguousarray(periods, dtype=np.uint8),
        keys,
        ids,
        bitmap,
        bitmap2,
        bits,
        pos,
        uniq,
    )
    return pos[:found].copy(), uniq[:found].copy()


def bluezone_ids(daily_keys: list[bytes], count: int, ids_per_day: int, salt: bytes) -> NDArray[np.uint8]:
    """The first ``count`` IDs of records with these (equal-length) daily keys, as (n, count, 12)."""
    n = len(daily_keys)
    length = len(daily_keys[0]) if n else 32
    out = np.empty((n, count, 12), dtype=np.uint8)
    _module().bluezone_ids(b"".join(daily_keys), length, salt, count, ids_per_day, out)
    return out
