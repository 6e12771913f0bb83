"""The log's columnar side store (packed IDs per scheme and hour) stays in step with the sightings
through every write path, migrates old logs, and matching through it gives the full read's result."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proximity.errors import EncounterLogCorruptError
from proximity.log import EncounterLog
from proximity.log.id_blocks import BUCKET_SECONDS, bucket_of
from proximity.log.matchable import LogSightings
from proximity.log.schema import APPLICATION_ID, MIGRATIONS, SCHEME_CODES
from proximity.matching import DiagnosisKey, KeyBatch, ReportType, match_gaen
from proximity.matching.results import KeyMatch
from proximity.schemes.gaen import TemporaryExposureKey
from proximity.sightings import Sighting
from test_matching_gaen import START, T0, _seen

H = float(BUCKET_SECONDS)
LENGTHS = {"gaen": 16, "bluezone": 12}


def _blocks_agree(path: Path) -> None:
    """The invariant: per (scheme, hour), the block holds exactly the IDs of that hour's sightings."""
    raw = sqlite3.connect(path)
    try:
        want: Counter[tuple[int, int, bytes]] = Counter()
        for code, observed, t in raw.execute("SELECT scheme, observed_id, time FROM sightings"):
            want[(code, int(bucket_of(np.array([t]))[0]), observed)] += 1
        got: Counter[tuple[int, int, bytes]] = Counter()
        for code, bucket, count, ids in raw.execute("SELECT scheme, bucket, count, ids FROM id_blocks"):
            length = len(ids) // count
            assert count > 0 and len(ids) == count * length
            for i in range(count):
                got[(code, bucket, ids[i * length : (i + 1) * length])] += 1
        assert got == want
    finally:
        raw.close()


