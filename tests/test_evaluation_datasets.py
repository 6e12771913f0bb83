"""Scoring across recording files: leave-one-dataset-out, the pooled table, n/a metrics, the fitted
defaults file, and refusals of bad recordings."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from proximity.cli.main import main
from proximity.errors import RecordingFormatError
from proximity.estimation import DEFAULT_ESTIMATOR, shipped_defaults
from proximity.estimation.evaluation import (
    NESTED,
    Session,
    evaluate,
    evaluate_files,
    leave_one_dataset_out,
    parse_recordings,
)

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
HEADER = (
    "config,session,receiver_carriage,beacon_carriage,receiver_model,beacon_model,"
    "distance_m,t_s,rssi,tx_power\n"
)


def _file(seed: int, offset: float, distances: tuple[float, ...] = (0.9, 1.5, 2.4, 3.6, 4.5)) -> str:
    rng = np.random.default_rng(seed)
    lines = [HEADER]
    for c in range(3):
        config_offset = offset + rng.normal(0, 3)
        for d in distances:
            for t in np.arange(0, 60, 1.0):
                rssi = round(-60 - 20 * math.log10(d) + config_offset + rng.normal(0, 4))
                lines.append(f"C{c},s{d},hand,hand,Samsung A20,iPhone 11,{d},{t},{rssi},-999\n")
    return "".join(lines)


def _files() -> dict[str, list[Session]]:
    return {
        "a": parse_recordings(_file(1, 0.0), "a"),
        "b": parse_recordings(_file(2, -6.0), "b"),
        "c": parse_recordings(_file(3, 4.0, (1.8, 3.6)), "c"),  # no session within 1.2 m: n/a there
    }


def test_leave_one_dataset_out_scores_each_file_by_a_fit_on_the_others() -> None:
    files = _files()
    rows = leave_one_dataset_out(files, names=["mean-attenuation", "enx"])
    for file, sessions in files.items():
        others = [s for f, ss in files.items() if f != file for s in ss]
        (alone,) = [
            r for r in evaluate(sessions, others, ["mean-attenuation"]) if r["name"] == "mean-attenuation"
        ]
        (row,) = [r for r in rows if r["file"] == file and r["name"] == "mean-attenuation"]
        assert row["ndcf_1.8"] == alone["ndcf_1.8"] and row["decision_1.8"] == alone["decision_1.8"]
        assert row["default"] is (row["name"] == DEFAULT_ESTIMATOR)
    c = {r["name"]: r for r in rows if r["file"] == "c"}
    assert math.isnan(c["enx"]["ndcf_1.2"]) and math.isnan(c["enx"]["auc_1.2"])  # one class at 1.2 m
    assert math.isfinite(c["enx"]["ndcf_1.8"])
    pooled = {r["name"]: r for r in rows if r["file"] == "pooled"}
    for name, row in pooled.items():
        per_file = [r["ndcf_1.8"] for r in rows if r["name"] == name and r["file"] in files]
        assert row["ndcf_1.8"] == pytest.approx(np.mean(per_file))  # every file weighs the same
        per_file_12 = [r["ndcf_1.2"] for r in rows if r["name"] == name and r["file"] in ("a", "b")]
        assert row["ndcf_1.2"] == pytest.approx(np.mean(per_file_12))  # n/a files left out
    nested = pooled[NESTED]
    assert set(nested["chosen"]) == set(files)
    for file, choice in nested["chosen"].items():
        (row,) = [r for r in rows if r["file"] == file and r["name"] == NESTED]
        assert row["selection"]["chosen"] == choice and choice in row["selection"]["inner_ndcf_1.8"]
    versus = {(v["name"], v["distance"]) for v in pooled["mean-attenuation"]["versus"]}
    assert ("enx", 1.8) in versus and (NESTED, 1.8) in versus


def test_without_fit_every_estimator_uses_its_shipped_defaults() -> None:
    files = _files()
    rows = evaluate_files(files, None, ["mean-attenuation", "max-attenuation", "enx"])
    defaults = shipped_defaults()
    for row in [r for r in rows if r["file"] != "pooled"]:
        if row["name"] == "max-attenuation":
            assert row["decision_1.8"]["threshold_db"] == defaults.thresholds["max"][1.8]
        if row["name"] == "enx":
            assert row["decision_1.8"]["threshold"] == 1.0  # 15 weighted minutes of 15
    assert [r["default"] for r in rows if r["file"] == "a"] == [True, False, False]


def test_committed_fitted_defaults_are_what_make_fit_writes(tmp_path: Path) -> None:
    out = tmp_path / "fitted.json"
    names = ("mit-matrix-rssi", "range_angle", "kri_anechoic", "herald_edison", "mit_static")
    files = [str(DATA / f"{n}.csv.gz") for n in names]
    script = REPO / "scripts" / "fit_defaults.py"
    subprocess.run([sys.executable, str(script), "--out", str(out), *files], check=True, capture_output=True)
    committed = REPO / "src" / "proximity" / "estimation" / "data" / "fitted.json"
    assert out.read_text() == committed.read_text()
    document = json.loads(committed.read_text())
    assert document["default_estimator"] == DEFAULT_ESTIMATOR == shipped_defaults().estimator


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("config,session,distance_m,t_s\nA,s,1,0\n", "row 1, column rssi: missing from the header"),
        (HEADER + "A,s,,,x,y,1,0,-60,-999\nA,s,,,x,y,1,1,strong,-999\n", "row 3, column rssi: not a number"),
        (
            HEADER + "A,s,,,x,y,1,0,-60,-999\nA,s,,,x,y,2,1,-61,-999\n",
            "row 3, column distance_m: session 's' ",
        ),
        (HEADER + "A,s,,,x\x07,y,1,0,-60,-999\n", "row 2, column receiver_model: model name with control"),
        (
            HEADER + f"A,s,,,x,{'y' * 101},1,0,-60,-999\n",
            "row 2, column beacon_model: model name with over 100",
        ),
        (HEADER + "A,s,,,x,y,1,0,-60\n", "row 2, column tx_power: 9 cells"),
    ],
)
def test_bad_recordings_get_one_line_naming_file_row_and_column(
    tmp_path: Path, body: str, where: str
) -> None:
    with pytest.raises(RecordingFormatError, match="^bad: " + where.replace("*", r"\*")):
        parse_recordings(body, "bad")
    path = tmp_path / "bad.csv"
    path.write_text(body)
    good = tmp_path / "good.csv"
    good.write_text(_file(1, 0.0))
    fitted_before = shipped_defaults()
    assert main(["evaluate", str(good), "--fit", str(path)]) == 1  # read and checked before any fit
    assert shipped_defaults() is fitted_before


def test_evaluate_cli_reports_fallbacks_and_pooled_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, seed, offset in (("a", 1, 0.0), ("b", 2, -6.0)):
        (tmp_path / f"{name}.csv").write_text(_file(seed, offset))
    args = ["evaluate", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--leave-one-dataset-out"]
    assert main([*args, "--estimator", "enx"]) == 0
    out = capsys.readouterr().out
    assert "a: exact 15 | exact 15" in out and "pooled, every file weighing the same" in out
    assert main([*args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["file"] for r in rows} == {"a", "b", "pooled"}
    assert [r["name"] for r in rows if r["default"]] == [DEFAULT_ESTIMATOR] * 3
