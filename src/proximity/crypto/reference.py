"""The reference crypto backend: the batch primitives in vectorised numpy, hashlib and an AES library.

Per-key work is what costs in Python, so no interpreted code runs per key where it can be avoided:
messages are assembled for the whole batch with numpy, hashed with ``map`` over C functions, and AES
runs through :mod:`proximity.crypto.aes` (the system libcrypto re-keying one context, or one
``cryptography`` cipher per key). It is the specification the C backend is tested against, and what
runs where the C extension cannot.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.crypto.aes import EcbBackend, LibcryptoEcb, PortableEcb, available_backends
from proximity.crypto.backend import IdIndex, Probed, ecb_then_probe

__all__ = ["ReferenceBackend", "fastest_aes"]


def _small_message_sha256() -> Callable[[bytes], Any]:
    """CPython's own SHA-256 (no OpenSSL context per call): ~35 % faster on 32-byte messages."""
    for name in ("_sha2", "_sha256"):  # CPython 3.12+, 3.11
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        sha: Callable[[bytes], Any] = module.sha256
        if sha(b"abc").digest() == hashlib.sha256(b"abc").digest():
            return sha
    return hashlib.sha256


_SHA = _small_message_sha256()
_DIGEST = type(_SHA(b"")).digest
_EMPTY = np.zeros(0, dtype=np.int64)


@functools.cache
def _aes_implementations() -> dict[str, EcbBackend]:
    found = {"libcrypto" if isinstance(b, LibcryptoEcb) else "portable": b for b in available_backends()}
    found.setdefault("portable", PortableEcb())
    return found


def fastest_aes() -> str:
    """ "libcrypto" if the system libcrypto loads and passes its self test, else "portable"."""
    return "libcrypto" if "libcrypto" in _aes_implementations() else "portable"


def _digests(messages: list[bytes]) -> NDArray[np.uint8]:
    return np.frombuffer(b"".join(map(_DIGEST, map(_SHA, messages))), np.uint8).reshape(-1, 32)


def _rows(array: NDArray[np.uint8]) -> list[bytes]:
    """The rows of a 2-D uint8 array as bytes objects, made in C (no interpreted code per row)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    n, width = array.shape
    if width == 0:
        return [b""] * n
    return list(array.view(np.dtype((np.void, width))).reshape(n).tolist())


def _pads(keys: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """HMAC's (key XOR ipad, key XOR opad) blocks for every key row (RFC 2104; long keys hashed)."""
    keys = np.ascontiguousarray(keys, dtype=np.uint8)
    if keys.shape[1] > 64:
        keys = _digests(_rows(keys))
    block = np.zeros((keys.shape[0], 64), np.uint8)
    block[:, : keys.shape[1]] = keys
    return block ^ np.uint8(0x36), block ^ np.uint8(0x5C)


