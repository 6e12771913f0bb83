"""Many key rings made at one time and rolled at the same times (a simulator's phones), as columns.

Such rings differ only in their random bytes: a ring's key times, and the order and sizes of the draws
that make them, follow from when it was made and rolled and from its settings, never from the bytes.
So one real :class:`~proximity.keyring.model.KeyRing`, made with placeholder bytes, stands for all of
them, and each ring is a row of the bytes it drew. The schemes' batch methods
(``SchemeKeys.id_tables``, ``SchemeKeys.published_many``) derive every ring's IDs and published keys
from those rows at once, with the same crypto a ring of its own uses; :meth:`KeyRings.ring` replays
one ring's draws through ``KeyRing.create`` for anything that wants the ring itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.keyring.model import DEFAULT_TX_POWER, KeyRing, KeyRingSettings
from proximity.schemes.keys import IdTables
from proximity.schemes.published import KeyBatch
from proximity.schemes.registry import scheme_record

__all__ = ["RINGS_AT_ONCE", "KeyRings"]

RINGS_AT_ONCE = 1 << 15
"""Rings whose IDs a scheme derives in one call: bounds the temporaries (a day's 96 16-byte IDs of
32,768 rings, as a scheme with 15-minute slots derives them, are 50 MB) whatever the number of rings."""


@dataclass(frozen=True, slots=True, eq=False)
class KeyRings:
    """``n`` key rings made at ``at`` and rolled at each of ``rolls``; ring ``i`` has the settings
    ``settings[which[i]]`` and drew the bytes ``draws[i]`` ((n, per-ring bytes), in its draw order).

    Settings may differ only in what the adverts carry (TX power, calibration confidence): the rest
    decides the keys' times, which all rings share.
    """

    at: float
    rolls: tuple[float, ...]
    settings: tuple[KeyRingSettings, ...]
    which: NDArray[np.intp]
    draws: NDArray[np.uint8]
    template: KeyRing
    """A ring made and rolled as every one of them, whose keys are placeholders naming their draw."""
    _offsets: tuple[int, ...]
    """Where each of a ring's draws begins in its row (the last entry: the row's length)."""

    @classmethod
    def create(
        cls,
        at: float,
        settings: Sequence[KeyRingSettings],
        which: NDArray[np.integer[Any]],
        *,
        rolls: Sequence[float] = (),
        rng: np.random.Generator | None = None,
    ) -> KeyRings:
        """``len(which)`` rings, each made as ``KeyRing.create(at, settings[which[i]], random_bytes=...)``
        and then ``.rolled(t)`` for each of ``rolls`` in turn, ring after ring from one stream.

        With ``rng``, ring ``i`` gets the very bytes it would get from ``rng.bytes`` were the rings made
        one by one: numpy's ``Generator.bytes(k)`` is the little-endian bytes of ``ceil(k / 4)`` uint32
        draws, so when every draw is a multiple of 4 bytes (a ring's are 16 and 32) one call of the
        total is the same bytes as the calls in turn; otherwise each draw is made in turn. Without
        ``rng``, the bytes come from ``os.urandom``.
        """
        which = np.asarray(which, np.intp).reshape(-1)
        settings = tuple(settings) or (KeyRingSettings(),)  # no settings: no rings either
        if which.size and (which.min() < 0 or which.max() >= len(settings)):
            raise ValueError(f"which must index settings (0..{len(settings) - 1})")
        if len({_key_settings(s) for s in settings}) > 1:
            raise ValueError("key rings of one batch may differ only in TX power and calibration confidence")
        rolls = tuple(float(t) for t in rolls)
        templates, sizes = [], []
        for one in settings:
            draw = _Placeholders()
            templates.append(_made(at, one, rolls, draw))
            sizes.append(tuple(draw.sizes))
        if any(t.keys != templates[0].keys for t in templates) or len(set(sizes)) > 1:
            raise ValueError("key rings of one batch must make the same keys at the same times")
        offsets = tuple(np.cumsum((0, *sizes[0])).tolist())
        n, width = int(which.size), offsets[-1]
        if rng is None:
            data = os.urandom(n * width)
        elif all(size % 4 == 0 for size in sizes[0]):
            data = rng.bytes(n * width)
        else:
            data = b"".join(rng.bytes(size) for _ in range(n) for size in sizes[0])
        draws = np.frombuffer(data, np.uint8).reshape(n, width)
        return cls(at, rolls, settings, which, draws, templates[0], offsets)

    def __len__(self) -> int:
        return int(self.which.size)

    def ring(self, i: int) -> KeyRing:
        """Ring ``i`` itself: made and rolled from its own bytes, as it would be on its own."""
        row: bytes = self.draws[i].tobytes()
        position = 0

        def replay(size: int) -> bytes:
            nonlocal position
            part, position = row[position : position + size], position + size
            if len(part) != size:
                raise RuntimeError("the ring drew more bytes than its batch's rings did")
            return part

        return _made(self.at, self.settings[int(self.which[i])], self.rolls, replay)

    def keys(self, scheme: str) -> NDArray[np.uint8]:
        """Every ring's bytes of each key the scheme's state holds: (n, keys, key length), the keys in the
        order the scheme's ``key_data`` lists the template's."""
        state = self.template.key_state(scheme)
        held = [] if state is None else scheme_record(scheme).load_keys().key_data(state)
        columns = []
        for placeholder in held:
            draw = _Placeholders.index(placeholder)
            if draw is None or draw >= len(self._offsets) - 1:
                raise ValueError(f"a {scheme} key is not bytes its ring drew; it cannot be made in a batch")
            columns.append(np.arange(self._offsets[draw], self._offsets[draw] + len(placeholder)))
        if not columns:
            return np.zeros((len(self), 0, 0), np.uint8)
        return self.draws[:, np.stack(columns)]

    def id_tables(self, scheme: str, start: int, end: int) -> IdTables:
        """Every ring's ``scheme`` IDs whose slots start in ``[start, end)``, with their metadata (GAEN's
        AEMs), ring ``i``'s in row ``i``: what ``KeyRing.id_table`` gives each ring, those slots only."""
        state = self.template.key_state(scheme)
        record = scheme_record(scheme)
        if state is None:
            n = len(self)
            width = record.metadata_length
            none = None if width is None else np.zeros((n, 0, width), np.uint8)
            return IdTables(np.zeros((n, 0, record.id_length), np.uint8), np.zeros(0, np.int64), none)
        keys, handler = self.keys(scheme), record.load_keys()
        ids: NDArray[np.uint8] | None = None
        metadata: NDArray[np.uint8] | None = None
        starts = np.zeros(0, np.int64)
        for g, rows in _groups(self.which, len(self.settings)):
            for low in range(0, max(rows.size, 1), RINGS_AT_ONCE):
                block = rows[low : low + RINGS_AT_ONCE]
                part = handler.id_tables(state, keys[block], self.settings[g], start, end)
                if ids is None:  # every part has the same slots
                    starts = part.starts
                    ids = np.empty((len(self), *part.ids.shape[1:]), np.uint8)
                    if part.metadata is not None:
                        metadata = np.empty((len(self), *part.metadata.shape[1:]), np.uint8)
                ids[block] = part.ids
                if metadata is not None and part.metadata is not None:
                    metadata[block] = part.metadata
        assert ids is not None  # at least one part, even of no rings
        return IdTables(ids, starts, metadata)

    def published(
        self, scheme: str, first_day: int, days: int, rings: NDArray[np.integer[Any]] | None = None
    ) -> tuple[Any, NDArray[np.intp]]:
        """What each of ``rings`` (default all, in the order given) publishes of ``scheme`` over those
        days, as ``KeyRing.published`` says, and the ring of each published row: (a list, or GAEN's
        :class:`~proximity.schemes.published.KeyBatch`; rings).
        """
        chosen = np.arange(len(self)) if rings is None else np.asarray(rings, np.intp).reshape(-1)
        state = self.template.key_state(scheme)
        if state is None or not chosen.size:
            return [], np.zeros(0, np.intp)
        keys, handler = self.keys(scheme)[chosen], scheme_record(scheme).load_keys()
        parts = [
            (rows, handler.published_many(state, keys[rows], self.settings[g], first_day, days))
            for g, rows in _groups(self.which[chosen], len(self.settings))
        ]
        each = len(parts[0][1]) // len(parts[0][0])  # every ring publishes as many as the template
        if len(parts) == 1:
            return parts[0][1], np.repeat(chosen, each)
        position = np.repeat(np.concatenate([rows for rows, _ in parts]), each)
        back = np.argsort(position, kind="stable")  # ring by ring in the order chosen, each's rows in order
        if isinstance(parts[0][1], KeyBatch):
            return KeyBatch.concatenate([part for _, part in parts]).select(back), chosen[position[back]]
        values = [value for _, part in parts for value in part]
        return [values[i] for i in back.tolist()], chosen[position[back]]


