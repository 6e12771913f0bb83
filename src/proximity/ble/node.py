"""A contact-tracing node: advertise the current ID, scan, log what is heard, rotate at slot boundaries.

The node owns the order of operations that keeps IDs unlinkable: at each slot boundary the scan is
paused, the old advertisement unregistered and the new one registered (a new random address), then
the scan resumes (see :mod:`proximity.ble.advertiser`). Where advertising is impossible it says so
once and runs scan-only. Everything heard goes to ``sink`` (e.g. a :class:`BatchingSink` over the
encounter log), tagged with the ID this node was broadcasting at the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from proximity.ble.advertiser import MAIN_CONF, Advertiser
from proximity.ble.scanner import Scanner
from proximity.ble.sink import SightingSink
from proximity.broadcast import Broadcast
from proximity.errors import BluetoothUnavailableError
from proximity.schemes.registry import duty_cycles
from proximity.sightings import Sighting

__all__ = ["DUTY_CYCLES", "Node", "NodeStatus"]

# (scan seconds on, period seconds); None = scan all the time. Each scheme's comes from its record
# (proximity.schemes.registry), the same DutyCycle the simulator uses.
DUTY_CYCLES: dict[str, tuple[float, float] | None] = {
    name: cycle.scan_window for name, cycle in duty_cycles().items()
}


@dataclass(slots=True)
class NodeStatus:
    """What the node is doing, for the live status line and the final summary."""

    scheme: str
    own_id: bytes | None = None
    slot_end: float | None = None
    advertising: bool = False
    scanning: bool = False
    rotations: int = 0
    sightings: int = 0
    peers: set[bytes] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    def line(self, now: float) -> str:
        own = self.own_id.hex()[:8] if self.own_id else "-"
        left = f"{max(0.0, self.slot_end - now):.0f}s" if self.slot_end is not None else "-"
        mode = ("adv" if self.advertising else "no-adv") + ("+scan" if self.scanning else "")
        return (
            f"{self.scheme} {mode} id {own}… (next in {left}) rotations {self.rotations} "
            f"heard {self.sightings} sightings of {len(self.peers)} IDs"
        )


class Node:
    """``await Node("gaen", ring_lookup, sink).run(stop_event)``; ``broadcast_at(t)`` gives the current ID."""

    def __init__(
        self,
        scheme: str,
        broadcast_at: Callable[[float], Broadcast],
        sink: SightingSink,
        *,
        adapter: str = "hci0",
        duty: str = "continuous",
        advertise: bool = True,
        clock: Callable[[], float] = time.time,
        on_status: Callable[[NodeStatus], None] | None = None,
        status_interval: float = 1.0,
        main_conf: Path = MAIN_CONF,
        retry_delay: float = 0.1,
    ) -> None:
        if duty not in DUTY_CYCLES:
            raise ValueError(f"duty must be one of {', '.join(DUTY_CYCLES)}, got {duty!r}")
        self.scheme = scheme
        self.broadcast_at = broadcast_at
        self.sink = sink
        self.adapter = adapter
        self.duty = DUTY_CYCLES[duty]
        self.advertise = advertise
        self.clock = clock
        self.on_status = on_status
        self.status_interval = status_interval
        self.status = NodeStatus(scheme)
        self._current: Broadcast | None = None
        self._next: Broadcast | None = None
        self._want_scan = True
        self._scanner = Scanner(
            self._heard, schemes=(scheme,), adapter=adapter, own_id=self._own_id, clock=clock
        )
        self._advertiser = Advertiser(
            adapter,
            pause_scan=self._pause_scan,
            resume_scan=self._resume_scan,
            main_conf=main_conf,
            retry_delay=retry_delay,
        )

    def _own_id(self, scheme: str) -> bytes | None:
        """The ID on the air right now: what the advertiser registered last (None while nothing is)."""
        on_air = self._advertiser.current
        if on_air is None or scheme != self.scheme:
            return None
        for broadcast in (self._next, self._current):
            if broadcast is not None and broadcast.advert.to_bluez() == on_air:
                return broadcast.advert.id
        return None

    def _heard(self, sighting: Sighting) -> None:
        self.status.sightings += 1
        self.status.peers.add(sighting.id)
        self.sink(sighting)

    async def _pause_scan(self) -> None:
        if self.status.scanning:
            await self._scanner.stop()
            self.status.scanning = False

    async def _resume_scan(self) -> None:
        if self._want_scan and not self.status.scanning:
            await self._scanner.start()
            self.status.scanning = True

    def _scan_window(self, now: float) -> tuple[bool, float]:
        """Whether to scan at ``now`` and when that changes next."""
        if self.duty is None:
            return True, float("inf")
        on, period = self.duty
        phase = now % period
        return (True, now - phase + on) if phase < on else (False, now - phase + period)

    async def run(self, stop: asyncio.Event) -> NodeStatus:
        """Run until ``stop`` is set; always shuts down cleanly (scan off, advert off, sink flushed)."""
        try:
            await self._start()
            # Without a status callback nothing is due between rotations and scan-window changes:
            # sleep until the next one (or until stopped), never poll.
            next_status = 0.0 if self.on_status is not None else float("inf")
            while not stop.is_set():
                now = self.clock()
                wake = await self._step(now)
                if self.on_status is not None and now >= next_status:
                    self.on_status(self.status)
                    next_status = now + self.status_interval
                timeout = min(wake, next_status) - self.clock()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        stop.wait(), None if timeout == float("inf") else max(0.01, timeout)
                    )
        finally:
            await self._shutdown()
        return self.status

    async def _start(self) -> None:
        """Advertising first, so the scan starts with an own ID on the air (every row gets its own_id)."""
        self._want_scan = self._scan_window(self.clock())[0]
        if self.advertise:
            try:
                await self._advertiser.start()
            except BluetoothUnavailableError as error:
                if error.reason not in ("unsupported", "busy"):
                    raise  # no bus, no bluetoothd, no or a powered-off adapter: scanning fails too
                self.advertise = False
                self.status.warnings.append(f"advertising impossible ({error.detail}); running scan-only")
            else:
                self.status.warnings += self._advertiser.warnings
        if not self.advertise and self._want_scan:
            await self._resume_scan()

    async def _step(self, now: float) -> float:
        """Rotate and switch the scan window as due; returns when something is due next."""
        self._want_scan, window_change = self._scan_window(now)
        if self.advertise and (self._current is None or now >= self._current.end):
            broadcast = self._next = self.broadcast_at(now)
            try:
                await self._advertiser.advertise(broadcast.advert.to_bluez())
            except BluetoothUnavailableError as error:
                self.status.advertising = False
                self.status.warnings.append(f"rotation failed, retrying: {error.detail}")
                return now + 1.0
            self._current = broadcast
            self.status.own_id, self.status.slot_end = broadcast.advert.id, float(broadcast.end)
            self.status.advertising = True
            self.status.rotations += 1
        if self._want_scan and not self.status.scanning:
            await self._resume_scan()
        elif not self._want_scan and self.status.scanning:
            await self._pause_scan()
        slot_end = self._current.end if self._current is not None else float("inf")
        return min(float(slot_end), window_change)

    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await self._pause_scan()
        with contextlib.suppress(Exception):
            await self._advertiser.stop()
        self.status.advertising = False
        flush = getattr(self.sink, "flush", None)
        if callable(flush):
            flush()