_times = st.one_of(
    st.floats(T0 - 3 * 86400, T0 + 3 * 86400),
    # right at an hour's edge, where floating point decides the bucket
    st.integers(START // 6 - 72, START // 6 + 72).map(lambda h: h * H),
    st.integers(START // 6 - 72, START // 6 + 72).map(lambda h: np.nextafter(h * H, 0.0)),
)
_op = st.one_of(
    st.tuples(st.just("columns"), st.sampled_from(["gaen", "bluezone"]), st.lists(
        st.tuples(st.integers(0, 5), _times), min_size=0, max_size=20), st.booleans()),
    st.tuples(st.just("replay"), st.integers(0, 2), st.lists(st.tuples(st.integers(0, 5), _times),
                                                              max_size=10), st.booleans()),
    st.tuples(st.just("prune"), _times),
    st.tuples(st.just("wipe")),
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op, max_size=8))
def test_the_side_store_follows_every_write_path(tmp_path_factory: Any, ops: list[Any]) -> None:
    path = tmp_path_factory.mktemp("blocks") / "log.db"
    with EncounterLog(path) as log:
        for op in ops:
            if op[0] == "columns":
                _, scheme, rows, dedup = op
                ids = [bytes([i]) * LENGTHS[scheme] for i, _ in rows]
                log.add_columns(scheme, ids, [t for _, t in rows], dedup_seconds=5.0 if dedup else None)
            elif op[0] == "replay":  # a capture replayed; an unfinished one is replaced when replayed again
                _, capture, rows, finish = op
                source = log.begin_source(bytes([capture + 1]) * 32)
                if source is not None:
                    log.add([Sighting("gaen", bytes([i]) * 16, t, -60) for i, t in rows], source=source)
                    if finish:
                        log.finish_source(source)
            elif op[0] == "prune":
                log.prune(0, now=op[1])
            else:
                log.wipe()
            _blocks_agree(path)
            for scheme in LENGTHS:
                source_or_all = log.matchable(scheme)
                assert isinstance(source_or_all, LogSightings)
                assert len(source_or_all) == len(log.observations(scheme))


def _v2_log(path: Path, rows: list[tuple[int, bytes, float]]) -> None:
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for step in MIGRATIONS[:2]:
        for statement in step:
            assert isinstance(statement, str)
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 2")
    raw.executemany("INSERT INTO sightings (scheme, observed_id, time, rssi) VALUES (?, ?, ?, -60)", rows)
    raw.commit()
    raw.close()


def test_a_version_2_log_migrates_with_nothing_lost(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    rng = np.random.default_rng(3)
    rows = [(SCHEME_CODES["gaen"], rng.bytes(16), T0 + float(t)) for t in rng.uniform(0, 5 * 86400, 500)]
    rows += [(SCHEME_CODES["bluezone"], rng.bytes(12), T0 + 7.5)] * 3
    _v2_log(db, rows)
    with EncounterLog(db) as log:
        assert log.stats().schema_version == len(MIGRATIONS) == 3
        assert sorted((s.id, s.time) for s in log.iter_sightings()) == sorted((i, t) for _, i, t in rows)
    _blocks_agree(db)


def test_a_version_2_log_whose_side_store_cannot_be_built_is_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _v2_log(db, [(SCHEME_CODES["gaen"], bytes(16), T0), (SCHEME_CODES["gaen"], "not a blob", T0)])  # type: ignore[list-item]
    before = db.read_bytes()
    with pytest.raises(EncounterLogCorruptError):
        EncounterLog(db)
    assert db.read_bytes() == before and not Path(f"{db}-wal").exists()


def test_a_side_store_written_around_is_not_trusted(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    with EncounterLog(db) as log:
        log.add([Sighting("gaen", bytes(16), T0, -60)] * 3)
    raw = sqlite3.connect(db)
    raw.execute("INSERT INTO sightings (scheme, observed_id, time) VALUES (0, ?, ?)", (bytes([1]) * 16, T0))
    raw.commit()
    raw.close()
    with EncounterLog(db) as log:
        assert not isinstance(log.matchable("gaen"), LogSightings)  # all the sightings instead
    raw = sqlite3.connect(db)
    raw.execute("DELETE FROM sightings WHERE observed_id = ?", (bytes([1]) * 16,))
    raw.execute("UPDATE sightings SET observed_id = ? WHERE id = 2", (b"12345",))  # same count, damaged
    raw.commit()
    raw.close()
    # the trigger emptied the blocks, so the full read runs and names the damaged row
    with EncounterLog(db) as log, pytest.raises(EncounterLogCorruptError, match="row 2"):
        log.matchable("gaen")


# -- matching through the side store gives the full read's result -------------------------------------


def _summary(found: list[KeyMatch]) -> list[tuple[Any, ...]]:
    return [
        (
            m.key_data,
            m.report_type,
            m.transmission_risk_level,
            m.row_ids.tolist(),
            m.ids.tobytes(),
            m.times.tolist(),
            np.nan_to_num(m.rssi, nan=999).tolist(),
            np.nan_to_num(m.tx_power, nan=999).tolist(),
            m.calibration_confidence.tolist(),
        )
        for m in found
    ]


@st.composite
def _case(draw: st.DrawFn) -> tuple[list[DiagnosisKey], list[Sighting], KeyBatch | None]:
    count = draw(st.integers(1, 5))
    keys = [
        DiagnosisKey(
            TemporaryExposureKey(bytes([draw(st.integers(0, 3))]) * 16,
                                 START + draw(st.sampled_from([-300, -144, 0, 0, 10])),
                                 draw(st.sampled_from([144, 144, 60]))),
            report_type=draw(st.sampled_from([ReportType.CONFIRMED_TEST, ReportType.REVOKED])),
            transmission_risk_level=draw(st.integers(0, 8)),
        )
        for _ in range(count)
    ]  # fmt: skip
    sightings = [
        _seen(
            keys[draw(st.integers(0, count - 1))],
            draw(st.integers(0, 143)),
            T0 + draw(st.integers(-200_000, 110_000)),
            draw(st.one_of(st.none(), st.integers(-80, 40))),
        )
        for _ in range(draw(st.integers(0, 25)))
    ]
    sightings += [Sighting("gaen", draw(st.binary(min_size=16, max_size=16)), T0) for _ in range(3)]
    revised = None
    if draw(st.booleans()):
        chosen = keys[: draw(st.integers(1, count))]
        revised = KeyBatch.from_keys(
            [
                DiagnosisKey(
                    k.tek, report_type=draw(st.sampled_from(list(ReportType))), transmission_risk_level=7
                )
                for k in chosen
            ]
        )
    return keys, sightings, revised


@pytest.mark.parametrize("backend", ["c", "python"])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=_case(), chunk=st.integers(1, 4))
def test_matching_through_the_side_store_equals_the_full_read(
    tmp_path_factory: Any, backend: str, case: Any, chunk: int
) -> None:  # fmt: skip
    keys, sightings, revised = case
    path = tmp_path_factory.mktemp("match") / "log.db"
    revisions = [] if revised is None else [revised]
    with EncounterLog(path) as log:
        log.add(sightings)
        source = log.matchable("gaen")
        assert isinstance(source, LogSightings)
        kw: dict[str, Any] = {"revised_keys": revisions, "chunk_size": chunk, "backend": backend}
        full = match_gaen(keys, log.observations("gaen"), workers=1, **kw)
        assert _summary(match_gaen(keys, source, workers=1, **kw)) == _summary(full)
        assert _summary(match_gaen(keys, source, workers=2, **kw)) == _summary(full)


def test_both_passes_of_a_match_see_one_state_of_a_live_log(tmp_path: Path) -> None:
    key = DiagnosisKey(TemporaryExposureKey(bytes([9]) * 16, START, 144))
    path = tmp_path / "log.db"
    with EncounterLog(path) as writer:
        writer.add([_seen(key, 0, T0 + 10)])
        with EncounterLog(path, create=False) as reader, reader.snapshot():
            source = reader.matchable("gaen")
            assert isinstance(source, LogSightings)
            writer.add([_seen(key, 0, T0 + 20), _seen(key, 1, T0 + 700)])  # a node writes meanwhile
            [found] = match_gaen([key], source, workers=1)
            assert found.times.tolist() == [T0 + 10]  # what the log held when the match began
        with EncounterLog(path, create=False) as reader:
            [found] = match_gaen([key], reader.matchable("gaen"), workers=1)
            assert found.times.tolist() == [T0 + 10, T0 + 20, T0 + 700]


@pytest.mark.parametrize("last", [ReportType.REVOKED, ReportType.RECURSIVE])
def test_export_files_on_a_log_are_read_once_with_their_revisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, last: ReportType
) -> None:
    from proximity.keyfiles import gaen_export
    from proximity.keyfiles.gaen_export import generate_signing_key, stream_exports, write_export

    key = DiagnosisKey(TemporaryExposureKey(bytes([33]) * 16, START, 144), 1, ReportType.CONFIRMED_TEST)
    other = DiagnosisKey(TemporaryExposureKey(bytes([34]) * 16, START, 144), 1, ReportType.CONFIRMED_TEST)
    signer = generate_signing_key()
    paths = []
    for name, keys, revised in (
        ("a.zip", [key, other], [DiagnosisKey(key.tek, 2, ReportType.SELF_REPORT)]),
        ("b.zip", [], [DiagnosisKey(key.tek, 0, last), DiagnosisKey(other.tek, 5, ReportType.SELF_REPORT)]),
    ):
        path = tmp_path / name
        window = (T0, T0 + 86400)
        path.write_bytes(
            write_export(keys, signer, key_id="310", revised_keys=revised, start_timestamp=window[0],
                         end_timestamp=window[1])
        )  # fmt: skip
        paths.append(path)
    with EncounterLog(tmp_path / "log.db") as log:
        log.add([_seen(key, 0, T0 + 10), _seen(other, 3, T0 + 1900, tx=-10)])
        full = stream_exports(paths, verify=False)
        want = match_gaen(full.keys(), log.observations("gaen"), revised_keys=full.revisions(), workers=1)
        assert [(m.key_data[0], m.report_type) for m in want] == [
            *([] if last == ReportType.REVOKED else [(33, last)]),
            (34, ReportType.SELF_REPORT),
        ]
        reads: list[object] = []
        load = gaen_export.load_export

        def counted(*args: Any, **kwargs: Any) -> Any:
            reads.append(args[0])
            return load(*args, **kwargs)

        monkeypatch.setattr(gaen_export, "load_export", counted)
        stream = stream_exports(paths, verify=False)
        got = match_gaen(stream.keys(), log.matchable("gaen"), revised_keys=stream.revision_list(), workers=1)
        assert _summary(got) == _summary(want)
        assert reads == paths  # each file once: the revisions came with the keys


def test_reindex_rebuilds_a_side_store_emptied_by_a_foreign_write(tmp_path: Path) -> None:
    from proximity.cli.main import main

    db = tmp_path / "log.db"
    with EncounterLog(db) as log:
        log.add([Sighting("gaen", bytes([i]) * 16, T0 + 60 * i, -60) for i in range(5)])
        log.add([Sighting("bluezone", bytes([9]) * 12, T0, -70)])
    raw = sqlite3.connect(db)
    raw.execute("UPDATE sightings SET observed_id = ? WHERE id = 2", (bytes([7]) * 16,))  # the trigger fires
    raw.commit()
    raw.close()
    with EncounterLog(db) as log:
        assert log.id_store_in_step() == {"bluezone": True, "gaen": False}
        assert not isinstance(log.matchable("gaen"), LogSightings)
    assert main(["log", "stats", "--db", str(db)]) == 0
    assert main(["log", "reindex", "--db", str(db), "--json"]) == 0
    _blocks_agree(db)
    with EncounterLog(db) as log:
        assert log.id_store_in_step() == {"bluezone": True, "gaen": True}
        source = log.matchable("gaen")
        assert isinstance(source, LogSightings)
        assert sorted(map(bytes, source.ids)) == sorted(bytes([i if i != 1 else 7]) * 16 for i in range(5))
        assert log.reindex() == 6  # again: nothing changes
    _blocks_agree(db)
