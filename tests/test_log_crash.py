"""The encounter log survives a writer killed mid-ingest, and readers run beside a writer."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fake_bluez import DBUS_DAEMON
from proximity.errors import EncounterLogError
from proximity.log import EncounterLog

BATCH = 2_000

# The writer reports a batch number on stdout only after that batch's transaction committed.
WRITER = """
import sys
import numpy as np
from proximity.log import EncounterLog

path, run, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(run)
log = EncounterLog(path)
for i in range(1_000_000):
    number = run * 1_000_000 + i
    ids = rng.integers(0, 256, (batch, 16), dtype=np.uint8)
    times = 1.6e9 + number + np.arange(batch) / batch
    rssi = rng.integers(-100, -40, batch).astype(float)
    log.add_columns("gaen", ids, times, rssi, address=[str(number)] * batch)
    print(number, flush=True)
"""


def _start_writer(script: Path, db: Path, run: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), str(db), str(run), str(BATCH)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_mid_ingest_loses_no_committed_batch(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db = tmp_path / "log.db"
    reported: set[int] = set()
    chooser = random.Random(4)
    for run in range(20):
        writer = _start_writer(script, db, run)
        assert writer.stdout is not None
        first = writer.stdout.readline()  # the writer is now ingesting
        assert first, writer.stderr.read() if writer.stderr else "writer died"
        time.sleep(chooser.uniform(0.0, 0.12))
        os.kill(writer.pid, signal.SIGKILL)
        out, _ = writer.communicate()
        assert writer.returncode == -signal.SIGKILL
        lines = (first + out).split("\n")
        reported.update(int(line) for line in lines[:-1])  # the last piece may be a torn line
    with EncounterLog(db, create=False) as log:
        assert log.integrity_check() == "ok"
        counts = dict(log._db.execute("SELECT address, count(*) FROM sightings GROUP BY address").fetchall())
    stored = {int(address): n for address, n in counts.items()}
    assert reported <= set(stored), f"lost committed batches: {sorted(reported - set(stored))[:5]}"
    assert set(stored.values()) == {BATCH}, "a batch was stored in part"
    assert len(reported) >= 20


def test_readers_beside_a_writer_never_see_database_locked(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db = tmp_path / "log.db"
    EncounterLog(db).close()
    writer = _start_writer(script, db, 1)
    try:
        assert writer.stdout is not None
        writer.stdout.readline()
        seen = []
        deadline = time.monotonic() + 2.0
        with EncounterLog(db) as reader:
            while time.monotonic() < deadline:
                seen.append(len(reader.observations("gaen")))
                assert reader.stats().sightings % BATCH == 0  # a reader sees whole batches only
        assert seen == sorted(seen) and seen[-1] > seen[0]
        # a second writer waits for the lock instead of failing
        with EncounterLog(db) as other:
            assert other.add_columns("bluezone", [bytes(12)], [1.7e9], [-60.0]).written == 1
    finally:
        writer.kill()
        writer.communicate()


# -- replay and node writes (issue 15): a few kills in `make test`, 100 in `make fuzz` (FUZZ_KILLS) ------

KILLS = int(os.environ.get("FUZZ_KILLS", "3"))
REPLAYED = 40_000


def _report_kills(name: str, **numbers: int) -> None:
    """With FUZZ_REPORT set (make fuzz), keep the kill test's numbers beside the fuzz report."""
    if os.environ.get("FUZZ_REPORT"):
        out = Path(os.environ["FUZZ_REPORT"]).parent / f"kills-{name}.json"
        out.write_text(json.dumps(numbers) + "\n")


def _count(db: Path) -> int:
    """Rows committed, as a separate reader sees them (0 before the log exists)."""
    if not db.exists():
        return 0
    try:
        with EncounterLog(db, create=False, timeout=30.0) as log:
            return log.stats().sightings
    except EncounterLogError:
        return 0  # created but not yet initialised by the writer


