"""The C crypto backend: :mod:`proximity.crypto._native` (built from ``_native.c`` by setup.py) behind
the :class:`~proximity.crypto.backend.CryptoBackend` protocol.

It is usable when the extension imports, the CPU has AES-NI, and it reproduces published vectors (GAEN
set 0's RPIK and RPIs, FIPS-197's AES-256 example, RFC 4231's HMAC case 2); otherwise
:func:`unavailable_reason` says why and ``auto`` runs the reference backend instead.

A big batch (hundreds of keys) is split over :func:`crypto_threads` threads inside the one call, each
part on its own keys, so results are byte-identical whatever the count; ``PROXIMITY_CRYPTO_THREADS``
sets it (default: the CPUs this process may run on).
"""

from __future__ import annotations

import os
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from proximity.crypto.backend import IdIndex, Probed, ecb_then_probe
from proximity.errors import BackendUnavailableError

__all__ = ["THREADS_VAR", "NativeBackend", "crypto_threads", "native_module", "unavailable_reason"]

THREADS_VAR = "PROXIMITY_CRYPTO_THREADS"

_ALL_BYTES = bytes(range(32))
_checked: tuple[ModuleType | None, str | None] | None = None


def _self_test(module: ModuleType) -> bool:
    """Published answers: GAEN vector set 0 (RPIK, first RPI), FIPS-197 C.3, RFC 4231 case 2."""
    rpik = bytearray(16)
    module.hkdf_sha256(bytes.fromhex("75c734c6dd1a782de7a965da5eb93125"), 16, b"EN-RPIK", 16, rpik)
    rpi = bytearray(16)
    block = b"EN-RPI" + bytes(6) + (2642976).to_bytes(4, "little")
    module.aes_ecb(rpik, 16, block, 1, np.zeros(1, np.int64), rpi)
    aes256 = bytearray(16)
    module.aes_ecb(
        _ALL_BYTES, 32, bytes.fromhex("00112233445566778899aabbccddeeff"), 1, np.zeros(1, np.int64), aes256
    )
    mac = bytearray(32)
    module.hmac_sha256(b"Jefe", 4, b"what do ya want for nothing?", mac)
    return (
        rpik.hex() == "185ad91db69ec7dd048960f1f3ba6175"
        and rpi.hex() == "8be6cd371c5c891604bfbe49df845096"
        and aes256.hex() == "8ea2b7ca516745bfeafc49904b496089"
        and mac.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def _load() -> tuple[ModuleType | None, str | None]:
    try:
        from proximity.crypto import _native
    except ImportError as error:
        return None, f"the C extension is not built ({error})"
    if not _native.features()["aesni"]:
        return None, "this CPU has no AES-NI"
    if not _self_test(_native):
        return None, "the C extension failed its self test on published vectors"
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


def crypto_threads() -> int:
    """How many threads one big batch may use: ``PROXIMITY_CRYPTO_THREADS``, else the CPUs this process
    may run on (its affinity mask, not the machine's count)."""
    setting = os.environ.get(THREADS_VAR, "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ValueError(f"{THREADS_VAR} must be a positive whole number, got {setting!r}")
        return int(setting)
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def _u8(array: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return np.ascontiguousarray(array, dtype=np.uint8)


def _aes_keys(keys: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], int]:
    keys = _u8(keys)
    if keys.ndim != 2 or keys.shape[1] not in (16, 32):
        raise ValueError(f"keys must be an (n, 16) or (n, 32) uint8 array, got {keys.shape}")
    return keys, int(keys.shape[1])


def _rows_for(n: int, blocks: NDArray[np.uint8], rows: NDArray[np.intp] | None) -> NDArray[np.int64]:
    if blocks.ndim != 3 or blocks.shape[2] != 16:
        raise ValueError(f"blocks must be a (u, b, 16) uint8 array, got {blocks.shape}")
    if rows is None:
        if blocks.shape[0] != n:
            raise ValueError(f"without rows, blocks must hold one row per key ({n}), got {blocks.shape[0]}")
        return np.arange(n, dtype=np.int64)
    return np.ascontiguousarray(rows, dtype=np.int64)


def _index_args(index: IdIndex) -> tuple[object, ...]:
    return (
        index.keys,
        index.unique_ids,
        index.packed_bitmap,
        index.packed_bitmap2,
        index.slices,
        index.prefix_bits,
    )


class NativeBackend:
    """The :class:`~proximity.crypto.backend.CryptoBackend` in C; every loop runs without the GIL, a big
    batch over ``threads`` threads (default :func:`crypto_threads`)."""

    name = "c"

    def __init__(self, threads: int | None = None) -> None:
        module = native_module()
        if module is None:
            raise BackendUnavailableError("c", unavailable_reason() or "unknown")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        self._c = module
        self.threads = crypto_threads() if threads is None else threads

    def __reduce__(self) -> tuple[type[NativeBackend], tuple[int]]:
        return NativeBackend, (self.threads,)  # a worker process loads the extension afresh

    def sha256(self, rows: NDArray[np.uint8]) -> NDArray[np.uint8]:
        rows = _u8(rows)
        out = np.empty((rows.shape[0], 32), np.uint8)
        self._c.sha256_rows(rows, int(rows.shape[1]), out, self.threads)
        return out

    def sha256_chain(
        self, seeds: NDArray[np.uint8], length: int, select: NDArray[np.intp] | None = None
    ) -> NDArray[np.uint8]:
        seeds = _u8(seeds)
        chosen = _ALL_BYTES if select is None else np.asarray(select, np.uint8).tobytes()
        out = np.empty((seeds.shape[0], length, len(chosen)), np.uint8)
        self._c.sha256_chain(seeds, length, chosen, out, self.threads)
        return out

    def hmac_sha256(self, keys: NDArray[np.uint8], message: bytes) -> NDArray[np.uint8]:
        keys = _u8(keys)
        out = np.empty((keys.shape[0], 32), np.uint8)
        self._c.hmac_sha256(keys, int(keys.shape[1]), message, out, self.threads)
        return out

    def hkdf_sha256(self, ikm: NDArray[np.uint8], info: bytes, length: int) -> NDArray[np.uint8]:
        ikm = _u8(ikm)
        out = np.empty((ikm.shape[0], length), np.uint8)
        self._c.hkdf_sha256(ikm, int(ikm.shape[1]), info, length, out, self.threads)
        return out

    def aes_ecb(
        self, keys: NDArray[np.uint8], blocks: NDArray[np.uint8], rows: NDArray[np.intp] | None = None
    ) -> NDArray[np.uint8]:
        keys, width = _aes_keys(keys)
        row_index = _rows_for(int(keys.shape[0]), blocks, rows)
        per = int(blocks.shape[1])
        out = np.empty((keys.shape[0], per, 16), np.uint8)
        if per and keys.shape[0]:
            self._c.aes_ecb(keys, width, _u8(blocks), per, row_index, out, self.threads)
        return out

    def aes_ctr(self, keys: NDArray[np.uint8], counters: NDArray[np.uint8], length: int) -> NDArray[np.uint8]:
        keys, width = _aes_keys(keys)
        out = np.empty((keys.shape[0], length), np.uint8)
        self._c.aes_ctr(keys, width, _u8(counters), length, out, self.threads)
        return out

    def probe(self, index: IdIndex, candidates: NDArray[np.uint8]) -> Probed:
        cands = _u8(candidates)
        n = int(cands.shape[0])
        pos, uniq = np.empty(n, np.int64), np.empty(n, np.int64)
        found = self._c.probe(cands, index.id_length, *_index_args(index), pos, uniq, self.threads)
        return pos[:found].copy(), uniq[:found].copy()

    def aes_ecb_probe(
        self,
        keys: NDArray[np.uint8],
        blocks: NDArray[np.uint8],
        rows: NDArray[np.intp],
        counts: NDArray[np.int64],
        index: IdIndex,
    ) -> Probed:
        keys, width = _aes_keys(keys)
        n, per = int(keys.shape[0]), int(blocks.shape[1])
        if index.id_length != 16 or per > 256:
            return ecb_then_probe(self, keys, blocks, rows, counts, index)
        pos, uniq = np.empty(n * per, np.int64), np.empty(n * per, np.int64)
        found = self._c.aes_ecb_probe(
            keys,
            width,
            _u8(blocks),
            per,
            _rows_for(n, blocks, rows),
            np.ascontiguousarray(counts, dtype=np.int64),
            *_index_args(index),
            pos,
            uniq,
            self.threads,
        )
        return pos[:found].copy(), uniq[:found].copy()
