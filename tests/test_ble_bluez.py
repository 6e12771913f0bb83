"""Tier 2: bleak's real BlueZ backend and the real advertiser against a fake org.bluez on a private
dbus-daemon (tests/fake_bluez.py). Skipped, saying why, where dbus-daemon is missing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from fake_bluez import DBUS_DAEMON, FakeBluez, private_system_bus
from proximity.ble.advertiser import Advertiser, adapter_privacy
from proximity.ble.node import Node, NodeStatus
from proximity.ble.recording import load_capture
from proximity.ble.scanner import Scanner
from proximity.broadcast import Broadcast
from proximity.cli.main import main
from proximity.errors import BluetoothUnavailableError
from proximity.keyring import KeyRing, load_keyring
from proximity.log import EncounterLog
from proximity.payloads import BluezoneAdvert, GaenAdvert
from proximity.payloads.adverts import GAEN_SERVICE_UUID
from proximity.schemes import EphemeralId
from proximity.sightings import Sighting

pytestmark = pytest.mark.skipif(DBUS_DAEMON is None, reason="dbus-daemon not installed (Debian package dbus)")

AEM = bytes.fromhex("400c0000")
NO_PRIVACY = Path("/nonexistent/main.conf")


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[str]:
    with private_system_bus(tmp_path) as address:
        yield address


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 20))


def gaen(i: int) -> GaenAdvert:
    return GaenAdvert(bytes([i]) * 16, AEM)


@pytest.mark.usefixtures("bus")
def test_rotating_ids_each_under_a_new_address_seen_by_bleak() -> None:
    found: list[Sighting] = []
    fake = FakeBluez(rssi=-71)

    async def scenario() -> None:
        async with (
            fake,
            Scanner(found.append, adapter="hci0", schemes=("gaen",)),
            Advertiser("hci1", main_conf=NO_PRIVACY) as advertiser,
        ):
            for i in range(3):
                await advertiser.advertise(gaen(i).to_bluez())
                await asyncio.sleep(0.4)
            assert advertiser.registrations == 3 and advertiser.warnings == []

    run(scenario)
    assert {s.id for s in found} == {gaen(i).rpi for i in range(3)}
    assert all(s.metadata == AEM and s.scheme == "gaen" for s in found)
    assert all(s.rssi is not None and -74 <= s.rssi <= -71 for s in found)
    # Every ID under its own address, and no address carries two IDs (scanner side and air side).
    ids_by_address: dict[str, set[bytes]] = defaultdict(set)
    for s in found:
        assert s.address is not None
        ids_by_address[s.address].add(s.id)
    assert len(ids_by_address) == 3 and all(len(v) == 1 for v in ids_by_address.values())
    registered = [(address, payload) for kind, _, address, payload in fake.events if kind == "register"]
    assert len({a for a, _ in registered}) == 3
    assert [kind for kind, *_ in fake.events] == ["register", "unregister"] * 3
    assert all(
        r.type == "broadcast" and r.local_name is None and r.includes == [] for r in fake.active.values()
    )


@pytest.mark.usefixtures("bus")
def test_bluezone_advert_from_the_key_ring() -> None:
    ring = KeyRing.create(1_700_000_000.0)
    broadcast = ring.broadcast_at("bluezone", 1_700_000_000.0)
    found: list[Sighting] = []

    async def scenario() -> None:
        async with (
            FakeBluez(),
            Scanner(found.append, adapter="hci1"),
            Advertiser("hci0", main_conf=NO_PRIVACY) as advertiser,
        ):
            await advertiser.advertise(broadcast.advert.to_bluez())
            await asyncio.sleep(0.4)

    run(scenario)
    assert found and {(s.scheme, s.id, s.metadata) for s in found} == {
        ("bluezone", broadcast.advert.id, None)
    }
    assert isinstance(broadcast.advert, BluezoneAdvert)


@pytest.mark.usefixtures("bus")
def test_scanning_adapter_refuses_registration_unless_the_scan_pauses() -> None:
    fake = FakeBluez()
    found: list[Sighting] = []

    async def scenario() -> None:
        async with fake, Scanner(found.append, adapter="hci0") as scanner:
            async with Advertiser("hci0", retries=2, retry_delay=0.01, main_conf=NO_PRIVACY) as advertiser:
                with pytest.raises(
                    BluetoothUnavailableError, match="refused the advertisement 2 times"
                ) as caught:
                    await advertiser.advertise(gaen(1).to_bluez())
                assert caught.value.reason == "busy"
            async with Advertiser(
                "hci0", pause_scan=scanner.stop, resume_scan=scanner.start, main_conf=NO_PRIVACY
            ) as advertiser:
                for i in range(2):
                    await advertiser.advertise(gaen(i).to_bluez())
                assert advertiser.registrations == 2
            assert fake.adapters["hci0"].discovering  # the scan was resumed

    run(scenario)
    assert [kind for kind, *_ in fake.events] == [
        "refused",
        "refused",
        "register",
        "unregister",
        "register",
        "unregister",
    ]


@pytest.mark.usefixtures("bus")
def test_transient_refusals_are_retried() -> None:
    fake = FakeBluez(refuse_next=2)

    async def scenario() -> None:
        async with fake, Advertiser("hci0", retries=3, retry_delay=0.01, main_conf=NO_PRIVACY) as advertiser:
            await advertiser.advertise(gaen(3).to_bluez())
            assert advertiser.current == gaen(3).to_bluez()

    run(scenario)
    assert [kind for kind, *_ in fake.events] == ["refused", "refused", "register", "unregister"]


@pytest.mark.usefixtures("bus")
def test_no_bluez_on_the_bus() -> None:
    async def scenario() -> None:
        with pytest.raises(BluetoothUnavailableError, match="bluetoothd is not running") as scan_error:
            async with Scanner():
                pass
        with pytest.raises(BluetoothUnavailableError, match="bluetoothd is not running") as adv_error:
            async with Advertiser("hci0"):
                pass
        assert scan_error.value.reason == adv_error.value.reason == "no-bluez"

    run(scenario)


@pytest.mark.usefixtures("bus")
def test_powered_off_adapter() -> None:
    async def scenario() -> None:
        async with FakeBluez(powered=False):
            with pytest.raises(BluetoothUnavailableError, match="powered off") as scan_error:
                async with Scanner():
                    pass
            with pytest.raises(BluetoothUnavailableError, match="powered off") as adv_error:
                async with Advertiser("hci0"):
                    pass
        assert scan_error.value.reason == adv_error.value.reason == "powered-off"

    run(scenario)


@pytest.mark.usefixtures("bus")
def test_missing_adapter_and_missing_advertising_manager() -> None:
    async def scenario() -> None:
        async with FakeBluez(advertising=False):
            with pytest.raises(BluetoothUnavailableError, match="no Bluetooth adapter") as scan_error:
                async with Scanner(adapter="hci7"):
                    pass
            assert scan_error.value.reason == "no-adapter" and scan_error.value.adapter == "hci7"
            with pytest.raises(BluetoothUnavailableError, match="no such Bluetooth adapter"):
                async with Advertiser("hci7"):
                    pass
            with pytest.raises(BluetoothUnavailableError, match="no LE advertising manager") as adv_error:
                async with Advertiser("hci0"):
                    pass
            assert adv_error.value.reason == "unsupported"

    run(scenario)


@pytest.mark.usefixtures("bus")
def test_privacy_on_gives_a_warning(tmp_path: Path) -> None:
    conf = tmp_path / "main.conf"
    conf.write_text("[General]\nName = test\nPrivacy = device\n")
    assert adapter_privacy(conf) == "device"
    assert adapter_privacy(NO_PRIVACY) is None
    (tmp_path / "off.conf").write_text("[General]\n#Privacy = device\n")
    assert adapter_privacy(tmp_path / "off.conf") == "off"

    async def scenario() -> None:
        async with FakeBluez(), Advertiser("hci0", main_conf=conf) as advertiser:
            assert len(advertiser.warnings) == 1 and "linkable" in advertiser.warnings[0]

    run(scenario)


def test_advertiser_refuses_connectable_types_and_use_before_start() -> None:
    advertiser = Advertiser("hci0")
    with pytest.raises(RuntimeError, match="start"):
        asyncio.run(advertiser.advertise(gaen(1).to_bluez()))
    with pytest.raises(ValueError, match="retries"):
        Advertiser("hci0", retries=0)


# -- two nodes ------------------------------------------------------------------------------------


def one_second_slots(tag: int) -> Callable[[float], Broadcast]:
    """IDs that change every whole second (real nodes rotate every 10-15 min; tests cannot wait)."""

    def broadcast_at(at: float) -> Broadcast:
        start = int(at)
        advert = GaenAdvert(bytes([tag]) + start.to_bytes(15, "big"), AEM)
        return Broadcast(EphemeralId("gaen", advert.rpi, start, start + 1), advert)

    return broadcast_at


@pytest.mark.usefixtures("bus")
def test_two_nodes_log_each_others_rotating_ids() -> None:
    fake = FakeBluez(tick=0.2)
    logs: dict[str, list[Sighting]] = {"hci0": [], "hci1": []}
    statuses: dict[str, NodeStatus] = {}

    async def scenario() -> None:
        async with fake:
            stop = asyncio.Event()
            nodes = {
                name: Node(
                    "gaen", one_second_slots(tag), logs[name].append, adapter=name, main_conf=NO_PRIVACY
                )
                for name, tag in (("hci0", 0xA0), ("hci1", 0xB0))
            }
            tasks = {name: asyncio.create_task(node.run(stop)) for name, node in nodes.items()}
            await asyncio.sleep(3.5)
            stop.set()
            for name, task in tasks.items():
                statuses[name] = await task

    run(scenario)
    assert {s.id[0] for s in logs["hci0"]} == {0xB0} and {s.id[0] for s in logs["hci1"]} == {0xA0}
    for name, tag in (("hci0", 0xA0), ("hci1", 0xB0)):
        heard = {s.id for s in logs[name]}
        assert len(heard) >= 3, f"{name} heard only {len(heard)} of the other's IDs"
        assert (
            statuses[name].rotations >= 3 and not statuses[name].scanning and not statuses[name].advertising
        )
        # Each sighting is tagged with the ID this node broadcast at the time.
        for s in logs[name]:
            assert s.own_id is not None and s.own_id[0] == tag
            assert int.from_bytes(s.own_id[1:], "big") in (int(s.time), int(s.time) - 1)
    # On the air: every registration got its own address, and none was refused (scan paused for it).
    registered = [
        (adapter, address, payload) for kind, adapter, address, payload in fake.events if kind == "register"
    ]
    assert len({address for _, address, _ in registered}) == len(registered) >= 6
    assert "refused" not in [kind for kind, *_ in fake.events]
    by_address: dict[str, set[bytes]] = defaultdict(set)
    for s in logs["hci0"] + logs["hci1"]:
        assert s.address is not None
        by_address[s.address].add(s.id)
    assert all(len(ids) == 1 for ids in by_address.values())
    assert not fake.active  # both nodes took their adverts off the air on shutdown


@pytest.mark.usefixtures("bus")
def test_node_without_advertising_manager_runs_scan_only() -> None:
    async def scenario() -> None:
        async with FakeBluez(advertising=False):
            stop = asyncio.Event()
            heard: list[Sighting] = []
            node = Node("gaen", one_second_slots(1), heard.append, adapter="hci0", main_conf=NO_PRIVACY)
            task = asyncio.create_task(node.run(stop))
            await asyncio.sleep(0.3)
            stop.set()
            status = await task
        assert status.rotations == 0 and not status.advertising
        assert status.warnings == [
            "advertising impossible (this adapter has no LE advertising manager (BlueZ >= 5.48 needed); "
            "scan-only); running scan-only"
        ]

    run(scenario)


@pytest.mark.usefixtures("bus")
def test_node_command_two_processes_sigterm_flushes_both_logs(tmp_path: Path) -> None:
    """`proximity node` twice (hci0, hci1) against the fake in its own process; SIGTERM stops each cleanly."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    fake = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "fake_bluez.py")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert fake.stdout is not None and fake.stdout.readline().strip() == "ready"
        nodes = {}
        for adapter in ("hci0", "hci1"):
            ring = tmp_path / f"{adapter}.keyring.json"
            assert main(["keys", "init", "--keyring", str(ring)]) == 0
            nodes[adapter] = subprocess.Popen(
                [sys.executable, "-m", "proximity", "node", "--scheme", "bluezone", "--adapter", adapter,
                 "--db", str(tmp_path / f"{adapter}.sqlite"), "--keyring", str(ring)],
                stderr=subprocess.PIPE, text=True, env=env,
            )  # fmt: skip
        for adapter, process in nodes.items():  # each prints its first status line once it is on the air
            assert process.stderr is not None and process.stderr.readline().startswith("node: bluezone")
            assert process.stderr.readline().strip(), f"the node on {adapter} stopped before its status"
        _wait_for_rows([tmp_path / f"{adapter}.sqlite" for adapter in nodes])
        for process in nodes.values():
            process.send_signal(signal.SIGTERM)
        errors = {adapter: process.communicate(timeout=20)[1] for adapter, process in nodes.items()}
        assert all(process.returncode == 0 for process in nodes.values()), errors
    finally:
        fake.terminate()
        fake.communicate(timeout=20)
    for adapter, other in (("hci0", "hci1"), ("hci1", "hci0")):
        assert re.search(r"node stopped: [12] rotations", errors[adapter]), errors[adapter]
        other_ring = load_keyring(tmp_path / f"{other}.keyring.json")
        own_ring = load_keyring(tmp_path / f"{adapter}.keyring.json")
        with EncounterLog(tmp_path / f"{adapter}.sqlite") as log:
            rows = list(log.iter_sightings())
        assert rows, errors[adapter]
        for row in rows:
            assert row.id == other_ring.broadcast_at("bluezone", row.time).advert.id
            assert row.own_id == own_ring.broadcast_at("bluezone", row.time).advert.id
        # Bluezone's rule: at most one row per contact ID every 5 s.
        times = sorted(row.time for row in rows)
        assert all(b - a >= 5.0 for a, b in itertools.pairwise(times))


