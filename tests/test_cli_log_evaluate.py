"""``proximity log ...`` and ``proximity evaluate ...`` end to end (in process), on real and made-up data."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import REPO
from proximity.cli.main import main
from proximity.cli.match import read_observed_csv
from proximity.estimation.presets import PRESETS
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
    assert results[0]["name"] == "probabilistic"
    for r in results:
        assert {"name", "auc", "ndcf_1.2", "ndcf_1.8", "ndcf_3.0"} <= set(r)
        assert not set(r["fit_configs"]) & set(r["score_configs"])
        assert 0 <= r["auc"] <= 1
    assert main(["evaluate", str(scored), "--estimator", "swisscovid"]) == 0
    assert "swisscovid" in capsys.readouterr().out


def test_evaluate_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path / "none.csv")]) == 1
    assert "no such recordings file" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["evaluate", str(bad)]) == 1
    assert "lack column" in capsys.readouterr().err
    assert main(["evaluate", str(MIT), "--estimator", "nope"]) == 1


EN_DASH, MINUS = "\u2013", "\u2212"  # as the README typesets ranges and negative numbers


def _check_readme_section(marker: str, results: dict[str, dict[str, Any]]) -> None:
    """The table between the README's markers, and the paired-difference line under it, are these results."""
    text = (REPO / "README.md").read_text()
    section, after = text.split(f"<!-- evaluate:{marker} -->")[1].split(f"<!-- /evaluate:{marker} -->")
    table = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(table) == len(results)
    for line in table:
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        r = results[cells[0]]
        assert [float(c) for c in cells[1:5]] == [
            round(r["auc"], 3), round(r["ndcf_1.2"], 3), round(r["ndcf_1.8"], 3), round(r["ndcf_3.0"], 3)
        ]  # fmt: skip
        assert cells[5] == "{:.2f}{}{:.2f}".format(r["ndcf_1.8_ci"][0], EN_DASH, r["ndcf_1.8_ci"][1])
    best = min((r for r in results.values() if r["name"] in PRESETS), key=lambda r: r["ndcf_1.8"])
    versus = results["probabilistic"]["versus"]
    pair = next(v for v in versus if (v["name"], v["distance"]) == (best["name"], 1.8))
    line = after.strip().splitlines()[0]
    expected = f"`probabilistic` - `{best['name']}` at 1.8 m: **{pair['difference']:+.3f}** (95% CI "
    expected += f"{pair['low']:+.2f} to {pair['high']:+.2f};"
    assert line.startswith(expected.replace("-", MINUS))
    assert f"lower in {pair['share_lower']:.0%} of redraws" in after.split("\n\n")[1]


def test_readme_table_is_reproduced(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The README's first estimator table is what `make evaluate` prints for fold A."""
    fit, scored = tmp_path / "fit.csv.gz", tmp_path / "score.csv.gz"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "split_by_config.py"), str(MIT), str(fit), str(scored)],
        check=True,
        capture_output=True,
    )
    assert main(["evaluate", str(scored), "--fit", str(fit), "--json"]) == 0
    _check_readme_section("fold-a", {r["name"]: r for r in json.loads(capsys.readouterr().out)})


def test_readme_cross_validation_table_is_reproduced(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's leave-one-configuration-out table is what `make evaluate` prints for it."""
    assert main(["evaluate", str(MIT), "--cross-validate"]) == 0
    printed = capsys.readouterr().out
    assert "probabilistic vs the best preset at 1.8 m (enx)" in printed and "interval spans 0" in printed
    assert main(["evaluate", str(MIT), "--cross-validate", "--json"]) == 0
    results = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for r in results.values():
        assert r["folds"] == 8 and r["sessions"] == 67  # every session scored once, held out
    _check_readme_section("loco", results)


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


@pytest.mark.parametrize("days", ["-1", "nan", "inf", "1e400", "-0.5", "soon"])
def test_prune_refuses_bad_days_in_one_line(db: Path, days: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Regression: --days -1 ended in a ValueError traceback.
    with pytest.raises(SystemExit) as caught:
        main(["log", "prune", "--db", str(db), "--days", days, "--now", str(T0)])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "--days" in err and "Traceback" not in err
    with EncounterLog(db) as log:
        assert log.stats().sightings == 3  # nothing was pruned


@pytest.mark.parametrize("now", ["garbage", "nan", "1e400", ""])
def test_prune_refuses_bad_now_in_one_line(db: Path, now: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["log", "prune", "--db", str(db), "--now", now])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "--now" in err and "Traceback" not in err


def test_prune_days_far_back_prints_a_cutoff(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "prune", "--db", str(db), "--days", "1e300", "--now", str(T0)]) == 0
    assert "removed 0 sightings" in capsys.readouterr().out


def test_prune_api_raises_a_typed_error(db: Path) -> None:
    from proximity.errors import ProximityError

    with EncounterLog(db) as log:
        for days in (-1.0, float("nan"), float("inf")):
            with pytest.raises(ProximityError, match="days"):
                log.prune(days, now=T0)
        with pytest.raises(ProximityError, match="now"):
            log.prune(1, now=float("nan"))