def test_sigkill_mid_replay_loses_no_committed_row(tmp_path: Path) -> None:
    """`proximity replay` killed at random moments: rows committed before (a live scan's) are all kept,
    the log stays sound, and the next whole replay leaves exactly one copy of the capture."""
    from proximity.ble.recording import RecordedAdvert, write_jsonl
    from proximity.payloads import GaenAdvert
    from proximity.payloads.adverts import GAEN_SERVICE_UUID

    capture = tmp_path / "capture.jsonl"
    with capture.open("w") as handle:
        write_jsonl(
            (
                RecordedAdvert(
                    1.7e9 + i * 0.01,
                    "2A:00:00:00:00:01",
                    -60,
                    {GAEN_SERVICE_UUID: GaenAdvert(i.to_bytes(16, "big"), bytes(4)).payload},
                    service_uuids=(GAEN_SERVICE_UUID,),
                )
                for i in range(REPLAYED)
            ),
            handle,
        )
    db = tmp_path / "log.db"
    with EncounterLog(db) as log:  # what a live scan committed before: must survive every kill
        log.add_columns("bluezone", np.zeros((1000, 12), np.uint8), 1.6e9 + np.arange(1000.0), None)
    command = [sys.executable, "-m", "proximity", "replay", str(capture), "--db", str(db)]
    # how long a replay runs here once it has begun: the kills are spread over that
    scratch = subprocess.Popen(
        [*command[:-1], str(tmp_path / "scratch.db")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert scratch.stderr is not None and "replaying" in scratch.stderr.readline()
    began = time.monotonic()
    scratch.communicate()
    whole = time.monotonic() - began
    assert scratch.returncode == 0
    chooser = random.Random(15)
    killed_after_a_commit = finished_first = 0
    for _ in range(KILLS):
        replay = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert replay.stderr is not None
        assert "replaying" in replay.stderr.readline()  # the log is open and the replay has begun
        time.sleep(chooser.uniform(0.0, whole))
        os.kill(replay.pid, signal.SIGKILL)
        replay.communicate()
        with EncounterLog(db, create=False) as log:
            if log._db.execute("SELECT count(*) FROM sources WHERE complete = 1").fetchone()[0]:
                # it finished before the kill: check it whole, then forget it so the next run replays
                finished_first += 1
                assert log.stats().by_scheme == {"bluezone": 1000, "gaen": REPLAYED}
                log._db.execute("DELETE FROM sightings WHERE source IS NOT NULL")
                log._db.execute("DELETE FROM sources")
        count = _count(db)
        assert count >= 1000
        killed_after_a_commit += count > 1000
    assert subprocess.run(command, capture_output=True).returncode == 0
    with EncounterLog(db, create=False) as log:
        assert log.integrity_check() == "ok"
        stats = log.stats()
    assert stats.by_scheme == {"bluezone": 1000, "gaen": REPLAYED}, stats
    _report_kills(
        "replay",
        kills=KILLS,
        killed_after_a_commit=killed_after_a_commit,
        finished_first=finished_first,
        rows_lost=0,
    )


@pytest.mark.skipif(DBUS_DAEMON is None, reason="dbus-daemon not installed (Debian package dbus)")
def test_sigkill_mid_node_write_loses_no_committed_batch(tmp_path: Path) -> None:
    """`proximity node` on the fake-BlueZ tier, killed at random moments while it logs: every row a
    reader saw committed before the kill is still there after it, and the log stays sound."""
    from fake_bluez import private_system_bus
    from proximity.cli.main import main

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    db = tmp_path / "node.sqlite"
    chooser = random.Random(16)
    committed_before_kill = []
    with private_system_bus(tmp_path):
        env["DBUS_SYSTEM_BUS_ADDRESS"] = os.environ["DBUS_SYSTEM_BUS_ADDRESS"]
        fake = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "fake_bluez.py")],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        rings = {adapter: tmp_path / f"{adapter}.json" for adapter in ("hci0", "hci1")}
        advertiser = None
        try:
            assert fake.stdout is not None and fake.stdout.readline().strip() == "ready"
            for ring in rings.values():
                assert main(["keys", "init", "--keyring", str(ring)]) == 0
            advertiser = subprocess.Popen(
                [sys.executable, "-m", "proximity", "node", "--scheme", "gaen", "--adapter", "hci1",
                 "--db", str(tmp_path / "other.sqlite"), "--keyring", str(rings["hci1"])],
                stderr=subprocess.DEVNULL, env=env,
            )  # fmt: skip
            for _ in range(KILLS):
                node = subprocess.Popen(
                    [sys.executable, "-m", "proximity", "node", "--scheme", "gaen", "--adapter", "hci0",
                     "--scan-only", "--db", str(db), "--keyring", str(rings["hci0"])],
                    stderr=subprocess.DEVNULL, env=env,
                )  # fmt: skip
                before = _count(db)
                deadline = time.monotonic() + 60  # safety net only: a batch normally lands within ~3 s
                while _count(db) == before and node.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert node.poll() is None, "the node exited on its own"
                time.sleep(chooser.uniform(0.0, 2.5))
                seen = _count(db)  # committed: a separate reader sees it
                os.kill(node.pid, signal.SIGKILL)
                node.wait()
                committed_before_kill.append(seen)
                assert _count(db) >= seen
        finally:
            for process in (advertiser, fake):
                if process is not None:
                    process.terminate()
                    process.communicate(timeout=20)
    with EncounterLog(db, create=False) as log:
        assert log.integrity_check() == "ok"
        final = log.stats().sightings
    assert final >= max(committed_before_kill) > 0
    _report_kills("node", kills=KILLS, rows_at_last_kill=max(committed_before_kill), rows_lost=0)