@pytest.mark.usefixtures("bus")
@pytest.mark.parametrize(("phase", "scanning"), [(1.0, True), (10.0, False)])
def test_gaen_duty_cycle_scans_4_seconds_in_240(phase: float, scanning: bool) -> None:
    seen: list[bool] = []
    heard: list[Sighting] = []

    async def scenario() -> None:
        async with FakeBluez():
            stop = asyncio.Event()
            node = Node(
                "gaen",
                one_second_slots(1),
                heard.append,
                duty="gaen",
                advertise=False,
                clock=lambda: 240.0 * 7_000_000 + phase,
                on_status=lambda status: seen.append(status.scanning),
            )
            task = asyncio.create_task(node.run(stop))
            await asyncio.sleep(0.2)
            stop.set()
            await task

    run(scenario)
    assert seen and set(seen) == {scanning}
    with pytest.raises(ValueError, match="duty"):
        Node("gaen", one_second_slots(1), heard.append, duty="sometimes")


@pytest.mark.usefixtures("bus")
def test_scan_command_live_json_and_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`proximity scan --json --record` on hci0 hears a `proximity node` advertising on hci1."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    fake = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "fake_bluez.py")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    ring = tmp_path / "keyring.json"
    record = tmp_path / "heard.jsonl"
    try:
        assert fake.stdout is not None and fake.stdout.readline().strip() == "ready"
        assert main(["keys", "init", "--keyring", str(ring)]) == 0
        node = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proximity",
                "node",
                "--scheme",
                "gaen",
                "--adapter",
                "hci1",
                "--db",
                str(tmp_path / "node.sqlite"),
                "--keyring",
                str(ring),
                "--seconds",
                "120",
            ],
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip  (120 s: a safety net only; SIGTERM below stops it)
        # wait on the node itself, not a sleep: its banner, then its first status line, which it prints
        # once it advertises with its SIGTERM handler installed (a loaded machine starts it slowly)
        assert node.stderr is not None and node.stderr.readline().startswith("node: gaen on hci1")
        assert node.stderr.readline().strip(), "the node stopped before its first status line"
        capsys.readouterr()
        assert main(["scan", "--adapter", "hci0", "--seconds", "1.0", "--json", "--record", str(record)]) == 0
        node.send_signal(signal.SIGTERM)
        assert node.communicate(timeout=20) and node.returncode == 0
    finally:
        fake.terminate()
        fake.communicate(timeout=20)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = load_keyring(ring).broadcast_at("gaen", lines[0]["time"]).advert
    assert isinstance(expected, GaenAdvert)
    assert {(x["scheme"], x["id"], x["metadata"]) for x in lines} == {
        ("gaen", expected.rpi.hex(), expected.aem.hex())
    }
    assert all(isinstance(x["rssi"], int) for x in lines)
    recorded = load_capture(record)
    assert len(recorded) == len(lines) and recorded[0].service_data == {GAEN_SERVICE_UUID: expected.payload}


