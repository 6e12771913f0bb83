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
    assert row["verdict"]["estimator"] == "probabilistic"
    assert 0 <= row["verdict"]["probability"] <= 1
    assert row["verdict"]["distance_m"] > 0
    assert (
        main(["match", "--keys", "bz.json", "--log", "log.db", "--estimator", "bluezone-near", "--json"]) == 0
    )
    (row,) = json.loads(capsys.readouterr().out)
    assert row["verdict"]["close_contact"] is True  # 20 minutes at -55 dBm is "near" for Bluezone
    # 30 scans 40 s apart, the first counted as 120 s (GAEN: unknown gap): 21.3 weighted minutes
    assert row["verdict"]["weighted_minutes"] == pytest.approx(29 * 40 / 60 + 2)
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
