"""JSON Lines recordings (``scan --record``) round-trip through the replay, the batching sink, and the
``proximity replay`` / ``proximity scan`` commands."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from conftest import FIXTURES
from proximity.ble.btsnoop import DATALINK_H4, legacy_report_event, write_btsnoop
from proximity.ble.recording import (
    RecordedAdvert,
    advert_from_json,
    advert_to_json,
    from_ad_bytes,
    load_capture,
    read_jsonl,
    write_jsonl,
)
from proximity.ble.replay import Replay
from proximity.ble.scanner import Scanner
from proximity.ble.sink import BatchingSink
from proximity.cli.main import main
from proximity.errors import CaptureFormatError
from proximity.log import EncounterLog
from proximity.payloads import BluezoneAdvert, GaenAdvert
from proximity.sightings import Sighting

RUN1 = FIXTURES / "btsnoop" / "run1_monitor_2001.btsnoop"
GAEN = GaenAdvert(bytes(range(16)), bytes.fromhex("400c0000"))
BLUEZONE = BluezoneAdvert(bytes.fromhex("3AA8DFC0A15682B27216FC31"))


def play(adverts: list[RecordedAdvert], record: list[RecordedAdvert] | None = None) -> list[Sighting]:
    found: list[Sighting] = []

    async def main() -> None:
        scanner = Scanner(
            found.append, replay=Replay(adverts), on_advert=record.append if record is not None else None
        )
        async with scanner:
            await scanner.run(30)

    asyncio.run(main())
    return found


def synthetic_capture(tmp_path: Path) -> Path:
    heard: list[tuple[GaenAdvert | BluezoneAdvert, int | None]] = [
        (GAEN, -61),
        (BLUEZONE, -88),
        (GAEN, None),
        (BLUEZONE, -45),
    ]
    events = [
        (1700000000.0 + i, legacy_report_event(f"2A:00:00:00:00:{i:02X}", advert.to_ad_bytes(), rssi))
        for i, (advert, rssi) in enumerate(heard)
    ]
    path = tmp_path / "synthetic.btsnoop"
    path.write_bytes(write_btsnoop(DATALINK_H4, events))
    return path


@pytest.mark.parametrize("source", ["fixture", "synthetic"])
def test_record_then_replay_gives_the_same_sightings(source: str, tmp_path: Path) -> None:
    capture = RUN1 if source == "fixture" else synthetic_capture(tmp_path)
    recorded: list[RecordedAdvert] = []
    first = play(load_capture(capture), recorded)
    path = tmp_path / "scan.jsonl"
    with path.open("w") as stream:
        assert write_jsonl(recorded, stream) == len(first)
    assert load_capture(path) == recorded
    assert play(load_capture(path)) == first
    assert len(first) == (7 if source == "fixture" else 4)


def test_json_line_shape() -> None:
    advert = from_ad_bytes(12.5, "2A:00:00:00:00:01", -70, BLUEZONE.to_ad_bytes())
    assert advert is not None
    line = json.loads(advert_to_json(advert))
    assert line == {
        "time": 12.5,
        "address": "2A:00:00:00:00:01",
        "rssi": -70,
        "service_uuids": ["00004e56-0000-1000-8000-00805f9b34fb"],
        "service_data": {},
        "manufacturer_data": {"8885": BLUEZONE.id.hex()},
        "local_name": None,
        "tx_power": None,
    }
    assert advert_from_json(advert_to_json(advert)) == advert


def test_ad_splitting_of_other_structures() -> None:
    uuid128 = bytes(range(16))
    raw = bytes([17, 0x07]) + uuid128 + b"\x05\x09node" + b"\x02\x0a\xf4" + b"\x05\x05\x01\x02\x03\x04"
    advert = from_ad_bytes(1.0, "00:00:00:00:00:01", None, raw)
    assert advert is not None
    assert advert.service_uuids == (
        "0f0e0d0c-0b0a-0908-0706-050403020100",
        "04030201-0000-1000-8000-00805f9b34fb",
    )
    assert (advert.local_name, advert.tx_power) == ("node", -12)
    assert from_ad_bytes(1.0, "00:00:00:00:00:01", None, b"\x09\xff\x00") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"address": "x"}', "missing field 'time'"),
        ('{"time": 1, "address": "x", "rssi": "-60"}', "rssi must be an integer"),
        ('{"time": 1, "address": "x", "service_data": {"fd6f": "zz"}}', "non-hexadecimal"),
        ('{"time": -1, "address": "x"}', "from 1970 to year 9998"),
        ('{"time": 1' + "0" * 400 + ', "address": "x"}', "time"),
        ('{"time": 1e999, "address": "x"}', "from 1970 to year 9998"),
        ('{"time": 1, "address": "x", "manufacturer_data": {"1' + "0" * 400 + '": "00"}}', "manufacturer"),
    ],
)
def test_bad_lines_name_the_line(text: str, message: str) -> None:
    with pytest.raises(CaptureFormatError, match=message) as caught:
        read_jsonl("\n" + text)
    assert caught.value.where == "line 2"


def test_binary_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(CaptureFormatError, match="neither btsnoop nor UTF-8"):
        load_capture(path)


def test_batching_sink_batches_and_flushes() -> None:
    batches: list[list[Sighting]] = []
    ticks = iter([0.0, 0.0, 0.5, 0.5, 0.6, 0.6, 3.0])
    sink = BatchingSink(batches.append, batch=3, max_delay=2.0, clock=lambda: next(ticks))
    sighting = Sighting("bluezone", BLUEZONE.id, 5.0)
    for _ in range(4):
        sink(sighting)
    assert [len(b) for b in batches] == [3] and sink.pending == 1
    sink.flush()
    assert [len(b) for b in batches] == [3, 1] and (sink.received, sink.flushed) == (4, 4)
    with pytest.raises(ValueError, match="batch"):
        BatchingSink(batches.append, batch=0)


def test_batching_sink_keeps_the_batch_when_writing_fails() -> None:
    def broken(batch: list[Sighting]) -> None:
        raise OSError("disk full")

    sink = BatchingSink(broken, batch=10)
    sink(Sighting("bluezone", BLUEZONE.id, 5.0))
    with pytest.raises(OSError, match="disk full"):
        sink.flush()
    assert sink.pending == 1


# -- the commands --------------------------------------------------------------------------------


def test_replay_command_writes_the_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "log.sqlite"
    assert main(["replay", str(RUN1), "--db", str(db), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sightings"] == 7 and summary["written"] == 7
    with EncounterLog(db) as log:
        rows = list(log.iter_sightings())
    assert sorted(s.id[0] for s in rows) == [0, 0, 1, 1, 1, 2, 2]
    assert {(s.own_id, s.rssi, s.scheme) for s in rows} == {(None, None, "gaen")}


def test_replay_command_reads_a_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recording = tmp_path / "scan.jsonl"
    recording.write_text("".join(advert_to_json(a) + "\n" for a in load_capture(synthetic_capture(tmp_path))))
    db = tmp_path / "log.sqlite"
    assert main(["replay", str(recording), "--db", str(db), "--scheme", "bluezone", "--speed", "1000"]) == 0
    assert "sightings" in capsys.readouterr().out
    with EncounterLog(db) as log:
        rows = list(log.iter_sightings())
    # the same Bluezone ID 2 s later is dropped, as the node drops it (one row per ID every 5 s)
    assert sorted((s.time, s.rssi) for s in rows) == [(1700000001.0, -88)]


def test_replay_command_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.btsnoop"
    bad.write_bytes(RUN1.read_bytes()[:100])
    assert main(["replay", str(bad), "--db", str(tmp_path / "x.sqlite")]) == 1
    assert "truncated record" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing"), "--db", str(tmp_path / "x.sqlite")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_scan_without_bluetooth_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    assert main(["scan", "--seconds", "1", "--record", str(tmp_path / "rec.jsonl")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines()[-1] == (
        "proximity: error: Bluetooth is not available: no D-Bus system bus "
        "(is dbus running? in a container, mount /run/dbus)"
    )


def test_replay_command_failing_midway_is_one_line_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("decoder bug")

    monkeypatch.setattr("proximity.ble.scanner.decode_bleak", broken)
    outcome: list[int] = []
    worker = threading.Thread(
        target=lambda: outcome.append(main(["replay", str(RUN1), "--db", str(tmp_path / "x.sqlite")])),
        daemon=True,
    )
    worker.start()
    worker.join(10)
    assert outcome == [1], "the replay command hung or did not fail"
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("proximity: error: replay stopped at advert 1 ")
    assert err[-1].endswith("RuntimeError: decoder bug")
    assert "Traceback" not in "\n".join(err)
