"""The key ring: rolling rules, and a file that is written atomically and never silently replaced."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proximity import (
    BLUEZONE,
    KeyRing,
    KeyRingCorruptError,
    KeyRingError,
    KeyRingNotFoundError,
    KeyRingSettings,
    NoKeyForTimeError,
    decode_ad_bytes,
    load_keyring,
    resolve_keyring_path,
    save_keyring,
    wipe_keyring,
)
from proximity.errors import FileWriteError, InvalidKeyError, InvalidMetadataError
from proximity.keyring import DEFAULT_TX_POWER
from proximity.keyring.store import default_keyring_path, dumps_keyring, loads_keyring
from proximity.schemes.gaen import Metadata, TemporaryExposureKey, decrypt_aem, derive_aemk

DAY = 86_400
MIDNIGHT = 1_796_428_800  # 2026-12-05T00:00:00Z
installs = st.integers(min_value=1_500_000_000, max_value=2_000_000_000).map(float)
ring_settings = st.builds(
    KeyRingSettings,
    tx_power=st.integers(-50, 20),
    calibration_confidence=st.integers(0, 3),
    bluezone_ids_per_day=st.sampled_from([96, 144, 48]),
    retention_days=st.integers(1, 30),
)


@st.composite
def rings(draw: st.DrawFn) -> KeyRing:
    at = draw(installs)
    ring = KeyRing.create(at, draw(ring_settings))
    for _ in range(draw(st.integers(0, 20))):
        at += draw(st.integers(60, 3 * DAY))
        ring = ring.rolled(at)
    return ring


@given(rings())
def test_text_round_trip(ring: KeyRing) -> None:
    assert loads_keyring(dumps_keyring(ring)) == ring


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(rings())
def test_file_round_trip_with_mode_0600(tmp_path: Path, ring: KeyRing) -> None:
    path = tmp_path / "sub" / "keyring.json"
    save_keyring(path, ring)
    assert load_keyring(path) == ring
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["keyring.json"]  # no temporary left behind


@given(rings(), st.data())
def test_truncated_file_is_refused(ring: KeyRing, data: st.DataObject) -> None:
    text = dumps_keyring(ring)
    cut = data.draw(st.integers(0, len(text.rstrip()) - 1))
    with pytest.raises(KeyRingCorruptError):
        loads_keyring(text[:cut])


@given(rings(), st.data())
def test_any_altered_key_digit_is_refused(ring: KeyRing, data: st.DataObject) -> None:
    text = dumps_keyring(ring)
    hex_key = ring.bluezone_key.key.hex()
    position = text.index(hex_key) + data.draw(st.integers(0, len(hex_key) - 1))
    flipped = "0" if text[position] != "0" else "1"
    with pytest.raises(KeyRingCorruptError, match="checksum"):
        loads_keyring(text[:position] + flipped + text[position + 1 :])


def test_damaged_file_is_left_untouched(keyring_path: Path) -> None:
    save_keyring(keyring_path, KeyRing.create(MIDNIGHT))
    damaged = keyring_path.read_bytes()[:-40]
    keyring_path.write_bytes(damaged)
    with pytest.raises(KeyRingCorruptError, match="left untouched"):
        load_keyring(keyring_path)
    with pytest.raises(KeyRingError, match="already exists"):
        save_keyring(keyring_path, KeyRing.create(MIDNIGHT), create=True)
    assert keyring_path.read_bytes() == damaged


def test_foreign_and_missing_files(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"hello": 1}')
    with pytest.raises(KeyRingCorruptError, match="not a proximity key ring"):
        load_keyring(foreign)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(KeyRingCorruptError):
        load_keyring(binary)
    with pytest.raises(KeyRingNotFoundError, match="proximity keys init"):
        load_keyring(tmp_path / "absent.json")
    assert wipe_keyring(tmp_path / "absent.json") is False


def test_rolling_keeps_fourteen_days_and_one_key_per_day() -> None:
    ring = KeyRing.create(MIDNIGHT + 5 * 3600)
    first = ring.gaen_keys[0]
    assert (
        first.start == MIDNIGHT + 5 * 3600 and first.end == MIDNIGHT + DAY
    )  # first key: install to midnight
    for day in range(1, 20):
        ring = ring.rolled(MIDNIGHT + day * DAY + 60)
        assert ring.rolled(MIDNIGHT + day * DAY + 7200) == ring  # same day: nothing to do
    assert len(ring.gaen_keys) == 14
    assert ring.gaen_keys[0].start == MIDNIGHT + 6 * DAY
    assert all(k.rolling_period == 144 for k in ring.gaen_keys)
    assert len({k.key_data for k in ring.gaen_keys}) == 14


def test_rolling_back_in_time_is_refused() -> None:
    ring = KeyRing.create(MIDNIGHT + DAY)
    with pytest.raises(ValueError, match="roll back"):
        ring.rolled(MIDNIGHT + 600)


def test_broadcast_at_and_when_it_changes() -> None:
    ring = KeyRing.create(MIDNIGHT, KeyRingSettings(tx_power=-12, calibration_confidence=2))
    at = MIDNIGHT + 3 * 3600 + 125
    gaen = ring.broadcast_at("gaen", at)
    assert (gaen.start, gaen.end) == (MIDNIGHT + 3 * 3600, MIDNIGHT + 3 * 3600 + 600)
    assert decode_ad_bytes(gaen.ad_bytes) == gaen.advert
    metadata = decrypt_aem(derive_aemk(ring.gaen_keys[0].key_data), gaen.id.value, gaen.advert.payload[16:])
    assert Metadata.from_bytes(metadata) == Metadata(-12, 2)
    bluezone = ring.broadcast_at("bluezone", at)
    assert (bluezone.start, bluezone.end) == (MIDNIGHT + 3 * 3600, MIDNIGHT + 3 * 3600 + 900)
    assert bluezone.id == BLUEZONE.id_at(ring.bluezone_key.record(at), at)
    assert bluezone.advert.payload == bluezone.id.value
    with pytest.raises(NoKeyForTimeError, match="keys roll"):
        ring.broadcast_at("gaen", MIDNIGHT + DAY + 1)
    assert ring.broadcast_at("bluezone", MIDNIGHT + 40 * DAY).start == MIDNIGHT + 40 * DAY
    dp3t = ring.broadcast_at("dp3t", at)  # DP-3T is a scheme now (issue 16): 15-minute epochs
    assert (dp3t.start, dp3t.end) == (MIDNIGHT + 3 * 3600, MIDNIGHT + 3 * 3600 + 900)
    with pytest.raises(ValueError, match="unknown scheme"):
        ring.broadcasts("tracetogether", at=at, count=1)


def test_a_day_of_broadcasts_is_contiguous() -> None:
    ring = KeyRing.create(MIDNIGHT)
    for scheme, count in (("gaen", 144), ("bluezone", 96)):
        day = ring.broadcasts(scheme, at=MIDNIGHT, count=count)
        assert len(day) == count
        assert day[0].start == MIDNIGHT and day[-1].end == MIDNIGHT + DAY
        assert all(a.end == b.start for a, b in itertools.pairwise(day))
        assert len({b.id.value for b in day}) == count


def test_path_resolution_order(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    if os.name == "posix" and os.uname().sysname == "Linux":
        assert default_keyring_path(env) == tmp_path / "xdg" / "proximity" / "keyring.json"
    assert resolve_keyring_path(None, {**env, "PROXIMITY_KEYRING": "/x/k.json"}) == Path("/x/k.json")
    assert resolve_keyring_path("/y/k.json", {"PROXIMITY_KEYRING": "/x/k.json"}) == Path("/y/k.json")
    assert default_keyring_path({"XDG_DATA_HOME": "relative/ignored"}).is_absolute()


@pytest.mark.parametrize("tx_power", [-51, 21, 127, -128, 500])
def test_tx_power_outside_gaens_range_is_refused(tx_power: int) -> None:
    with pytest.raises(InvalidMetadataError, match=r"tx_power must be in \[-50, 20\] dBm") as caught:
        KeyRingSettings(tx_power=tx_power)
    assert isinstance(caught.value, ValueError) and caught.value.value == tx_power
    assert KeyRingSettings(tx_power=-50).tx_power == -50 and KeyRingSettings(tx_power=20).tx_power == 20
    with pytest.raises(TypeError, match="tx_power must be an int"):
        KeyRingSettings(tx_power="-30")  # type: ignore[arg-type]


def test_stored_tx_power_outside_gaens_range_is_refused_on_load(tmp_path: Path) -> None:
    # A ring written before the range was checked: valid checksum, tx_power 100.
    written = dumps_keyring(KeyRing.create(MIDNIGHT))
    text = written.replace(f'"tx_power": {DEFAULT_TX_POWER}', '"tx_power": 100')
    assert '"tx_power": 100' in text
    document = json.loads(text)
    document["sha256"] = hashlib.sha256(
        json.dumps(document["body"], sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    path = tmp_path / "ring.json"
    path.write_text(json.dumps(document))
    with pytest.raises(KeyRingCorruptError, match=r"tx_power must be in \[-50, 20\]"):
        load_keyring(path)
    assert json.loads(path.read_text()) == document  # left untouched


def test_unwritable_key_ring_path_is_a_typed_error_and_leaves_no_temporary(tmp_path: Path) -> None:
    ring = KeyRing.create(MIDNIGHT)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(FileWriteError, match=r"cannot write key ring .*blocker/ring.json: ") as caught:
        save_keyring(blocker / "ring.json", ring, create=True)
    assert isinstance(caught.value, OSError) and caught.value.path == str(blocker / "ring.json")
    # The rename fails (the target is a directory): the temporary file must not stay behind.
    target = tmp_path / "ring.json"
    target.mkdir()
    with pytest.raises(FileWriteError, match=r"ring\.json"):
        save_keyring(target, ring)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "ring.json"]


def _resealed(document: dict[str, object]) -> str:
    body = document["body"]
    document["sha256"] = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return json.dumps(document)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda body: body["keys"].update(nosuchscheme={}), "unknown scheme 'nosuchscheme'"),
        (lambda body: body["keys"].pop("bluezone"), "bluezone"),  # made at install: never absent
        (lambda body: body["keys"].update(gaen={"key_data": "00"}), "invalid content"),
        (lambda body: body.update(keys=[]), "keys must be an object"),
        (lambda body: body["keys"]["gaen"].append(dict(body["keys"]["gaen"][0])), "must not overlap"),
    ],
)
def test_a_version_3_body_with_bad_scheme_entries_is_refused(change: object, problem: str) -> None:
    document = json.loads(dumps_keyring(KeyRing.create(MIDNIGHT)))
    assert document["version"] == 3
    change(document["body"])  # type: ignore[operator]
    with pytest.raises(KeyRingCorruptError, match=problem):
        loads_keyring(_resealed(document))


def test_a_version_2_file_is_the_same_ring_and_is_saved_as_version_3(tmp_path: Path) -> None:
    ring = KeyRing.create(MIDNIGHT)
    document = json.loads(dumps_keyring(ring))
    body = document["body"]
    old = {"format": document["format"], "version": 2, "body": {"settings": body["settings"], **body["keys"]}}
    path = tmp_path / "ring.json"
    path.write_text(_resealed(old))
    loaded = load_keyring(path)
    assert loaded == ring
    save_keyring(path, loaded.rolled(MIDNIGHT + 86_400))
    assert json.loads(path.read_text())["version"] == 3
    again = load_keyring(path)
    assert again.gaen_keys[0] == ring.gaen_keys[0] and again.bluezone_key == ring.bluezone_key
    assert again.key_state("dp3t") == ring.key_state("dp3t")


def test_a_ring_built_by_hand_is_checked_as_a_loaded_one_is() -> None:
    settings = KeyRingSettings()
    day = TemporaryExposureKey(bytes(16), MIDNIGHT // 600, 144)
    later = TemporaryExposureKey(bytes([1]) * 16, MIDNIGHT // 600 + 144, 144)
    assert KeyRing(settings, {"gaen": [later, day]}).gaen_keys == (day, later)  # put in order
    half_day_on = TemporaryExposureKey(bytes([2]) * 16, MIDNIGHT // 600 + 72, 144)
    with pytest.raises(InvalidKeyError, match="must not overlap"):
        KeyRing(settings, {"gaen": (day, half_day_on)})
    with pytest.raises(InvalidKeyError, match="TemporaryExposureKey"):
        KeyRing(settings, {"gaen": (bytes(16),)})
    with pytest.raises(InvalidKeyError, match="BluezoneBaseKey"):
        KeyRing(settings, {BLUEZONE.name: bytes(32)})
    ring = KeyRing.create(MIDNIGHT + 60, random_bytes=lambda n: bytes(n))
    for name, state in ring.keys.items():  # every scheme accepts what it rolled itself
        assert KeyRing(settings, {name: state}).keys[name] == state
