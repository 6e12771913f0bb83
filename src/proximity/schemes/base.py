"""The shape every rotating-ID scheme shares, so the matcher and the simulator take any scheme.

A scheme turns one key into a sequence of ephemeral IDs, each broadcast during one time slot. What
differs between schemes (GAEN, Bluezone, or one whose day key yields a shuffled batch of IDs) is
only how a key expands; the consumers need just four things:

* ``id_length`` and ``slot_seconds``;
* ``ids_of_key(key)``: every ID of one key as one numpy batch, with each ID's slot;
* ``id_at(key, at)``: the ID broadcast at one instant.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from proximity.errors import InvalidLengthError

__all__ = ["EphemeralId", "IdBatch", "RotatingIdScheme"]

KeyT_contra = TypeVar("KeyT_contra", contravariant=True)


@dataclass(frozen=True, slots=True)
class EphemeralId:
    """One broadcast ID and the slot ``[start, end)`` (unix seconds) in which it is broadcast."""

    scheme: str
    value: bytes
    start: int
    end: int

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes):
            raise TypeError("value must be bytes")
        if self.end <= self.start:
            raise ValueError(f"slot end {self.end} must be after its start {self.start}")

    @property
    def hex(self) -> str:
        return self.value.hex()


@dataclass(frozen=True, slots=True, eq=False)
class IdBatch:
    """Many IDs of one scheme as read-only numpy arrays: ``ids`` is (n, id_length) uint8.

    ``starts`` and ``ends`` (int64 unix seconds, end exclusive) give each ID's nominal slot; how far a
    sighting may stray from it (GAEN's ±2 h, Bluezone's inclusive bounds) is the matcher's rule.
    """

    scheme: str
    ids: NDArray[np.uint8]
    starts: NDArray[np.int64]
    ends: NDArray[np.int64]

    def __post_init__(self) -> None:
        if self.ids.ndim != 2 or self.ids.dtype != np.uint8:
            raise ValueError(f"ids must be a 2-D uint8 array, got {self.ids.ndim}-D {self.ids.dtype}")
        n = self.ids.shape[0]
        if self.starts.shape != (n,) or self.ends.shape != (n,):
            raise ValueError(f"starts and ends must hold one entry per ID ({n})")
        for array in (self.ids, self.starts, self.ends):
            array.setflags(write=False)

    @property
    def id_length(self) -> int:
        return int(self.ids.shape[1])

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __getitem__(self, index: int) -> EphemeralId:
        return EphemeralId(
            self.scheme, self.ids[index].tobytes(), int(self.starts[index]), int(self.ends[index])
        )

    def __iter__(self) -> Iterator[EphemeralId]:
        for index in range(len(self)):
            yield self[index]

    def index_at(self, at: float) -> int | None:
        """Index of the ID whose slot contains ``at``, or None."""
        hits = np.flatnonzero((self.starts <= at) & (at < self.ends))
        return int(hits[0]) if hits.size else None


class RotatingIdScheme(Protocol[KeyT_contra]):
    """What the matcher and the simulator need of a scheme (see the module docstring)."""

    @property
    def name(self) -> str: ...

    @property
    def id_length(self) -> int: ...

    @property
    def slot_seconds(self) -> int: ...

    def ids_of_key(self, key: KeyT_contra) -> IdBatch: ...

    def id_at(self, key: KeyT_contra, at: float) -> EphemeralId: ...


def require_bytes(what: str, value: object, length: int) -> bytes:
    """Validate fixed-length bytes the pyca way: TypeError for a type, a typed ValueError for a size."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{what} must be bytes, got {type(value).__name__}")
    data = bytes(value)
    if len(data) != length:
        raise InvalidLengthError(what, length, len(data))
    return data
