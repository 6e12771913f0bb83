"""Epidemic scenarios, the coupling file and the CLI: bad input is refused before any run starts."""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("covasim")

from conftest import REPO
from proximity.cli.main import main
from proximity.epi import sweep as sweep_module
from proximity.epi.coupling import (
    CouplingError,
    DelayModel,
    bootstrap_ratio,
    coupling_inputs,
    day_offsets,
    load_coupling,
)
from proximity.epi.scenario import EpidemicScenarioError, load_epidemic, scenario_from_dict
from proximity.errors import ProximityError

PROVINCE = REPO / "simulations" / "quang-ninh-province.toml"
DISTRICT = REPO / "simulations" / "quang-ninh-district.toml"
COUPLING = REPO / "simulations" / "coupling" / "quang-ninh.json"


def _province() -> dict[str, Any]:
    data = tomllib.loads(PROVINCE.read_text())
    data["app"]["coupling"] = str(COUPLING)
    return data


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    """A scenario file from a dict (TOML by hand: inline tables for the nested ones)."""

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{section}]")
            lines += [f"{k} = {value(v)}" for k, v in table.items()]
    path = tmp_path / "scenario.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def no_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any run starting is a failure of the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a run started")

    monkeypatch.setattr(sweep_module, "run_epidemic", refuse)


def test_shipped_scenarios_load_and_match_the_committed_coupling() -> None:
    for path in (PROVINCE, DISTRICT):
        scenario = load_epidemic(path)
        coupling = scenario.load_coupling()  # refuses a stale file
        assert set(coupling.layers) == {"h", "s", "w", "c"}
    province = load_epidemic(PROVINCE)
    assert province.population == 1_320_000 and province.pop_scale == 1.0
    assert province.adoption == (0.0, 0.01, 0.272, 0.58, 1.0)


def test_committed_coupling_has_intervals_and_provenance() -> None:
    coupling = load_coupling(COUPLING)
    for layer in coupling.layers.values():
        assert layer.p_detect_low <= layer.p_detect <= layer.p_detect_high
        assert layer.false_rate_low <= layer.false_rate <= layer.false_rate_high
        assert layer.notifiable > 0
        assert layer.notified / layer.notifiable == pytest.approx(layer.p_detect, rel=0.5)
    assert coupling.provenance["command"] == "make coupling"
    assert set(coupling.provenance["venue_sha256"]) == {"home", "classroom", "office", "market", "bus"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(adoption=[0.0, 1.2]), r"adoption must be a number in \[0, 1\]"),
        (lambda d: d.update(sweep=[-0.1]), r"sweep must be a number in \[0, 1\]"),
        (lambda d: d["app"].update(ownership=0.5), r"adoption 0.58 exceeds app.ownership 0.5"),
        (lambda d: d["app"]["venues"].pop("c"), r"layer 'c' has no venue mapping"),
        (lambda d: d["app"]["venues"].update(c={"market": 0.5, "bus": 0.3}), r"weights must sum to 1"),
        (lambda d: d.update(population=2_000_000_000, agents=1_900_000_000), r"GB per run, more than"),
        (lambda d: d.update(agents=10), r"agents must be a whole number in \[100"),
        (lambda d: d.update(colour="red"), r"unknown key 'colour'"),
        (lambda d: d["testing"].update(symp_prob=2), r"testing.symp_prob must be"),
        (lambda d: d["app"].update(adoption_by="village"), r"adoption_by must be"),
        (lambda d: d["app"]["delay"].update(diagnosis_hours=[20, 8]), r"diagnosis_hours"),
    ],
)
def test_bad_scenarios_are_refused_naming_the_key(change: Any, message: str) -> None:
    data = _province()
    change(data)
    with pytest.raises(EpidemicScenarioError, match=message):
        scenario_from_dict(data)


def test_a_coupling_measured_for_another_os_mix_is_refused() -> None:
    data = _province()
    data["app"]["os_mix"] = {"android": 1.0}
    scenario = scenario_from_dict(data)
    with pytest.raises(EpidemicScenarioError, match=r"measured with os_mix .*make coupling"):
        scenario.load_coupling()