@pytest.mark.usefixtures("bus")
def test_no_back_off_after_the_last_refused_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBluez(refuse_next=5)
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def spy(delay: float, *args: object) -> None:
        if delay in (0.0125, 0.025, 0.05):  # the advertiser's back-off delays; others pass unrecorded
            delays.append(delay)
        await real_sleep(delay)

    monkeypatch.setattr("proximity.ble.advertiser.asyncio.sleep", spy)

    async def scenario() -> None:
        async with (
            fake,
            Advertiser("hci0", retries=3, retry_delay=0.0125, main_conf=NO_PRIVACY) as advertiser,
        ):
            with pytest.raises(BluetoothUnavailableError, match="refused the advertisement 3 times"):
                await advertiser.advertise(gaen(4).to_bluez())

    run(scenario)
    assert [kind for kind, *_ in fake.events] == ["refused"] * 3
    assert delays == [0.0125, 0.025]  # between attempts only: none before raising


@pytest.mark.parametrize("with_status", [False, True])
def test_idle_node_sleeps_until_something_is_due(with_status: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing due for an hour: the loop must wait (for stop, or the next status line), not poll."""
    statuses: list[str] = []
    node = Node(
        "gaen",
        one_second_slots(1),
        lambda sighting: None,
        main_conf=NO_PRIVACY,
        on_status=(lambda status: statuses.append("status")) if with_status else None,
        status_interval=0.1,
    )
    steps: list[float] = []

    async def nothing() -> None:
        return None

    async def step(now: float) -> float:
        steps.append(now)
        return now + 3600.0

    monkeypatch.setattr(node, "_start", nothing)
    monkeypatch.setattr(node, "_shutdown", nothing)
    monkeypatch.setattr(node, "_step", step)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(node.run(stop))
        await asyncio.sleep(0.5)
        stop.set()
        await task

    run(scenario)
    if with_status:  # woken for each status line (every 0.1 s), not 100 times a second
        assert 2 <= len(steps) <= 10 and len(statuses) == len(steps)
    else:
        assert len(steps) == 1


def _wait_for_rows(paths: list[Path], timeout: float = 120.0) -> None:
    """Until every log holds a sighting (each node heard the other; rows land within the sink's 2 s
    batching delay). The timeout is a safety net for a hung node, not a budget."""
    deadline = time.monotonic() + timeout
    while True:
        counts = []
        for path in paths:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                try:
                    counts.append(db.execute("SELECT count(*) FROM sightings").fetchone()[0])
                except sqlite3.OperationalError:  # not created yet
                    counts.append(0)
        if all(counts):
            return
        assert time.monotonic() < deadline, f"no sightings logged after {timeout:g} s: {counts}"
        time.sleep(0.1)
