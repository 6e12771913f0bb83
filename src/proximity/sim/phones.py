"""App users' phones: a real KeyRing each, and the IDs (and GAEN AEMs) it broadcasts, as lookup tables.

The rings come from :class:`proximity.keyring.KeyRing` (random bytes from the run's "keys" stream,
so a seed fixes every key); the IDs from the real schemes, through the ring's view of the scheme's keys
that its record names (``SchemeRecord.ring_keys``), tabulated per phone per slot so that sightings get
their ID by indexing. What a diagnosed phone publishes is what the app would, as the same view says.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from proximity.keyring import DEFAULT_TX_POWER, KeyRing, KeyRingSettings
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
        """``tx_power`` and ``confidence`` (per agent, or one for all) go into each phone's metadata."""
        self.scheme = scheme
        self.users = users
        self.row = np.full(n, -1, np.int64)
        self.row[users] = np.arange(users.size)
        self.start, self.end = start, end
        self.first_day = utc_midnight(start)
        self.days = int((utc_midnight(max(start, end - 1e-6)) - self.first_day) // SECONDS_PER_DAY) + 1
        record = scheme_record(scheme)
        self._keys = record.load_ring_keys()
        self.slot_seconds = record.slot_seconds
        self.origin = int(start // self.slot_seconds) * self.slot_seconds  # slots divide the day
        slots = int(-(-(end - self.origin) // self.slot_seconds))
        length = ID_LENGTHS[scheme]
        self.ids = np.zeros((users.size, slots, length), np.uint8)
        self.aem = np.zeros((users.size, slots, record.metadata_length or 0), np.uint8)
        tx = np.broadcast_to(np.asarray(tx_power, np.int64), (n,))
        conf = np.broadcast_to(np.asarray(confidence, np.int64), (n,))
        settings: dict[tuple[int, int], KeyRingSettings] = {}
        self.rings: list[KeyRing] = []
        for row, agent in enumerate(users.tolist()):
            mine = (int(tx[agent]), int(conf[agent]))
            if mine not in settings:
                settings[mine] = KeyRingSettings(tx_power=mine[0], calibration_confidence=mine[1])
            ring = KeyRing.create(start, settings[mine], random_bytes=rng.bytes)
            for day in range(1, self.days):
                ring = ring.rolled(self.first_day + day * SECONDS_PER_DAY, random_bytes=rng.bytes)
            self.rings.append(ring)
            self._tabulate(row, ring)
        flat = self.ids.reshape(-1, length)
        self._sorted_ids, self._owner = _id_index(flat, users, slots)

    def _tabulate(self, row: int, ring: KeyRing) -> None:
        batch, aem = self._keys.id_table(ring, self.first_day, self.days)
        self._place(row, batch.starts, batch.ids, aem, self.ids.shape[1])

    def _place(
        self,
        row: int,
        starts: NDArray[np.int64],
        ids: NDArray[np.uint8],
        aem: NDArray[np.uint8] | None,
        slots: int,
    ) -> None:
        slot = (starts - self.origin) // self.slot_seconds
        ok = (slot >= 0) & (slot < slots)
        self.ids[row, slot[ok]] = ids[ok]
        if aem is not None:
            self.aem[row, slot[ok]] = aem[ok]

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
        """The agent that broadcast each ID (-1 if none did): the simulator's ground truth."""
        if ids.shape[0] == 0:
            return np.zeros(0, np.int64)
        wanted = _as_void(np.ascontiguousarray(ids))
        at = np.searchsorted(self._sorted_ids, wanted)
        at = np.minimum(at, self._sorted_ids.size - 1)
        found = self._sorted_ids[at] == wanted
        return np.where(found, self._owner[at], -1)

    def published(self, agent: int) -> list[Any]:
        """What ``agent`` uploads when confirmed, covering the run's days (each value has ``key_data``)."""
        ring = self.rings[int(self.row[agent])]
        published: list[Any] = self._keys.published(ring, self.first_day, self.days)
        return published


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
