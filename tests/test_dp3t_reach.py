"""DP-3T reachable from every place GAEN and Bluezone are: advert codec, key ring, log, `ids`,
`keys export`, `match`, and the batch matcher (a planted day key among 100,000 decoys is found)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from proximity.cli.main import main
from proximity.errors import MalformedKeyFileError, MalformedPayloadError
from proximity.keyfiles.dp3t_json import dump_exposees, looks_like_dp3t_json, parse_exposees
from proximity.keyring import KeyRing, load_keyring, save_keyring
from proximity.keyring.store import dumps_keyring, loads_keyring
from proximity.log import EncounterLog
from proximity.matching.dp3t import Dp3tMatcher, match_dp3t
from proximity.payloads import Dp3tAdvert, decode_ad_bytes, decode_bleak
from proximity.schemes.dp3t import DP3T, EPHIDS_PER_DAY, Dp3tDayKey, ephids_for_day, ephids_of
from proximity.schemes.registry import scheme_record
from proximity.sightings import Observations, Sighting

DAY = 1_596_240_000  # 2020-08-01T00:00:00Z
SK1 = hashlib.sha256(bytes(32)).digest()


def test_the_advert_is_service_data_under_0xfd68() -> None:
    advert = Dp3tAdvert(bytes(range(16)))
    raw = advert.to_ad_bytes()
    assert raw == bytes.fromhex("02011a030368fd131668fd") + bytes(range(16))
    assert decode_ad_bytes(raw) == advert
    assert decode_bleak({"0000fd68-0000-1000-8000-00805f9b34fb": bytes(range(16))}, {}) == advert
    assert advert.to_bluez().service_data == {"0000fd68-0000-1000-8000-00805f9b34fb": bytes(range(16))}
    with pytest.raises(MalformedPayloadError, match="0xFD68"):
        decode_bleak({"fd68": bytes(15)}, {})
    assert scheme_record("dp3t").advert is Dp3tAdvert


def test_the_batch_path_gives_the_scheme_modules_ephids() -> None:
    keys = np.frombuffer(SK1 + hashlib.sha256(SK1).digest(), np.uint8).reshape(2, 32)
    batch = ephids_of(keys)
    assert batch.shape == (2, EPHIDS_PER_DAY, 16)
    assert np.array_equal(batch[0], ephids_for_day(SK1))
    assert np.array_equal(batch[1], ephids_for_day(hashlib.sha256(SK1).digest()))
    assert batch[0, 0].tobytes().hex() == "04cab76af57ca373de1d52689fae06c1"


def _old_file(body: dict[str, object], version: int) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    document = {
        "format": "proximity-keyring",
        "version": version,
        "body": body,
        "sha256": hashlib.sha256(canonical).hexdigest(),
    }
    return json.dumps(document)


def test_a_ring_saved_before_dp3t_gains_a_key_at_its_next_roll(tmp_path: Path) -> None:
    ring = KeyRing.create(DAY + 100)
    own = ring.key_state("dp3t")
    assert isinstance(own, Dp3tDayKey) and own.day == DAY
    document = json.loads(dumps_keyring(ring))
    assert document["version"] == 3 and set(document["body"]["keys"]) == {"gaen", "bluezone", "dp3t"}
    # the same ring as a version-2 file (one top-level field per scheme) reads back whole
    flat = {"settings": document["body"]["settings"], **document["body"]["keys"]}
    assert loads_keyring(_old_file(flat, 2)) == ring
    # ... and as a version-1 file (no DP-3T entry; version 2 wrote null before a roll made one)
    before = {k: v for k, v in flat.items() if k != "dp3t"}
    for migrated in (
        loads_keyring(_old_file(before, 1)),
        loads_keyring(_old_file({**before, "dp3t": None}, 2)),
    ):
        assert migrated.key_state("dp3t") is None and migrated.gaen_keys == ring.gaen_keys
        assert migrated.bluezone_key == ring.bluezone_key and migrated.settings == ring.settings
        assert migrated.broadcasts("dp3t", at=DAY + 100, count=1) == []
    rolled = migrated.rolled(DAY + 86400 + 5)
    gained = rolled.key_state("dp3t")
    assert isinstance(gained, Dp3tDayKey) and gained.day == DAY + 86400
    assert rolled.bluezone_key == ring.bluezone_key and rolled.gaen_keys[0] == ring.gaen_keys[0]
    path = tmp_path / "ring.json"
    save_keyring(path, rolled)
    assert json.loads(path.read_text())["version"] == 3
    assert load_keyring(path) == rolled
    on_air = rolled.broadcast_at("dp3t", DAY + 86400 + 5)
    assert on_air.id.value == DP3T.id_at(gained, DAY + 86400 + 5).value


def test_the_log_stores_dp3t_sightings(tmp_path: Path) -> None:
    with EncounterLog(tmp_path / "log.db") as log:
        log.add([Sighting("dp3t", bytes(16), DAY + 1.0, -60), Sighting("gaen", bytes(16), DAY + 2.0, -61)])
        dp3t = log.observations("dp3t")
        assert len(dp3t) == 1 and dp3t.times.tolist() == [DAY + 1.0]
        assert len(log.observations("gaen")) == 1
    with pytest.raises(ValueError, match="no metadata"):
        Sighting("dp3t", bytes(16), DAY, metadata=bytes(4))


def _observations(ids: np.ndarray, times: np.ndarray) -> Observations:
    m = ids.shape[0]
    return Observations(
        "dp3t", ids, times, np.full(m, -60.0), np.zeros((m, 4), np.uint8), np.zeros(m, np.bool_), np.arange(m)
    )


def test_a_planted_day_key_among_100k_decoys_is_found_with_its_sightings() -> None:
    rng = np.random.default_rng(3)
    decoys = [Dp3tDayKey(rng.bytes(32), DAY) for _ in range(100_000)]
    planted = Dp3tDayKey(rng.bytes(32), DAY - 2 * 86400)  # published two days before: chained forward
    today = planted.on_day(DAY)
    ids = rng.integers(0, 256, (5_000, 16), dtype=np.uint8)
    times = rng.uniform(DAY, DAY + 86400, 5_000)
    mine = DP3T.ids_of_key(today)
    ids[[10, 20, 30]] = mine.ids[[4, 4, 50]]
    times[[10, 20, 30]] = [DAY + 4 * 900 + 1, DAY + 4 * 900 + 200, DAY + 50 * 900 + 3]
    ids[40] = mine.ids[7]
    times[40] = DAY + 86400 + 10  # the right EphID heard the next day: not a match
    keys = [*decoys[:50_000], planted, *decoys[50_000:]]
    found = match_dp3t(keys, _observations(ids, times), workers=1)
    assert [m.key for m in found] == [planted]
    assert found[0].row_ids.tolist() == [10, 20, 30]
    assert found[0].ids[2].tobytes() == mine.ids[50].tobytes()
    assert not found[0].verified


def test_a_key_is_chained_up_to_14_days_forward_and_no_further() -> None:
    key = Dp3tDayKey(SK1, DAY)
    ids, times = [], []
    for days in (0, 14, 15):
        day_key = key.on_day(DAY + days * 86400)
        ids.append(DP3T.ids_of_key(day_key).ids[0])
        times.append(DAY + days * 86400 + 10.0)
    found = match_dp3t([key], _observations(np.array(ids), np.array(times)), workers=1)
    assert found[0].row_ids.tolist() == [0, 1]
    later = Dp3tDayKey(SK1, DAY + 86400)  # a key published for a later day never matches earlier days
    assert match_dp3t([later], Dp3tMatcher.build(_observations(np.array(ids[:1]), np.array(times[:1])))) == []


def test_exposee_json_round_trip_and_errors() -> None:
    keys = [Dp3tDayKey(SK1, DAY), Dp3tDayKey(bytes(32), DAY + 86400)]
    text = dump_exposees(keys, release_time=DAY + 2 * 86400)
    assert parse_exposees(text) == keys
    assert looks_like_dp3t_json(text.encode()[:64])
    document = json.loads(text)
    assert document["exposed"][0] == {"key": base64.b64encode(SK1).decode(), "keyDate": DAY * 1000}
    for bad, reason in [
        ('{"exposed": [{"key": "AAAA", "keyDate": 1596240000000}]}', "entry 0"),
        (
            '{"exposed": [{"key": "' + base64.b64encode(SK1).decode() + '", "keyDate": 1596240000001}]}',
            "midnight",
        ),
        ('{"exposed": 3}', "expected"),
        ("[1, 2]", "expected"),
        ("{not json", "not JSON"),
    ]:
        with pytest.raises(MalformedKeyFileError, match=reason):
            parse_exposees(bad)


def test_ids_export_and_match_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at = str(DAY + 4 * 900 + 5)
    assert main(["ids", "--scheme", "dp3t", "--key", SK1.hex(), "--at", at, "--count", "2", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    expected = DP3T.ids_of_key(Dp3tDayKey(SK1, DAY))
    assert [row["id"] for row in shown] == [expected.ids[4].tobytes().hex(), expected.ids[5].tobytes().hex()]
    assert shown[0]["advert"].startswith("02011a030368fd131668fd")

    ring = tmp_path / "ring.json"
    assert main(["keys", "init", "--keyring", str(ring), "--at", str(DAY - 3 * 86400)]) == 0
    capsys.readouterr()
    assert main(["keys", "roll", "--keyring", str(ring), "--at", str(DAY + 10)]) == 0
    exported = tmp_path / "exposed.json"
    argv = ["keys", "export", "--scheme", "dp3t", "--out", str(exported), "--keyring", str(ring)]
    assert main([*argv, "--at", str(DAY + 100), "--days", "2"]) == 0
    published = parse_exposees(exported.read_text())
    own = load_keyring(ring).key_state("dp3t")
    assert isinstance(own, Dp3tDayKey) and published == [own.on_day(DAY - 86400)]
    heard = own.on_day(DAY)
    row = DP3T.ids_of_key(heard).ids[9].tobytes().hex()
    observed = tmp_path / "observed.csv"
    observed.write_text(
        f"id,time,rssi,scheme\n{row},{DAY + 9 * 900 + 1},-55,dp3t\n{row},{DAY + 9 * 900 + 61},-57,dp3t\n"
    )
    capsys.readouterr()
    assert main(["match", "--keys", str(exported), "--observed", str(observed), "--json"]) == 0
    days = json.loads(capsys.readouterr().out)
    assert [(d["scheme"], d["sightings"]) for d in days] == [("dp3t", 2)]
