"""``proximity log ...`` and ``proximity evaluate ...`` end to end (in process), on real and made-up data."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from proximity.cli.main import main
from proximity.cli.match import read_observed_csv
from proximity.estimation import DEFAULT_ESTIMATOR
from proximity.log import EncounterLog
from proximity.sightings import Sighting

T0 = 1_596_844_800.0
MIT = REPO / "data" / "mit-matrix-rssi.csv.gz"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "log.db"
    with EncounterLog(path) as log:
        log.add(
            [
                Sighting("gaen", bytes(range(16)), T0 + 10, -61, bytes([0x40, 0xF8, 0, 0])),
                Sighting("gaen", bytes(range(16)), T0 + 20, None),
                Sighting("bluezone", b"B" * 12, T0 + 86_400 * 20, -70),
            ]
        )
    return path


def test_stats_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "stats", "--db", str(db), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["sightings"] == 3 and stats["distinct_ids"] == 2
    assert stats["by_scheme"] == {"gaen": 2, "bluezone": 1}
    assert main(["log", "stats", "--db", str(db)]) == 0
    assert "distinct IDs" in capsys.readouterr().out


def test_export_is_what_match_reads(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "observed.csv"
    assert main(["log", "export", "--db", str(db), "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == ["id", "time", "rssi", "metadata", "scheme"]
    assert rows[0] == {"id": bytes(range(16)).hex(), "time": repr(T0 + 10), "rssi": "-61",
                       "metadata": "40f80000", "scheme": "gaen"}  # fmt: skip
    assert rows[1]["rssi"] == "" and rows[2]["scheme"] == "bluezone"
    observed = read_observed_csv(str(out))
    assert len(observed["gaen"]) == 2 and len(observed["bluezone"]) == 1
    assert np.isnan(observed["gaen"].rssi).sum() == 1
    assert main(["log", "export", "--db", str(db)]) == 0
    assert capsys.readouterr().out.count("\n") == 4


def test_prune_with_now(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = str(T0 + 86_400 * 21)
    assert main(["log", "prune", "--db", str(db), "--now", now, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sightings"] == 2
    assert main(["log", "prune", "--db", str(db), "--days", "0.5", "--now", "2020-08-29T00:00:00Z"]) == 0
    assert "removed 1 sightings" in capsys.readouterr().out


def test_wipe_asks_unless_yes(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert main(["log", "wipe", "--db", str(db)]) == 1
    with EncounterLog(db) as log:
        assert log.stats().sightings == 3
    assert main(["log", "wipe", "--db", str(db), "--yes"]) == 0
    with EncounterLog(db) as log:
        assert log.stats().sightings == 0


def test_foreign_or_missing_file_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 50)
    assert main(["log", "stats", "--db", str(junk)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("proximity: error: encounter log") and "left untouched" in err
    assert junk.read_bytes() == b"not a database at all" * 50
    assert main(["log", "stats", "--db", str(tmp_path / "missing.db")]) == 1
    assert "no encounter log" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()


def test_evaluate_json_on_the_mit_recordings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fit, scored = tmp_path / "fit.csv.gz", tmp_path / "score.csv.gz"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "split_by_config.py"), str(MIT), str(fit), str(scored)],
        check=True,
        capture_output=True,
    )
    assert main(["evaluate", str(scored), "--fit", str(fit), "--estimator", "all", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results[0]["name"] == DEFAULT_ESTIMATOR and results[0]["default"] is True
    assert [r["default"] for r in results].count(True) == 1
    for r in results:
        assert {"name", "auc", "ndcf_1.2", "ndcf_1.8", "ndcf_3.0", "file"} <= set(r)
        assert r["fit_files"] == ["fit"] and r["file"] == "score"
        assert 0 <= r["auc"] <= 1
    assert main(["evaluate", str(scored), "--estimator", "swisscovid"]) == 0
    assert "swisscovid" in capsys.readouterr().out


def test_evaluate_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path / "none.csv")]) == 1
    assert "no such recordings file" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["evaluate", str(bad)]) == 1
    assert f"{bad}: row 1, column config, session, distance_m, t_s, rssi: missing" in capsys.readouterr().err
    assert main(["evaluate", str(MIT), "--estimator", "nope"]) == 1


def test_readme_tables_are_what_make_evaluate_writes(capsys: pytest.CaptureFixture[str]) -> None:
    """Every leave-one-dataset-out table in the README (per file and pooled) is what `make evaluate`
    renders from `proximity evaluate ... --leave-one-dataset-out --json`."""
    data = REPO / "data"
    scored = [
        str(data / f"{n}.csv.gz") for n in ("mit-matrix-rssi", "range_angle", "kri_anechoic", "herald_edison")
    ]
    args = [
        "evaluate",
        *scored,
        "--fit",
        str(data / "mit_static.csv.gz"),
        "--leave-one-dataset-out",
        "--json",
    ]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    spec = importlib.util.spec_from_file_location("readme_tables", REPO / "scripts" / "readme_tables.py")
    assert spec is not None and spec.loader is not None
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    text = (REPO / "README.md").read_text()
    files = ["mit-matrix-rssi", "range_angle", "kri_anechoic", "herald_edison", "pooled"]
    assert [r["file"] for r in rows if r["default"]] == files
    for file in files:
        section = text.split(f"<!-- evaluate:{file} -->\n")[1].split(f"\n<!-- /evaluate:{file} -->")[0]
        assert section == tables.render(rows, file)


def test_cross_validate_within_one_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(MIT), "--cross-validate"]) == 0
    printed = capsys.readouterr().out
    assert f"{DEFAULT_ESTIMATOR} (default)" in printed and "vs the best preset at 1.8 m" in printed
    assert main(["evaluate", str(MIT), "--cross-validate", "--json"]) == 0
    results = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for r in results.values():
        assert r["folds"] == 8 and r["sessions"] == 67  # every session scored once, held out


def test_cross_validate_refuses_fit_and_single_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(MIT), "--cross-validate", "--fit", str(MIT)]) == 1
    assert "drop --fit" in capsys.readouterr().err
    one = tmp_path / "one.csv"
    one.write_text(
        "config,session,distance_m,t_s,rssi\n"
        + "".join(f"C,s{d},{d},{t},-60\n" for d in (1, 3) for t in range(5))
    )
    assert main(["evaluate", str(one), "--cross-validate"]) == 1
    assert "at least 2 configurations" in capsys.readouterr().err