def test_a_damaged_coupling_file_is_a_typed_error(tmp_path: Path) -> None:
    bad = tmp_path / "c.json"
    bad.write_text('{"layers": {}}')
    with pytest.raises(CouplingError, match="damaged"):
        load_coupling(bad)
    with pytest.raises(CouplingError, match="cannot read"):
        load_coupling(tmp_path / "missing.json")
    data = json.loads(COUPLING.read_text())
    data["layers"]["h"]["p_detect"] = 1.5
    bad.write_text(json.dumps(data))
    with pytest.raises(CouplingError, match="impossible"):
        load_coupling(bad)


@pytest.mark.usefixtures("no_runs")
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(adoption=[2.0]), "adoption must be"),
        (lambda d: d["app"]["venues"].pop("w"), "layer 'w' has no venue mapping"),
        (lambda d: d.update(population=3_000_000_000, agents=2_000_000_000), "population must be"),
        (lambda d: d.update(population=1_000_000_000, agents=900_000_000), "GB per run"),
    ],
)
def test_cli_refuses_bad_input_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, message: str
) -> None:
    data = _province()
    change(data)
    path = _write(tmp_path, data)
    assert main(["epidemic", str(path), "--scheduler", "inline"]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.usefixtures("no_runs")
def test_cli_adoption_outside_the_unit_interval(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["epidemic", str(DISTRICT), "--adoption", "0.5,1.5"])
    assert stop.value.code == 2
    assert "adoptions must be numbers in [0, 1]" in capsys.readouterr().err


@pytest.mark.usefixtures("no_runs")
def test_cli_too_many_local_workers_for_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["epidemic", str(PROVINCE), "--workers", "10000"]) == 1
    assert "local workers" in capsys.readouterr().err


def test_errors_are_proximity_errors() -> None:
    assert issubclass(EpidemicScenarioError, ProximityError)
    assert issubclass(CouplingError, ProximityError)


def test_day_offsets_split_an_hour_level_delay() -> None:
    assert day_offsets(DelayModel(0, 0, 0, 0, (8.0, 20.0))) == (1.0,)
    # 10 h fixed delay after a diagnosis uniform over 8-20 h: past midnight when the hour is > 14, half
    offsets = day_offsets(DelayModel(10.0, 0, 0, 0, (8.0, 20.0)))
    assert offsets[0] == pytest.approx(0.5, abs=0.01) and sum(offsets) == pytest.approx(1.0)
    assert day_offsets(DelayModel(30.0, 0, 0, 0, (8.0, 8.0))) == (0.0, 1.0)


def test_bootstrap_ratio_mixes_venues_and_brackets_the_point() -> None:
    point, low, high = bootstrap_ratio([[1, 2, 3], [5, 5]], [[10, 10, 10], [10, 10]], [0.5, 0.5])
    assert point == pytest.approx(0.5 * 0.2 + 0.5 * 0.5)
    assert low <= point <= high and high - low > 0
    with pytest.raises(CouplingError, match="no contacts"):
        bootstrap_ratio([[0]], [[0]], [1.0])


def test_coupling_inputs_name_everything_the_file_depends_on() -> None:
    inputs = coupling_inputs({"h": {"home": 1.0}}, "bluezone", {"android": 1.0}, 0.1)
    assert set(inputs) == {"scheme", "os_mix", "foreground_share", "venues", "estimator"}


def test_the_coupling_section_of_the_docs_shows_the_committed_figures() -> None:
    """docs/epidemic.md quotes the committed coupling file's detection figures (re-run make coupling,
    then update the table)."""
    coupling = load_coupling(COUPLING)
    docs = (REPO / "docs" / "epidemic.md").read_text()
    for layer in coupling.layers.values():
        assert re.search(rf"\| {layer.layer} .*\| {layer.p_detect:.3f} \[", docs), layer.layer
    assert not math.isnan(coupling.delay_mean_hours) and np.isfinite(coupling.offsets).all()
