"""`proximity simulate`: tidy rows, files and plots, and the same results inline, on a local Dask
cluster and on a given scheduler."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from proximity.cli.main import main

SCENARIO = """
name = "tiny"
duration = 1200
scheme = "gaen"
adoption = [0.5]
estimators = ["probabilistic", "cwa"]
contact_minutes = 5.0
chunk = 600
[crowd]
agents = 16
width = 5.0
height = 4.0
stationary = 0.75
waypoint = 0.25
"""


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(SCENARIO)
    return path


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    assert main(["simulate", *args, "--json"]) == 0
    rows: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return rows


def test_json_rows_and_files(scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = [
        str(scenario),
        "--adoption",
        "0.4,0.8",
        "--seeds",
        "2",
        "--scheduler",
        "inline",
        "--out",
        str(out),
    ]
    assert main(["simulate", *args, "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert "results.csv" in captured.err
    assert len(rows) == 2 * 2 * 2
    assert [(r["adoption"], r["estimator"], r["seed"]) for r in rows] == [
        (p, e, s) for p in (0.4, 0.8) for e in ("cwa", "probabilistic") for s in (0, 1)
    ]
    for row in rows:
        for key in ("true_contacts", "detected", "notified", "fraction_traced", "false_positives"):
            assert key in row
    with (out / "results.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(rows) and table[0]["estimator"] == "cwa"
    pq = pytest.importorskip("pyarrow.parquet")
    assert "results.parquet" in captured.err
    frame = pq.read_table(out / "results.parquet").to_pylist()
    assert frame == rows  # same rows, typed (ints stay ints, NaN -> null as in --json)
    for png in ("fraction_traced.png", "roc.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_and_progress(scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(scenario), "--estimator", "cwa", "--scheduler", "inline"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].split()[:3] == ["adoption", "estimator", "seed"]
    assert "1/1 runs" in captured.err


def test_same_results_inline_and_on_dask(scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    distributed = pytest.importorskip("dask.distributed")
    args = [str(scenario), "--adoption", "0.6", "--seeds", "2"]
    inline = _json(capsys, *args, "--scheduler", "inline")
    local = _json(capsys, *args, "--workers", "2")
    assert local == inline
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        remote = _json(capsys, *args, "--scheduler", cluster.scheduler_address)
    assert remote == inline


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--estimator", "nope"], "unknown estimator"),
        (["--seeds", "0"], "--seeds"),
    ],
)
def test_bad_arguments_fail_with_one_line(
    scenario: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["simulate", str(scenario), "--scheduler", "inline", *args]) == 1
    assert message in capsys.readouterr().err


def test_unusable_out_fails_before_simulating(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["simulate", str(scenario), "--scheduler", "inline", "--out", str(blocker)]) == 1
    captured = capsys.readouterr()
    assert "cannot create --out" in captured.err and "runs" not in captured.err


def test_bad_scenario_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(tmp_path / "missing.toml")]) == 1
    assert "cannot read scenario" in capsys.readouterr().err
