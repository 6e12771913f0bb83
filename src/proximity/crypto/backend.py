"""The crypto backend protocol: generic batch primitives every scheme composes.

Rotating-ID schemes need a handful of primitives, each over many keys at once: matching derives the IDs
of 100,000 published keys, and a phone derives one key's IDs (n = 1, the same path). So the protocol
has no scheme in it, only batch primitives over numpy arrays; each scheme (in :mod:`proximity.schemes`)
is a composition of them, written once.

Two implementations, :mod:`proximity.crypto.native` (C) and :mod:`proximity.crypto.reference`
(numpy), chosen once per process by ``PROXIMITY_MATCH_BACKEND`` (:mod:`proximity.crypto.switch`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = ["CHOICES", "ENV_VAR", "CryptoBackend", "IdIndex", "Probed", "ecb_then_probe"]

ENV_VAR = "PROXIMITY_MATCH_BACKEND"  # read by proximity.crypto.switch
CHOICES = ("auto", "c", "python", "libcrypto", "portable")
"""What ``PROXIMITY_MATCH_BACKEND`` (or a ``backend=`` argument) may say; see the module docstring."""

Probed = tuple[NDArray[np.int64], NDArray[np.int64]]


class IdIndex(Protocol):
    """What a probe reads of :class:`proximity.matching.index.ObservedIdIndex` (a protocol, so crypto
    never imports matching): unique IDs sorted by their first 8 bytes read as a native uint64, those
    keys, and two prefix bitmaps (bool, and packed 8 flags a byte in little bit order)."""

    @property
    def id_length(self) -> int: ...
    @property
    def unique_ids(self) -> NDArray[np.uint8]: ...
    @property
    def keys(self) -> NDArray[np.uint64]: ...
    @property
    def prefix_bits(self) -> int: ...
    @property
    def bitmap(self) -> NDArray[np.bool_]: ...
    @property
    def bitmap2(self) -> NDArray[np.bool_]: ...
    @property
    def packed_bitmap(self) -> NDArray[np.uint8]: ...
    @property
    def packed_bitmap2(self) -> NDArray[np.uint8]: ...
    @property
    def slices(self) -> NDArray[np.uint32]:
        """65537 ends: the keys whose top 16 bits are ``t`` are ``keys[slices[t]:slices[t + 1]]``."""
        ...

    @property
    def has_prefix_collisions(self) -> bool: ...


class CryptoBackend(Protocol):
    """Batch primitives; every array argument is a C-contiguous-able uint8 array unless said otherwise.

    Results are fresh arrays; all implementations give byte-identical results (tests check it).
    """

    @property
    def name(self) -> str:
        """ "c", or "python:" and the AES implementation's name."""
        ...

    def sha256(self, rows: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """SHA-256 of every row of an (n, w) array: (n, 32)."""
        ...

    def sha256_chain(
        self, seeds: NDArray[np.uint8], length: int, select: NDArray[np.intp] | None = None
    ) -> NDArray[np.uint8]:
        """Chains from (n, 32) seeds: links s_0 = seed, s_{i+1} = SHA-256(s_i), i < ``length``, each cut to
        the bytes ``select`` names (default all 32): (n, length, len(select))."""
        ...

    def hmac_sha256(self, keys: NDArray[np.uint8], message: bytes) -> NDArray[np.uint8]:
        """HMAC-SHA256(key, message) under every row of an (n, k) key array: (n, 32)."""
        ...

    def hkdf_sha256(self, ikm: NDArray[np.uint8], info: bytes, length: int) -> NDArray[np.uint8]:
        """HKDF-SHA256 (RFC 5869, salt none, one output block: ``length`` <= 32) of every (n, k) row."""
        ...

    def aes_ecb(
        self, keys: NDArray[np.uint8], blocks: NDArray[np.uint8], rows: NDArray[np.intp] | None = None
    ) -> NDArray[np.uint8]:
        """Key ``i`` ((n, 16): AES-128, (n, 32): AES-256) encrypts ``blocks[rows[i]]`` of (u, b, 16)
        blocks (``rows`` None: row i, u = n): (n, b, 16)."""
        ...

    def aes_ctr(self, keys: NDArray[np.uint8], counters: NDArray[np.uint8], length: int) -> NDArray[np.uint8]:
        """``length`` bytes of AES-CTR keystream under each key (n, 16 | 32) from its initial counter block
        (n, 16), incremented as a 128-bit big-endian integer (NIST SP 800-38A): (n, length)."""
        ...

    def probe(self, index: IdIndex, candidates: NDArray[np.uint8]) -> Probed:
        """Which (n, L) candidates the index holds: (their positions, their unique-ID index)."""
        ...

    def aes_ecb_probe(
        self,
        keys: NDArray[np.uint8],
        blocks: NDArray[np.uint8],
        rows: NDArray[np.intp],
        counts: NDArray[np.int64],
        index: IdIndex,
    ) -> Probed:
        """:meth:`aes_ecb`, then :meth:`probe` with the first ``counts[i]`` blocks of key ``i``'s output
        (16-byte IDs): (positions ``i * b + j``, unique-ID index). The C backend probes each key's
        blocks while they are in L1, never materialising them all."""
        ...


def ecb_then_probe(
    backend: CryptoBackend,
    keys: NDArray[np.uint8],
    blocks: NDArray[np.uint8],
    rows: NDArray[np.intp],
    counts: NDArray[np.int64],
    index: IdIndex,
) -> Probed:
    """:meth:`CryptoBackend.aes_ecb_probe` from its two parts (all blocks materialised, then probed)."""
    per = int(blocks.shape[1])
    out = backend.aes_ecb(keys, blocks, rows).reshape(-1, 16)
    positions, unique = backend.probe(index, out)
    exists = positions % per < np.asarray(counts, np.int64)[positions // per]
    return positions[exists], unique[exists]
