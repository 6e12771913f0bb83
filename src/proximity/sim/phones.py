"""App users' phones: a real KeyRing each, and the IDs (and GAEN AEMs) it broadcasts, as lookup tables.

The rings come from :class:`proximity.keyring.KeyRing` (random bytes from the run's "keys" stream,
so a seed fixes every key), made all at once as :class:`proximity.keyring.KeyRings` (the same bytes,
drawn in one go); the IDs from the real schemes' batch code (``SchemeKeys.id_tables``), for the run's
slots only, an hour's at a time as the run reaches them, so that sightings get their ID by indexing.
What a diagnosed phone publishes is what the app would (``SchemeKeys.published_many``, the batch of
``SchemeKeys.published``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.keyring import DEFAULT_TX_POWER, KeyRing, KeyRings, KeyRingSettings
from proximity.schemes.registry import scheme_record
from proximity.sightings import ID_LENGTHS
from proximity.times import SECONDS_PER_DAY, utc_midnight

__all__ = ["Phones"]


class Phones:
    """Keys and ID tables of the app users among ``n`` agents over ``[start, end)``."""

    def __init__(
        self,
        scheme: str,
        users: NDArray[np.int64],
        n: int,
        start: float,
        end: float,
        rng: np.random.Generator,
        tx_power: int | NDArray[np.int64] = DEFAULT_TX_POWER,
        confidence: int | NDArray[np.int64] = 0,
    ) -> None:
        """``tx_power`` and ``confidence`` (per agent, or one for all) go into each phone's metadata.

        Each phone's ring is made at ``start`` and rolled at each later UTC midnight of the run, one
        phone after another from ``rng`` (as ``KeyRing.create`` and ``rolled`` one by one would)."""
        self.scheme = scheme
        self.users = users
        self.row = np.full(n, -1, np.int64)
        self.row[users] = np.arange(users.size)
        self.start, self.end = start, end
        self.first_day = utc_midnight(start)
        self.days = int((utc_midnight(max(start, end - 1e-6)) - self.first_day) // SECONDS_PER_DAY) + 1
        record = scheme_record(scheme)
        self.slot_seconds = record.slot_seconds
        self.origin = int(start // self.slot_seconds) * self.slot_seconds  # slots divide the day
        self.slots = int(-(-(end - self.origin) // self.slot_seconds))  # the run's slots, 0..slots-1
        tx = np.broadcast_to(np.asarray(tx_power, np.int64), (n,))[users]
        conf = np.broadcast_to(np.asarray(confidence, np.int64), (n,))[users]
        distinct, which = np.unique(np.stack([tx, conf], axis=1), axis=0, return_inverse=True)
        settings = [
            KeyRingSettings(tx_power=int(t), calibration_confidence=int(c)) for t, c in distinct.tolist()
        ]
        rolls = [self.first_day + day * SECONDS_PER_DAY for day in range(1, self.days)]
        self.rings = KeyRings.create(start, settings, which.reshape(-1), rolls=rolls, rng=rng)
        # the tables of a window of slots (from its first), made as broadcasts need them: a whole city
        # day's (20 bytes a phone a slot) were ~85 MB of a shard held all day for an hour's use at once
        self._window: tuple[int, NDArray[np.uint8], NDArray[np.uint8]] | None = None
        self._index: tuple[NDArray[np.void], NDArray[np.int64]] | None = None

    @property
    def ids(self) -> NDArray[np.uint8]:
        """Every app user's ID in each slot of the run: (users, slots, ID length), made on each call."""
        return self._tables(0, self.slots)[0]

    @property
    def aem(self) -> NDArray[np.uint8]:
        """... and its metadata (GAEN's AEM; no bytes for other schemes), the same way."""
        return self._tables(0, self.slots)[1]

    def _tables(self, first: int, last: int) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """The IDs and metadata of slots [first, last), a slot no key covers all zeros."""
        record = scheme_record(self.scheme)
        table = self.rings.id_tables(
            self.scheme, self.origin + first * self.slot_seconds, self.origin + last * self.slot_seconds
        )
        slot = (table.starts - self.origin) // self.slot_seconds - first
        if np.array_equal(slot, np.arange(last - first)):  # every slot has its ID (as always, today)
            metadata = table.metadata
            aem = np.zeros((self.users.size, last - first, 0), np.uint8) if metadata is None else metadata
            return np.ascontiguousarray(table.ids), aem
        ids = np.zeros((self.users.size, last - first, ID_LENGTHS[self.scheme]), np.uint8)
        aem = np.zeros((self.users.size, last - first, record.metadata_length or 0), np.uint8)
        ids[:, slot] = table.ids
        if table.metadata is not None:
            aem[:, slot] = table.metadata
        return ids, aem

    def ring(self, agent: int) -> KeyRing:
        """``agent``'s key ring (an app user's), as it would be made on its own."""
        return self.rings.ring(int(self.row[agent]))

    def broadcast(
        self, agents: NDArray[np.int64], times: NDArray[np.float64]
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """The ID (and AEM) each of ``agents`` (app users) broadcast at ``times``."""
        slot = self.slot(times)
        rows = self.row[agents]
        if not slot.size:
            width = scheme_record(self.scheme).metadata_length or 0
            return np.zeros((0, ID_LENGTHS[self.scheme]), np.uint8), np.zeros((0, width), np.uint8)
        low, high = int(slot.min()), int(slot.max()) + 1
        if not 0 <= low < high <= self.slots:
            raise ValueError(
                f"broadcast times must lie in the run's slots [0, {self.slots}), got {low}..{high - 1}"
            )
        if self._window is None or low < self._window[0] or high > self._window[0] + self._window[1].shape[1]:
            # from the earliest slot asked for, at least WINDOW_SECONDS' worth (runs go forward in time)
            last = min(self.slots, max(high, low + max(1, WINDOW_SECONDS // self.slot_seconds)))
            self._window = (low, *self._tables(low, last))
        first, ids, aem = self._window
        slot = slot - first
        return _take(ids, rows, slot), _take(aem, rows, slot)

    def slot(self, times: NDArray[np.float64]) -> NDArray[np.int64]:
        """The ID slot (column of the tables) of each of ``times``: ``(times - origin) // slot_seconds``,
        as a floor of the quotient corrected to the exact one (a float ``//`` costs a ``divmod`` each)."""
        since = times - self.origin
        step = float(self.slot_seconds)
        slot = np.floor(since / step)
        slot -= slot * step > since  # the rounded quotient may land one off where since is near a multiple
        slot += (slot + 1.0) * step <= since
        return slot.astype(np.int64)

    def owners(self, ids: NDArray[np.uint8]) -> NDArray[np.int64]:
        """The agent that broadcast each ID (-1 if none did): the simulator's ground truth (its index
        is built on first use; the run itself never asks)."""
        if ids.shape[0] == 0:
            return np.zeros(0, np.int64)
        if self._index is None:
            table = self.ids
            self._index = _id_index(table.reshape(-1, table.shape[2]), self.users, table.shape[1])
        sorted_ids, owner = self._index
        wanted = _as_void(np.ascontiguousarray(ids))
        at = np.minimum(np.searchsorted(sorted_ids, wanted), sorted_ids.size - 1)
        return np.where(sorted_ids[at] == wanted, owner[at], -1)

    def published(self, agent: int) -> list[Any]:
        """What ``agent`` uploads when confirmed, covering the run's days (each value has ``key_data``)."""
        return self.ring(agent).published(self.scheme, self.first_day, self.days)

    def published_keys(self, agents: NDArray[np.int64]) -> tuple[Any, NDArray[np.int64]]:
        """What each of ``agents`` (app users) uploads when confirmed, agent after agent as given, and
        the agent of each published row: (a list of values, or GAEN's KeyBatch; agents)."""
        published, ring = self.rings.published(self.scheme, self.first_day, self.days, self.row[agents])
        return published, self.users[ring]


WINDOW_SECONDS = 3600
"""How much of the run's ID tables :meth:`Phones.broadcast` makes at once (every phone, six GAEN slots)."""


def _take(table: NDArray[np.uint8], rows: NDArray[np.int64], slot: NDArray[np.int64]) -> NDArray[np.uint8]:
    """``table[rows, slot]`` of a (phones, slots, bytes) table, each entry gathered as one item."""
    width = table.shape[2]
    if width == 0:
        return np.zeros((rows.size, 0), np.uint8)
    items = table.view(np.dtype((np.void, width)))[:, :, 0]
    out: NDArray[np.uint8] = items[rows, slot].view(np.uint8).reshape(-1, width)
    return out


def _as_void(rows: NDArray[np.uint8]) -> NDArray[np.void]:
    return rows.view(np.dtype((np.void, rows.shape[1]))).ravel()


def _id_index(
    flat: NDArray[np.uint8], users: NDArray[np.int64], slots: int
) -> tuple[NDArray[np.void], NDArray[np.int64]]:
    keys = _as_void(np.ascontiguousarray(flat))
    owner = np.repeat(users, slots)
    order = np.argsort(keys, kind="stable")
    return keys[order], owner[order]
