"""``proximity match --estimator``: each exposure found in the encounter log gets a verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proximity.cli.main import main
from proximity.keyring import load_keyring
from proximity.log import EncounterLog
from proximity.sightings import Sighting
from proximity.times import parse_time

AT = "2026-11-21T09:00:00Z"


@pytest.fixture
def log_with_a_contact(tmp_path: Path, keyring_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A published Bluezone record and a log in which its owner was heard for 20 minutes at -55 dBm."""
    monkeypatch.setenv("PROXIMITY_KEYRING", str(keyring_path))
    monkeypatch.chdir(tmp_path)
    assert main(["keys", "init", "--at", "2026-11-20T10:00:00Z", "--json"]) == 0
    assert (
        main(["keys", "export", "--scheme", "bluezone", "--out", "bz.json", "--at", AT, "--days", "3"]) == 0
    )
    ring = load_keyring(keyring_path)
    start = parse_time(AT)
    heard = []
    for second in range(0, 20 * 60, 20):
        broadcast = ring.broadcast_at("bluezone", start + second)
        heard.append(Sighting("bluezone", broadcast.id.value, start + second, -55))
    with EncounterLog(tmp_path / "log.db") as log:
        log.add(heard)
    return tmp_path


def test_match_reports_each_estimators_verdict(
    log_with_a_contact: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["match", "--keys", "bz.json", "--log", "log.db", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["verdict"]["estimator"] == "mean-attenuation"  # the default
    assert row["verdict"]["close_contact"] is True  # 20 minutes at 28 dB (-55 dBm, fleet TX and correction)
    assert (
        main(["match", "--keys", "bz.json", "--log", "log.db", "--estimator", "probabilistic", "--json"]) == 0
    )
    (row,) = json.loads(capsys.readouterr().out)
    assert 0 <= row["verdict"]["probability"] <= 1
    assert row["verdict"]["distance_m"] > 0
    assert (
        main(["match", "--keys", "bz.json", "--log", "log.db", "--estimator", "bluezone-near", "--json"]) == 0
    )
    (row,) = json.loads(capsys.readouterr().out)
    assert row["verdict"]["close_contact"] is True  # 20 minutes at -55 dBm is "near" for Bluezone
    # 30 scans 40 s apart, the first credited one scan interval (40 s, under GAEN's 120 s): 20 minutes
    assert row["verdict"]["weighted_minutes"] == pytest.approx(30 * 40 / 60)
    assert row["verdict"]["minutes_observed"] == pytest.approx(30 * 40 / 60)
    assert main(["match", "--keys", "bz.json", "--log", "log.db", "--estimator", "cwa"]) == 0
    out = capsys.readouterr().out
    assert "close contact" in out and "cwa" in out


def test_log_export_feeds_match(log_with_a_contact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "export", "--db", "log.db", "--out", "seen.csv"]) == 0
    capsys.readouterr()
    assert main(["match", "--keys", "bz.json", "--observed", "seen.csv", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["sightings"] == 60
    with pytest.raises(SystemExit):
        main(["match", "--keys", "bz.json", "--observed", "seen.csv", "--estimator", "nope"])


def test_a_key_heard_without_rssi_is_unknown(
    tmp_path: Path, log_with_a_contact: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No RSSI in any sighting: "close contact" is unknown (JSON null), never "no"."""
    ring = load_keyring(Path(__import__("os").environ["PROXIMITY_KEYRING"]))
    start = parse_time(AT)
    with EncounterLog(tmp_path / "deaf.db") as log:
        log.add(
            [Sighting("bluezone", ring.broadcast_at("bluezone", start + s).id.value, start + s, None)
             for s in range(0, 600, 20)]
        )  # fmt: skip
    capsys.readouterr()
    assert main(["match", "--keys", "bz.json", "--log", "deaf.db", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["verdict"]["close_contact"] is None and row["verdict"]["score"] is None
    assert main(["match", "--keys", "bz.json", "--log", "deaf.db"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2].split()[-2:] == ["unknown", "-"]  # close contact, score


def test_match_applies_the_receivers_rssi_correction(
    log_with_a_contact: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def median(*extra: str) -> tuple[float, str]:
        capsys.readouterr()
        base = ["match", "--keys", "bz.json", "--log", "log.db", "--estimator", "cwa", "--json"]
        assert main([*base, *extra]) == 0
        captured = capsys.readouterr()
        (row,) = json.loads(captured.out)
        assert row["rssi_correction_db"] == pytest.approx(
            31 - row["verdict"]["attenuation_median_db"], abs=0.5
        )
        return row["verdict"]["attenuation_median_db"], captured.err

    fleet, err = median()
    assert "fleet value" in err
    # Bluezone sends no TX power: the fleet calibrated TX (-24 dBm) stands in for the sender
    assert median("--rssi-correction", "0")[0] == 31.0  # -24 dBm - (-55 dBm): uncorrected
    assert fleet == 28.0  # the fleet correction, +3 dB
    pixel, err = median("--device", "Pixel 4")
    assert pixel == 23.0 and "Pixel 4" in err  # its exact row: +8 dB
    with pytest.raises(SystemExit):
        main(["match", "--keys", "bz.json", "--log", "log.db", "--device", "x", "--rssi-correction", "1"])
    assert main(["match", "--keys", "bz.json", "--log", "log.db", "--rssi-correction", "nan"]) == 1