def _groups(which: NDArray[np.intp], count: int) -> list[tuple[int, NDArray[np.intp]]]:
    """(settings index, the rows having it) for each settings in use, in settings order."""
    if count == 1:
        return [(0, np.arange(which.size))]
    return [(g, np.flatnonzero(which == g)) for g in np.unique(which).tolist()]


def _key_settings(settings: KeyRingSettings) -> KeyRingSettings:
    """The settings but what the adverts carry: what decides the keys."""
    return replace(settings, tx_power=DEFAULT_TX_POWER, calibration_confidence=0)


def _made(
    at: float, settings: KeyRingSettings, rolls: tuple[float, ...], draw: Callable[[int], bytes]
) -> KeyRing:
    ring = KeyRing.create(at, settings, random_bytes=draw)
    for t in rolls:
        ring = ring.rolled(t, random_bytes=draw)
    return ring


class _Placeholders:
    """Random bytes that name their draw: draw ``k`` of ``size`` bytes is zeros, a tag, then ``k``."""

    _TAG = b"\xffdraw"

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, size: int) -> bytes:
        k = len(self.sizes)
        self.sizes.append(size)
        body = self._TAG + k.to_bytes(4, "big")
        if size < len(body):
            raise ValueError(f"a {size}-byte draw is too short to stand for many rings' keys")
        return bytes(size - len(body)) + body

    @classmethod
    def index(cls, key: bytes) -> int | None:
        """Which draw a placeholder key is (None: not a placeholder)."""
        body = key[-len(cls._TAG) - 4 :]
        if len(key) < len(cls._TAG) + 4 or not body.startswith(cls._TAG) or any(key[: -len(body)]):
            return None
        return int.from_bytes(body[len(cls._TAG) :], "big")
