"""Published GAEN keys with their own crypto done once: match them against any number of logs.

What matching a key needs that no log changes: its RPIK and AEMK (HKDF-SHA256 of the TEK), the
PaddedData blocks its RPIs are encrypted from, and its window (validity widened by the ±2 h of clock
drift). Google's matcher keeps the same split: key derivation per downloaded file, then one pass per
batch of scans. A :class:`PreparedKeys` is that part, derived once; :class:`GaenMatcher` and
:func:`match_gaen` take it wherever they take a :class:`KeyBatch`, with the same results. Where the same
keys meet many logs (a phone's keys of 14 days matched every day, a simulator matching every chunk, a
health system matching many devices) the HKDF is paid once per key instead of once per match.

The arrays are read-only, so one prepared set can be shared by threads and reused safely.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from proximity.crypto import crypto_backend
from proximity.schemes.gaen import ENIN_SECONDS, TEK_LENGTH, derive_aemks, rpi_inputs
from proximity.schemes.published import DiagnosisKey, KeyBatch

__all__ = ["WINDOW_SLACK_SECONDS", "PreparedKeys", "key_windows"]

WINDOW_SLACK_SECONDS = 2 * 3600


def key_windows(batch: KeyBatch) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Each key's ``[low, high)`` in unix seconds: its validity widened by the clock-drift slack."""
    start = batch.rolling_start.astype(np.int64)
    low = start * ENIN_SECONDS - WINDOW_SLACK_SECONDS
    high = (start + batch.rolling_period) * ENIN_SECONDS + WINDOW_SLACK_SECONDS
    return low, high


@dataclass(frozen=True, slots=True, eq=False)
class PreparedKeys:
    """A :class:`KeyBatch` with each key's log-independent crypto: build with :meth:`prepare`.

    ``rpiks``/``aemks`` (n, 16) are the keys' RPIK and AEMK; ``blocks`` (u, 144, 16) the PaddedData of
    each distinct start and ``block_rows`` (n,) each key's row of it; ``low``/``high`` (n,) each key's
    window in unix seconds. Constructing one by hand is trusted (only shapes are checked): the matcher
    uses these values as they are.
    """

    batch: KeyBatch
    rpiks: NDArray[np.uint8]
    aemks: NDArray[np.uint8]
    blocks: NDArray[np.uint8]
    block_rows: NDArray[np.intp]
    low: NDArray[np.int64]
    high: NDArray[np.int64]

    def __post_init__(self) -> None:
        if not isinstance(self.batch, KeyBatch):
            raise TypeError(f"batch must be a KeyBatch, got {type(self.batch).__name__}")
        n = len(self.batch)
        for name in ("rpiks", "aemks"):
            array = getattr(self, name)
            if array.shape != (n, TEK_LENGTH) or array.dtype != np.uint8:
                raise ValueError(f"{name} must be an ({n}, {TEK_LENGTH}) uint8 array, got {array.shape}")
        if self.blocks.ndim != 3 or self.blocks.shape[2] != 16 or self.blocks.dtype != np.uint8:
            raise ValueError(f"blocks must be a (u, count, 16) uint8 array, got {self.blocks.shape}")
        for name in ("block_rows", "low", "high"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must hold one entry per key ({n})")
        if n and not 0 <= int(self.block_rows.min()) <= int(self.block_rows.max()) < self.blocks.shape[0]:
            raise ValueError("block_rows must name rows of blocks")

    @classmethod
    def prepare(
        cls,
        keys: KeyBatch | Iterable[DiagnosisKey],
        *,
        verified: bool = False,
        backend: str | None = None,
    ) -> PreparedKeys:
        """Derive every key's RPIK and AEMK once (two batch HKDF calls) and lay out its blocks.

        ``keys``: a batch (an export file's, say; it carries its own ``verified`` flag), or plain
        :class:`DiagnosisKey` values, which ``verified`` marks. Prepare each file's batch on its own
        and pass them all to :func:`~proximity.matching.gaen.match_gaen`. ``backend`` (a
        :data:`proximity.crypto.CHOICES` name) changes only the speed: every backend derives the same
        bytes.
        """
        if not isinstance(keys, KeyBatch):
            keys = _plain_keys(keys, verified)
        crypto = crypto_backend(backend)
        rpiks, blocks, rows = rpi_inputs(keys.key_data, keys.rolling_start, crypto)
        low, high = key_windows(keys)
        prepared = cls(keys, rpiks, derive_aemks(keys.key_data, crypto), blocks, rows, low, high)
        for array in (rpiks, prepared.aemks, blocks, rows, low, high):
            array.setflags(write=False)
        return prepared

    def __len__(self) -> int:
        return len(self.batch)

    def __repr__(self) -> str:
        return f"PreparedKeys({len(self)} keys, verified={self.verified})"

    @property
    def verified(self) -> bool:
        return self.batch.verified

    def select(self, rows: NDArray[np.intp] | NDArray[np.bool_] | slice) -> PreparedKeys:
        """The prepared keys ``rows`` names (the blocks are shared, not copied)."""
        return PreparedKeys(
            self.batch.select(rows),
            self.rpiks[rows],
            self.aemks[rows],
            self.blocks,
            self.block_rows[rows],
            self.low[rows],
            self.high[rows],
        )


def _plain_keys(keys: object, verified: bool) -> KeyBatch:
    """Plain keys as one batch; anything else is a TypeError saying what is accepted."""
    if isinstance(keys, DiagnosisKey | PreparedKeys) or not isinstance(keys, Iterable):
        raise TypeError(f"keys must be a KeyBatch or an iterable of DiagnosisKey, got {type(keys).__name__}")
    listed = list(keys)
    for key in listed:
        if not isinstance(key, DiagnosisKey):
            hint = "; prepare each batch on its own" if isinstance(key, KeyBatch) else ""
            raise TypeError(
                f"keys must be a KeyBatch or an iterable of DiagnosisKey, got an item of type "
                f"{type(key).__name__}{hint}"
            )
    return KeyBatch.from_keys(listed, verified=verified)
