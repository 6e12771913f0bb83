"""Issue 15: every input path answers bad input with one clear line, and no command destroys what is
not its own. One regression test per finding (the fuzz suite in tests/fuzz/ covers the rest)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import socket
import sqlite3
import stat
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import proximity.errors as errors_module
from conftest import FIXTURES
from proximity import load_keyring, save_keyring
from proximity.ble.btsnoop import DATALINK_H4, EPOCH_OFFSET_US, legacy_report_event, write_btsnoop
from proximity.ble.recording import advert_from_json, advert_to_json, load_capture, read_jsonl
from proximity.cli.main import main
from proximity.cli.match import read_observed_csv
from proximity.errors import (
    BtsnoopError,
    CaptureFormatError,
    EncounterLogCorruptError,
    EncounterLogError,
    KeyRingCorruptError,
    MalformedKeyFileError,
    NotAKeyRingError,
    ObservationsFileError,
    PayloadTypeError,
    ProximityError,
    ResourceLimitError,
)
from proximity.keyfiles.bluezone_json import parse_records
from proximity.keyfiles.gaen_export import parse_export_zip, write_export
from proximity.keyring import KeyRing
from proximity.keyring.store import _checksum, dumps_keyring, loads_keyring, wipe_keyring
from proximity.log import EncounterLog
from proximity.log.schema import APPLICATION_ID, MIGRATIONS
from proximity.payloads import GaenAdvert
from proximity.payloads.adverts import BLUEZONE_COMPANY_ID, GAEN_SERVICE_UUID, decode_bleak
from proximity.radio import RSSI_NOT_AVAILABLE, RSSI_RANGE, rssi_problem
from proximity.schemes.bluezone import MAX_RECORD_DAYS, BluezoneBaseKey
from proximity.schemes.gaen import TemporaryExposureKey
from proximity.schemes.published import DiagnosisKey
from proximity.sightings import InvalidSightingError, Sighting
from proximity.sim.scenario import ScenarioError, estimated_memory, load_scenario, scenario_from_dict
from proximity.times import LATEST_TIME, format_utc

T0 = 1_700_000_000.0
RUN1 = FIXTURES / "btsnoop" / "run1_monitor_2001.btsnoop"


def one_line(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 1) -> str:
    """Run a command that must fail with ``code`` and exactly one line on stderr (no traceback)."""
    assert main(list(argv)) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("proximity: error: "), err
    return err[0]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def within(seconds: float, work: Callable[[], object]) -> object:
    """Run ``work`` in a thread; fail (instead of hanging the suite) if it blocks. A safety net only."""
    box: list[object] = []

    def target() -> None:
        try:
            box.append(work())
        except BaseException as error:
            box.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked"
    return box[0]


# -- key ring: only its own file is ever deleted ---------------------------------------------------


def test_keys_wipe_refuses_a_file_that_is_not_a_key_ring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# not a key ring\n")
    line = one_line(capsys, "keys", "wipe", "--keyring", str(readme), "--yes")
    assert "not a proximity key ring" in line and readme.read_text() == "# not a key ring\n"
    with pytest.raises(NotAKeyRingError):
        wipe_keyring(readme)


def test_keys_wipe_removes_a_damaged_ring_that_is_still_ours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = tmp_path / "ring.json"
    text = dumps_keyring(KeyRing.create(T0))
    ring.write_text(text[: len(text) // 2])  # torn in the middle: still names its format
    assert main(["keys", "wipe", "--keyring", str(ring), "--yes"]) == 0
    assert not ring.exists()


def test_keys_wipe_refuses_a_symlink_and_a_fifo(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("x")
    link = tmp_path / "ring.json"
    link.symlink_to(target)
    with pytest.raises(NotAKeyRingError):
        wipe_keyring(link)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert isinstance(within(30, lambda: wipe_keyring(fifo)), NotAKeyRingError)
    assert target.exists() and fifo.exists()


def test_show_on_a_foreign_file_does_not_suggest_wiping_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "photo.jpg"
    other.write_bytes(b"\xff\xd8\xff\xe0 not text")
    line = one_line(capsys, "keys", "show", "--keyring", str(other))
    assert "wipe" not in line
    ours = tmp_path / "ring.json"
    body = json.loads(dumps_keyring(KeyRing.create(T0)))
    body["sha256"] = "0" * 64
    ours.write_text(json.dumps(body))
    assert "keys wipe" in one_line(capsys, "keys", "show", "--keyring", str(ours))


def test_a_fifo_at_the_key_ring_path_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "ring.json"
    os.mkfifo(fifo)
    result = within(30, lambda: load_keyring(fifo))
    assert isinstance(result, KeyRingCorruptError) and "regular file" in str(result)


def test_missing_parents_of_the_key_ring_are_created_0700(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ring.json"
    save_keyring(path, KeyRing.create(T0), create=True)
    assert mode(tmp_path / "a") == 0o700 and mode(tmp_path / "a" / "b") == 0o700
    assert mode(path) == 0o600


def test_keys_roll_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "vault" / "ring.json"
    real.parent.mkdir()
    save_keyring(real, KeyRing.create(T0), create=True)
    link = tmp_path / "ring.json"
    link.symlink_to(real)
    assert main(["keys", "roll", "--keyring", str(link), "--at", str(T0 + 3 * 86400), "--json"]) == 0
    assert link.is_symlink() and len(load_keyring(real).gaen_keys) > 1


def test_a_key_ring_with_a_valid_checksum_but_a_fractional_setting_is_corrupt() -> None:
    document = json.loads(dumps_keyring(KeyRing.create(T0)))
    document["body"]["settings"]["bluezone_ids_per_day"] = 1.5
    document["sha256"] = _checksum(document["body"])
    with pytest.raises(KeyRingCorruptError, match="bluezone_ids_per_day must be an int"):
        loads_keyring(json.dumps(document))


@pytest.mark.parametrize("text", ["[" * 100_000, '{"format": ' + "1" * 5000 + "}"])
def test_key_ring_json_bombs_are_corrupt(text: str) -> None:
    with pytest.raises(KeyRingCorruptError):
        loads_keyring(text)


# -- encounter log: private files, nothing switched on a failed migration, typed damage -----------


def test_log_its_wal_and_exports_are_private(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "log.db"
    with EncounterLog(db) as log:
        log.add([Sighting("gaen", bytes(16), T0, -60)])
        for suffix in ("", "-wal", "-shm"):
            assert mode(Path(f"{db}{suffix}")) == 0o600, suffix
    out = tmp_path / "seen.csv"
    assert main(["log", "export", "--db", str(db), "--out", str(out)]) == 0
    assert mode(out) == 0o600


def test_a_log_whose_migration_fails_is_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    raw = sqlite3.connect(db)
    raw.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    raw.execute("CREATE TABLE exposures (x)")  # in the way of migration 0 -> 1
    raw.commit()
    raw.close()
    before = db.read_bytes()
    with pytest.raises(EncounterLogCorruptError, match="left untouched"):
        EncounterLog(db)
    assert db.read_bytes() == before and not Path(f"{db}-wal").exists()
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    raw.close()


def _damage(db: Path, sql: str, *params: object) -> None:
    raw = sqlite3.connect(db)
    raw.execute(sql, params)
    raw.commit()
    raw.close()


def test_an_unknown_scheme_code_is_a_damaged_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "log.db"
    with EncounterLog(db) as log:
        log.add([Sighting("gaen", bytes(16), T0, -60)])
    _damage(db, "UPDATE sightings SET scheme = 7")
    assert "unknown scheme code 7" in one_line(capsys, "log", "export", "--db", str(db))
    assert "unknown scheme code 7" in one_line(capsys, "log", "stats", "--db", str(db))


def test_a_short_id_row_is_a_damaged_log_in_match(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    with EncounterLog(db) as log:
        log.add([Sighting("bluezone", bytes(12), T0, -60)] * 3)
    _damage(db, "UPDATE sightings SET observed_id = ? WHERE id = 2", b"12345")
    with EncounterLog(db) as log, pytest.raises(EncounterLogCorruptError, match="row 2: a bluezone ID"):
        log.observations("bluezone")


def test_a_damaged_page_in_log_export_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "log.db"
    with EncounterLog(db) as log:
        log.add_columns("gaen", np.zeros((20_000, 16), np.uint8), T0 + np.arange(20_000.0), None)
        log._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    page = 4096
    data[10 * page : 12 * page] = b"\xa5" * (2 * page)  # two pages of sightings overwritten
    db.write_bytes(bytes(data))
    line = one_line(capsys, "log", "export", "--db", str(db), "--out", str(tmp_path / "x.csv"))
    assert "cannot be used" in line or "encounter log" in line


def test_a_socket_at_db_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        assert "not a regular file" in one_line(capsys, "log", "stats", "--db", str(path))
    finally:
        server.close()


def _capture(tmp_path: Path, count: int, *, bluezone_every: float = 0.0) -> Path:
    """A btsnoop capture of ``count`` GAEN adverts with distinct IDs, one a second."""
    events = [
        (
            T0 + i,
            legacy_report_event(
                "2A:00:00:00:00:01", GaenAdvert(i.to_bytes(16, "big"), bytes(4)).to_ad_bytes(), -60
            ),
        )
        for i in range(count)
    ]
    path = tmp_path / "capture.btsnoop"
    path.write_bytes(write_btsnoop(DATALINK_H4, events))
    return path


def test_replaying_a_capture_twice_adds_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = _capture(tmp_path, 30)
    db = tmp_path / "log.db"
    for expected in (30, 0):
        assert main(["replay", str(capture), "--db", str(db), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["written"] == expected
    with EncounterLog(db) as log:
        assert log.stats().sightings == 30


def test_a_replay_killed_midway_is_redone_whole(tmp_path: Path) -> None:
    capture = _capture(tmp_path, 10)
    digest = hashlib.sha256(capture.read_bytes()).digest() + b"None"
    db = tmp_path / "log.db"
    with EncounterLog(db) as log:
        source = log.begin_source(digest, "capture")
        assert source is not None
        log.add([Sighting("gaen", (0).to_bytes(16, "big"), T0, -60)], source=source)  # then "killed"
    assert main(["replay", str(capture), "--db", str(db)]) == 0
    with EncounterLog(db) as log:
        assert log.stats().sightings == 10


def test_replay_applies_the_bluezone_five_second_rule(tmp_path: Path) -> None:
    from proximity.payloads import BluezoneAdvert

    advert = BluezoneAdvert(bytes(12)).to_ad_bytes()
    events = [(T0 + t, legacy_report_event("2A:00:00:00:00:01", advert, -70)) for t in (0, 1, 2, 6, 7, 12)]
    capture = tmp_path / "bz.btsnoop"
    capture.write_bytes(write_btsnoop(DATALINK_H4, events))
    db = tmp_path / "log.db"
    assert main(["replay", str(capture), "--db", str(db)]) == 0
    with EncounterLog(db) as log:
        assert sorted(s.time - T0 for s in log.iter_sightings()) == [0, 6, 12]


def test_a_version_1_log_holding_duplicates_migrates(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    raw = sqlite3.connect(db)
    raw.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for statement in MIGRATIONS[0]:
        assert isinstance(statement, str)
        raw.execute(statement)
    raw.execute("PRAGMA user_version = 1")
    raw.executemany(
        "INSERT INTO sightings (scheme, observed_id, time) VALUES (0, ?, ?)", [(bytes(16), T0)] * 2
    )
    raw.commit()
    raw.close()
    with EncounterLog(db) as log:
        assert log.stats().sightings == 2 and log.stats().schema_version == len(MIGRATIONS)


# -- radio limits and the observed CSV --------------------------------------------------------------


@pytest.mark.parametrize("rssi", ["127", "inf", "1e308", "-1000", "nan", "-60.5"])
def test_csv_rssi_outside_the_radio_limits_is_refused(tmp_path: Path, rssi: str) -> None:
    csv = tmp_path / "seen.csv"
    csv.write_text(f"id,time,rssi\n{'ab' * 16},{T0},-60\n{'ab' * 16},{T0},{rssi}\n")
    with pytest.raises(ObservationsFileError) as caught:
        read_observed_csv(str(csv))
    assert caught.value.row == 2 and caught.value.field == "rssi"


def test_radio_limits_are_shared_by_sighting_log_and_csv() -> None:
    assert rssi_problem(RSSI_NOT_AVAILABLE) and rssi_problem(RSSI_RANGE[1] + 1) and rssi_problem(-1000)
    assert rssi_problem(RSSI_RANGE[0]) is None and rssi_problem(-60) is None
    with pytest.raises(InvalidSightingError, match="not available"):
        Sighting("gaen", bytes(16), T0, RSSI_NOT_AVAILABLE)


def test_csv_with_excel_bom_crlf_and_iso_times(tmp_path: Path) -> None:
    csv = tmp_path / "seen.csv"
    csv.write_bytes(b"\xef\xbb\xbfid,time,rssi\r\n" + b"ab" * 16 + b",2023-11-14T22:13:20Z,-60\r\n")
    observed = read_observed_csv(str(csv))
    assert observed["gaen"].times.tolist() == [T0]


def test_csv_in_milliseconds_is_refused_not_silently_unmatched(tmp_path: Path) -> None:
    csv = tmp_path / "seen.csv"
    csv.write_text(f"id,time\n{'ab' * 16},{int(T0 * 1000)}\n")
    with pytest.raises(ObservationsFileError, match="milliseconds"):
        read_observed_csv(str(csv))
    csv.write_text(f"id,time\n{'ab' * 16},{int(1.2e11)}\n{'ab' * 16},{int(1.3e11)}\n")
    with pytest.raises(ObservationsFileError, match="milliseconds"):
        read_observed_csv(str(csv))


@pytest.mark.parametrize(
    "content",
    [
        b"id,time\n\xff\xfe\x00garbage\n",  # not UTF-8
        b"id,time\n" + b"a" * 200_000 + b",1\n",  # a field beyond the csv module's limit
        (FIXTURES / "gaen-server-example-export.zip").read_bytes(),  # a binary file
        b"id,time\n" + b"ab" * 16 + b",1,2,3\n",  # more fields than the header
    ],
)
def test_unreadable_csv_is_one_typed_error(tmp_path: Path, content: bytes) -> None:
    csv = tmp_path / "seen.csv"
    csv.write_bytes(content)
    with pytest.raises(ObservationsFileError, match=str(csv)):
        read_observed_csv(str(csv))


# -- key files, captures, times ---------------------------------------------------------------------


def test_a_bluezone_record_may_not_span_years(tmp_path: Path) -> None:
    record = BluezoneBaseKey(bytes(32), 1596240000).record(1596240000.0)
    far = {**record.to_record(), "time_end": 1596240000000}
    with pytest.raises(MalformedKeyFileError, match=f"at most {MAX_RECORD_DAYS} days"):
        parse_records(json.dumps({"data": [far]}))


@pytest.mark.parametrize("text", ["[" * 100_000, '{"data": [' + "1" * 5000 + "]}"])
def test_bluezone_json_bombs_are_malformed(text: str) -> None:
    with pytest.raises(MalformedKeyFileError):
        parse_records(text)


@pytest.mark.parametrize(
    "line", ['{"time": 1e300, "address": "x"}', "[" * 100_000, '{"time": ' + "1" * 5000 + "}"]
)
def test_jsonl_lines_beyond_the_calendar_or_the_parser_are_capture_errors(line: str) -> None:
    with pytest.raises(CaptureFormatError):
        advert_from_json(line)


def test_a_btsnoop_record_before_1970_is_a_btsnoop_error(tmp_path: Path) -> None:
    event = legacy_report_event("2A:00:00:00:00:01", GaenAdvert(bytes(16), bytes(4)).to_ad_bytes(), -60)
    data = bytearray(write_btsnoop(DATALINK_H4, [(T0, event)]))
    data[16 + 16 : 16 + 24] = (EPOCH_OFFSET_US - 10**9).to_bytes(8, "big", signed=True)
    capture = tmp_path / "old.btsnoop"
    capture.write_bytes(bytes(data))
    with pytest.raises(BtsnoopError, match="outside 1970"):
        load_capture(capture)


def test_a_signed_key_past_year_9998_is_skipped_not_printed() -> None:
    from proximity.keyfiles.gaen_export import generate_signing_key

    signer = generate_signing_key()
    keys = [DiagnosisKey(TemporaryExposureKey(bytes(16), 2147483376, 144))]
    data = write_export(keys, signer, key_id="1", start_timestamp=0, end_timestamp=1)
    export = parse_export_zip(data, verify=False)
    assert len(export.keys) == 0 and export.skipped_keys == 1


def test_format_utc_never_crashes_on_a_time_the_calendar_cannot_hold() -> None:
    assert format_utc(1e300) == "unix time 1e+300"
    assert format_utc(LATEST_TIME).startswith("9998-12-31")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.replace(b"export.bin", b"export.bi\xff", 1),
        lambda b: b[:40] + b"\x00" * 40 + b[80:],
        lambda b: b[:-30],
    ],
)
def test_damaged_export_zips_are_malformed_key_files(mutate: Callable[[bytes], bytes]) -> None:
    data = (FIXTURES / "gaen-server-example-export.zip").read_bytes()
    with pytest.raises(MalformedKeyFileError):
        parse_export_zip(mutate(data), verify=False)


def test_an_encrypted_zip_entry_is_malformed() -> None:
    data = bytearray((FIXTURES / "gaen-server-example-export.zip").read_bytes())
    data[6] |= 1  # the local header's "encrypted" flag
    central = data.rfind(b"PK\x01\x02")
    while central > 0:
        data[central + 8] |= 1
        central = data.rfind(b"PK\x01\x02", 0, central)
    with pytest.raises(MalformedKeyFileError):
        parse_export_zip(bytes(data), verify=False)


def test_decode_bleak_refuses_values_that_are_not_bytes() -> None:
    with pytest.raises(PayloadTypeError):
        decode_bleak({GAEN_SERVICE_UUID: 20}, {})  # type: ignore[dict-item]
    with pytest.raises(PayloadTypeError):
        decode_bleak({}, {BLUEZONE_COMPANY_ID: "x" * 12})  # type: ignore[dict-item]


# -- scenarios --------------------------------------------------------------------------------------

BASE = {"name": "x", "crowd": {"agents": 10, "width": 10.0, "height": 10.0}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"contact_distance": 0.001}, "memory_cap"),
        ({"step": 1e-300}, "MIN_STEP"),
        ({"crowd": {"agents": 10, "width": 253402300800.0, "height": 10.0}}, "memory_cap"),
        ({"duration": "long"}, "finite number"),
    ],
)
def test_scenarios_beyond_the_limits_are_refused_before_allocating(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(ScenarioError, match=message):
        scenario_from_dict({**BASE, **change})


def test_memory_cap_is_a_setting() -> None:
    small = scenario_from_dict(BASE)
    assert estimated_memory(small) < 4e9
    with pytest.raises(ScenarioError, match="memory_cap"):
        scenario_from_dict({**BASE, "memory_cap": estimated_memory(small) / 2})


@pytest.mark.parametrize("content", [b'name = "\xff"\n', b"a = " + b"[" * 5000, b"x = 1\n" * 200_000])
def test_unreadable_scenario_files_are_scenario_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "s.toml"
    path.write_bytes(content)
    with pytest.raises(ScenarioError):
        load_scenario(path)


# -- errors and the command line --------------------------------------------------------------------


def _samples() -> list[ProximityError]:
    e = errors_module
    return [
        e.KeyRingCorruptError("p", "r", ours=False),
        e.NotAKeyRingError("p", "r"),
        e.ObservationsFileError("p", "r", 3, "rssi"),
        e.ResourceLimitError("p", "MAX", 10, 5),
        e.PayloadTypeError("w", "int"),
        e.FileWriteError("p", "r", "ring"),
        e.BtsnoopError("r", 3, 2),
        e.InvalidBatchError((1,), ("r",), 3),
        e.KeyFileSignatureError("s", "unsigned", "r"),
        e.EncounterLogVersionError("p", 3, 2),
        e.ReplayError(1, 2.0, "r"),
    ]


@pytest.mark.parametrize("error", _samples(), ids=lambda e: type(e).__name__)
def test_errors_keep_their_fields_through_pickling(error: ProximityError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error) and vars(copy) == vars(error)


def test_an_unexpected_exception_is_one_line_and_debug_shows_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from proximity.cli import log as log_cli

    def boom(args: object) -> int:
        raise RuntimeError("something nobody foresaw")

    monkeypatch.setattr(log_cli, "_stats", boom)
    line = one_line(capsys, "log", "stats", "--db", "x", code=2)
    assert "RuntimeError: something nobody foresaw" in line and "--debug" in line
    assert main(["--debug", "log", "stats", "--db", "x"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_scan_into_a_closed_pipe_stops_quietly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import sys

    import proximity.ble.scanner as scanner_module

    delivered = []

    class FakeScanner:
        def __init__(self, sink: Callable[[Sighting], None], **kwargs: object) -> None:
            self.sink = sink
            self.stats = scanner_module.ScanStats()

        async def __aenter__(self) -> FakeScanner:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        async def run(self, seconds: float | None = None) -> None:
            for i in range(2_000):  # "keeps scanning" unless told to stop
                delivered.append(i)
                try:  # as bleak does: a callback's exception is logged and scanning goes on
                    self.sink(Sighting("gaen", bytes(16), T0 + i, -60))
                except Exception:
                    traceback.print_exc()
                await asyncio.sleep(0)

    class ClosedAfterFive:
        lines = 0

        def write(self, text: str) -> int:
            self.lines += 1
            if self.lines > 6:
                raise BrokenPipeError(32, "Broken pipe")
            return len(text)

        def flush(self) -> None:
            if self.lines > 6:
                raise BrokenPipeError(32, "Broken pipe")

        def fileno(self) -> int:
            raise ValueError("no descriptor")

    monkeypatch.setattr(scanner_module, "Scanner", FakeScanner)
    monkeypatch.setattr(sys, "stdout", ClosedAfterFive())
    assert main(["scan"]) == 0
    assert len(delivered) < 100 and "Traceback" not in capsys.readouterr().err


def test_read_jsonl_round_trip_still_works() -> None:
    adverts = load_capture(RUN1)
    assert read_jsonl("\n".join(advert_to_json(a) for a in adverts)) == adverts


def test_resource_limit_error_names_the_limit() -> None:
    error = ResourceLimitError("f.csv", "MAX_OBSERVED_ROWS", 11, 10)
    assert "MAX_OBSERVED_ROWS" in str(error) and isinstance(error, ValueError)
    assert issubclass(EncounterLogCorruptError, EncounterLogError)


def test_a_bluezone_time_end_of_hundreds_of_digits_is_refused_not_overflowing() -> None:
    # Found by the fuzz harness: the refusal's own message divided the span as a float.
    record = {"daily_key": "ab" * 32, "time_start": 1596240000, "max": 96, "time_end": int("9" * 400)}
    with pytest.raises(MalformedKeyFileError, match="far more"):
        parse_records(json.dumps([record]))


def test_a_negative_schema_version_is_a_damaged_log(tmp_path: Path) -> None:
    # Found by the fuzz harness: user_version -2**31 made the migration index out of range.
    db = tmp_path / "log.db"
    EncounterLog(db).close()
    _damage(db, "PRAGMA user_version = -2147483648")
    with pytest.raises(EncounterLogCorruptError, match="schema version -2147483648"):
        EncounterLog(db)


def test_a_sighting_without_an_id_is_a_damaged_log(tmp_path: Path) -> None:
    # Found by the fuzz harness (a damaged schema): a NULL row id escaped as TypeError.
    db = tmp_path / "log.db"
    EncounterLog(db).close()
    raw = sqlite3.connect(db)
    raw.execute("DROP TABLE sightings")
    raw.execute(
        "CREATE TABLE sightings (id INTEGER, scheme INTEGER, observed_id BLOB, time REAL, rssi INTEGER, "
        "metadata BLOB, address TEXT, own_id BLOB, source INTEGER)"
    )
    raw.execute(
        "INSERT INTO sightings (id, scheme, observed_id, time) VALUES (NULL, 0, ?, 1.7e9)", (bytes(16),)
    )
    raw.commit()
    raw.close()
    with EncounterLog(db) as log, pytest.raises(EncounterLogCorruptError, match="not a number"):
        log.observations("gaen")
