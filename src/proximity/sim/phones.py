"""App users' phones: a real KeyRing each, and the IDs (and GAEN AEMs) it broadcasts, as lookup tables.

The rings come from :class:`proximity.keyring.KeyRing` (random bytes from the run's "keys" stream,
so a seed fixes every key), made all at once as :class:`proximity.keyring.KeyRings` (the same bytes,
drawn in one go); the IDs from the real schemes' batch code (``SchemeKeys.id_tables``), for the run's
slots only, so that sightings get their ID by indexing. What a diagnosed phone publishes is what the
app would (``SchemeKeys.published_many``, the batch of ``SchemeKeys.published``).
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
        slots = int(-(-(end - self.origin) // self.slot_seconds))
        tx = np.broadcast_to(np.asarray(tx_power, np.int64), (n,))[users]
        conf = np.broadcast_to(np.asarray(confidence, np.int64), (n,))[users]
        distinct, which = np.unique(np.stack([tx, conf], axis=1), axis=0, return_inverse=True)
        settings = [
            KeyRingSettings(tx_power=int(t), calibration_confidence=int(c)) for t, c in distinct.tolist()
        ]
        rolls = [self.first_day + day * SECONDS_PER_DAY for day in range(1, self.days)]
        self.rings = KeyRings.create(start, settings, which.reshape(-1), rolls=rolls, rng=rng)
        table = self.rings.id_tables(scheme, self.origin, self.origin + slots * self.slot_seconds)
        slot = (table.starts - self.origin) // self.slot_seconds
        if np.array_equal(slot, np.arange(slots)):  # every slot has its ID (as always, today)
            self.ids = np.ascontiguousarray(table.ids)
            metadata = table.metadata
            self.aem = np.zeros((users.size, slots, 0), np.uint8) if metadata is None else metadata
        else:  # a slot no key covers broadcasts zeros
            self.ids = np.zeros((users.size, slots, ID_LENGTHS[scheme]), np.uint8)
            self.aem = np.zeros((users.size, slots, record.metadata_length or 0), np.uint8)
            self.ids[:, slot] = table.ids
            if table.metadata is not None:
                self.aem[:, slot] = table.metadata
        self._index: tuple[NDArray[np.void], NDArray[np.int64]] | None = None

    def ring(self, agent: int) -> KeyRing:
        """``agent``'s key ring (an app user's), as it would be made on its own."""
        return self.rings.ring(int(self.row[agent]))

    def broadcast(
        self, agents: NDArray[np.int64], times: NDArray[np.float64]
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """The ID (and AEM) each of ``agents`` (app users) broadcast at ``times``."""
        slot = self.slot(times)
        rows = self.row[agents]
        return _take(self.ids, rows, slot), _take(self.aem, rows, slot)

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
            self._index = _id_index(self.ids.reshape(-1, self.ids.shape[2]), self.users, self.ids.shape[1])
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