class ReferenceBackend:
    """The :class:`~proximity.crypto.backend.CryptoBackend` in numpy; ``aes`` is "libcrypto" or
    "portable" (``cryptography``)."""

    def __init__(self, aes: str = "portable") -> None:
        self._aes = _aes_implementations()[aes]
        self.name = f"python:{self._aes.name}"

    def sha256(self, rows: NDArray[np.uint8]) -> NDArray[np.uint8]:
        return _digests(_rows(rows)).reshape(-1, 32)

    def sha256_chain(
        self, seeds: NDArray[np.uint8], length: int, select: NDArray[np.intp] | None = None
    ) -> NDArray[np.uint8]:
        n = int(seeds.shape[0])
        links: list[bytes] = []
        states = _rows(seeds)
        for step in range(length):  # the chains advance in lock step: one map a step
            links.append(b"".join(states))
            if step + 1 < length:
                states = list(map(_DIGEST, map(_SHA, states)))
        chained = np.frombuffer(b"".join(links), np.uint8).reshape(length, n, 32).transpose(1, 0, 2)
        return np.ascontiguousarray(chained if select is None else chained[:, :, select])

    def hmac_sha256(self, keys: NDArray[np.uint8], message: bytes) -> NDArray[np.uint8]:
        # hmac.digest per key costs ~4 µs, most of it looking the digest up: the pads in numpy instead
        inner_pads, outer_pads = _pads(keys)
        inner = _digests([pad + message for pad in _rows(inner_pads)])
        return _digests(_rows(np.concatenate([outer_pads, inner], axis=1)))

    def hkdf_sha256(self, ikm: NDArray[np.uint8], info: bytes, length: int) -> NDArray[np.uint8]:
        if not 1 <= length <= 32:
            raise ValueError(f"one HKDF-SHA256 block gives 1..32 bytes, asked for {length}")
        # extract: HMAC keyed with the all-zero salt, so one pair of pads serves every row
        inner_pads, outer_pads = _pads(np.zeros((1, 32), np.uint8))
        extract_inner = _digests([inner_pads[0].tobytes() + row for row in _rows(ikm)])
        prk = _digests(
            _rows(np.concatenate([outer_pads.repeat(ikm.shape[0], axis=0), extract_inner], axis=1))
        )
        return np.ascontiguousarray(self.hmac_sha256(prk, info + b"\x01")[:, :length])

    def aes_ecb(
        self, keys: NDArray[np.uint8], blocks: NDArray[np.uint8], rows: NDArray[np.intp] | None = None
    ) -> NDArray[np.uint8]:
        return self._aes.encrypt_rows(keys, blocks, rows)

    def aes_ctr(self, keys: NDArray[np.uint8], counters: NDArray[np.uint8], length: int) -> NDArray[np.uint8]:
        n, count = int(keys.shape[0]), -(-length // 16)
        big = np.ascontiguousarray(counters, dtype=np.uint8).view(">u8").reshape(n, 2).astype(np.uint64)
        low = big[:, 1:2] + np.arange(count, dtype=np.uint64)  # wraps modulo 2**64, as the carry needs
        high = big[:, 0:1] + (low < big[:, 1:2]).astype(np.uint64)
        blocks = np.stack([high, low], axis=2).astype(">u8").view(np.uint8).reshape(n, count, 16)
        stream = self.aes_ecb(keys, blocks).reshape(n, count * 16)
        return np.ascontiguousarray(stream[:, :length])

    def probe(self, index: IdIndex, candidates: NDArray[np.uint8]) -> Probed:
        """Prefix bitmaps throw out ~99 % of the candidates, then ``searchsorted`` and an exact compare."""
        candidates = np.ascontiguousarray(candidates, dtype=np.uint8)
        if candidates.shape[0] == 0 or index.keys.size == 0:
            return _EMPTY, _EMPTY
        keys = np.ndarray(
            shape=(candidates.shape[0],), dtype=np.uint64, buffer=candidates, strides=(candidates.shape[1],)
        )
        bits = index.prefix_bits
        maybe = np.flatnonzero(np.take(index.bitmap, keys >> np.uint64(64 - bits)))
        probe = keys[maybe]
        second = np.take(index.bitmap2, (probe >> np.uint64(64 - 2 * bits)) & np.uint64((1 << bits) - 1))
        maybe, probe = maybe[second], probe[second]
        if maybe.size == 0:
            return _EMPTY, _EMPTY
        where = np.searchsorted(index.keys, probe)
        where[where == index.keys.size] = 0
        same_prefix = index.keys[where] == probe
        maybe, where = maybe[same_prefix], where[same_prefix]
        exact = np.all(index.unique_ids[where] == candidates[maybe], axis=1)
        if index.has_prefix_collisions and not exact.all():
            where = where.copy()
            for i in np.flatnonzero(~exact):
                other = _scan_collisions(index, candidates[maybe[i]], int(where[i]))
                if other >= 0:
                    where[i], exact[i] = other, True
        return maybe[exact].astype(np.int64), where[exact].astype(np.int64)

    def aes_ecb_probe(
        self,
        keys: NDArray[np.uint8],
        blocks: NDArray[np.uint8],
        rows: NDArray[np.intp],
        counts: NDArray[np.int64],
        index: IdIndex,
    ) -> Probed:
        return ecb_then_probe(self, keys, blocks, rows, counts, index)


def _scan_collisions(index: IdIndex, candidate: NDArray[np.uint8], start: int) -> int:
    # Two different IDs sharing their first 8 bytes: astronomically rare for random IDs, but exact.
    position = start + 1
    while position < index.keys.size and index.keys[position] == index.keys[start]:
        if np.array_equal(index.unique_ids[position], candidate):
            return position
        position += 1
    return -1
