"""`proximity simulate`: tidy rows, files and plots, and the same results inline, on a local Dask
cluster and on a given scheduler."""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from proximity.cli.main import main
from proximity.sim import CrowdParams, Scenario
from proximity.sim.run import ShardResult, run_shard

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
    about = json.loads((out / "run.json").read_text())
    assert about["seeds"] == [0, 1] and about["scenario"]["channel"]["sensitivity_dbm"] == -100.0
    assert about["package_version"]
    with (out / "contacts.csv").open() as handle:
        contacts = list(csv.DictReader(handle))
    assert {"agent_a", "agent_b", "companions", "minutes_close", "cwa_close_a", "cwa_notified_b_at"} <= set(
        contacts[0]
    )
    parquet = pq.read_table(out / "contacts.parquet").to_pydict()
    assert list(parquet) == list(contacts[0])  # the same columns, in order, and the same rows
    assert len(parquet["agent_a"]) == len(contacts)
    assert [str(v) for v in parquet["agent_a"]] == [r["agent_a"] for r in contacts]
    assert [str(v) for v in parquet["cwa_score_a"]] == [r["cwa_score_a"] for r in contacts]
    assert pq.read_schema(out / "contacts.parquet").field("companions").type == "bool"
    for png in ("fraction_traced.png", "roc.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_and_progress(scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(scenario), "--estimator", "cwa", "--scheduler", "inline"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].split()[:4] == ["adoption", "estimator", "seeds", "interval"]
    assert "10/10 runs" in captured.err  # 10 seeds by default: intervals over seeds
    assert captured.out.splitlines()[2].split()[2:4] == ["10", "seeds"]


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
        (["--shards", "0"], "--shards must be at least 1"),
        (["--workers", "-1"], "--workers must be at least 1"),
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


# -- Dask keys: every run's key names everything its result depends on -------------------------------


def _two_scenarios() -> tuple[Scenario, Scenario]:
    crowd = CrowdParams(agents=12, width=4.0, height=3.0, stationary=0.5, waypoint=0.5, pause=(0, 60))
    a = Scenario(name="a", crowd=crowd, duration=600, chunk=600, duty="continuous", estimators=("cwa",))
    b = dataclasses.replace(a, name="b", crowd=dataclasses.replace(crowd, agents=20, width=6.0))
    return a, b


def test_dask_task_keys_differ_by_scenario_and_estimators() -> None:
    pytest.importorskip("dask")
    from proximity.sim.split import shard_key

    a, b = _two_scenarios()
    key = shard_key(a, ["cwa"], 0.5, 0, 0, 1)
    assert key == shard_key(dataclasses.replace(a), ("cwa",), 0.5, 0, 0, 1)  # deterministic, by value
    others = {
        shard_key(b, ["cwa"], 0.5, 0, 0, 1),
        shard_key(dataclasses.replace(a, contact_minutes=5.0), ["cwa"], 0.5, 0, 0, 1),
        shard_key(a, ["cwa"], 0.5, 0, 1, 2),
        shard_key(a, ["cwa", "probabilistic"], 0.5, 0, 0, 1),
        shard_key(a, ["cwa"], 0.6, 0, 0, 1),
        shard_key(a, ["cwa"], 0.5, 1, 0, 1),
    }
    assert len(others) == 6 and key not in others


def _slow_run(
    scenario: Scenario, adoption: float, seed: int, estimators: list[str], shard: int, shards: int
) -> ShardResult:
    time.sleep(0.5)  # both sweeps' tasks are on the scheduler at once
    return run_shard(scenario, adoption, seed, estimators, shard, shards)


def test_concurrent_sweeps_on_one_scheduler_keep_their_own_results(monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("dask.distributed")
    from proximity.sim import sweep as sweep_module

    monkeypatch.setattr(sweep_module, "run_shard", _slow_run)
    a, b = _two_scenarios()
    with (
        distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        ThreadPoolExecutor(2) as pool,
    ):
        runs = [
            pool.submit(sweep_module.sweep, s, [0.5], ["cwa"], 1, scheduler=cluster.scheduler_address)
            for s in (a, b)
        ]
        got_a, got_b = (run.result(timeout=60) for run in runs)
    assert [(r.scenario, r.agents) for r in got_a.rows] == [("a", 12)]
    assert [(r.scenario, r.agents) for r in got_b.rows] == [("b", 20)]


@pytest.mark.parametrize("scheduler", ["inline", "local"])
def test_ctrl_c_keeps_the_runs_that_finished(
    scenario: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    scheduler: str,
) -> None:
    # Regression: Ctrl-C under Dask printed a CancelledError traceback and lost the finished runs.
    from proximity.cli import simulate as simulate_cli

    def interrupt_after_the_first(done: int, total: int, started: float) -> None:
        if done == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(simulate_cli, "_progress_bar", interrupt_after_the_first)
    out = tmp_path / "out"
    args = ["simulate", str(scenario), "--seeds", "3", "--estimator", "cwa", "--out", str(out), "--json"]
    if scheduler == "inline":
        args += ["--scheduler", "inline"]
    else:
        args += ["--workers", "1"]
    assert main(args) == 130
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert len(rows) >= 1 and "Traceback" not in captured.err and "interrupted" in captured.err
    assert len(list(csv.DictReader((out / "results.csv").open()))) == len(rows)
