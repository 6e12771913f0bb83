"""One record per scheme, one home per fact: the rules, checked by parsing the source."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import proximity
from proximity.ble.node import DUTY_CYCLES as NODE_DUTY_CYCLES
from proximity.schemes.bluezone import BYTE_SELECT
from proximity.schemes.registry import (
    SCHEME_NAMES,
    SchemeRecord,
    UnknownSchemeError,
    register_scheme,
    scheme_record,
    scheme_records,
)
from proximity.sim.duty import DUTY_CYCLES as SIM_DUTY_CYCLES

SRC = Path(proximity.__file__).parent
NAMES = frozenset(SCHEME_NAMES)


def _literal_names(node: ast.AST) -> list[str]:
    """Scheme names written as literals in ``node`` (a constant, or a tuple/list/set of them)."""
    if isinstance(node, ast.Constant) and node.value in NAMES:
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [n for element in node.elts for n in _literal_names(element)]
    return []


def scheme_name_comparisons(source: str) -> list[tuple[int, str]]:
    """(line, name) of every ``==``/``!=``/``in``/``not in``/``is`` comparison with a scheme-name literal."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                found += [(node.lineno, name) for name in _literal_names(operand)]
        elif isinstance(node, ast.match_case):  # `case "gaen":` is a comparison too
            pattern = node.pattern
            if isinstance(pattern, ast.MatchValue):
                found += [(pattern.lineno, name) for name in _literal_names(pattern.value)]
    return found


def test_no_scheme_name_comparisons_outside_schemes() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{line} compares with {name!r}"
        for path in sorted(SRC.rglob("*.py"))
        if "schemes" not in path.relative_to(SRC).parts
        for line, name in scheme_name_comparisons(path.read_text())
    ]
    assert offenders == [], "ask the scheme's record instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "code",
    [
        'if scheme == "gaen": pass',
        'x = "bluezone" != s',
        'ok = s in ("gaen", "bluezone")',
        'ok = s not in ["dp3t"]',
        'match s:\n    case "gaen":\n        pass',
    ],
)
def test_the_comparison_check_finds_each_form(code: str) -> None:
    assert scheme_name_comparisons(code), code


def test_the_comparison_check_ignores_data() -> None:
    assert scheme_name_comparisons('SCENARIO = {"scheme": "gaen"}\nf(scheme="bluezone")') == []


def test_node_and_simulator_duty_cycles_come_from_the_same_record() -> None:
    for record in scheme_records():
        assert SIM_DUTY_CYCLES[record.name] is record.duty
        assert NODE_DUTY_CYCLES[record.name] == (record.duty.scan_on, record.duty.scan_period)
    assert NODE_DUTY_CYCLES["continuous"] is None and SIM_DUTY_CYCLES["continuous"].scan_window is None
    # The choice the issue asked for: GAEN scans 4 s every 300 s (the spec allows 210-300 s).
    assert (scheme_record("gaen").duty.scan_on, scheme_record("gaen").duty.scan_period) == (4.0, 300.0)


def test_records_are_consistent_with_their_schemes() -> None:
    for record in scheme_records():
        assert record.advert.scheme == record.name
        assert record.slot_seconds * record.ids_per_day == 86400
        assert callable(record.load_matcher())
    assert len({r.log_code for r in scheme_records()}) == len(SCHEME_NAMES)


def test_a_name_or_log_code_cannot_be_registered_twice() -> None:
    gaen = scheme_record("gaen")
    with pytest.raises(ValueError, match="already registered"):
        register_scheme(gaen)
    from dataclasses import replace

    with pytest.raises(ValueError, match="log code 0"):
        register_scheme(replace(gaen, name="other"))
    assert tuple(r.name for r in scheme_records()) == SCHEME_NAMES


def test_an_unknown_scheme_is_a_key_error_naming_the_known_ones() -> None:
    with pytest.raises(UnknownSchemeError, match="expected one of gaen, bluezone, dp3t"):
        scheme_record("tracetogether")
    with pytest.raises(KeyError):
        scheme_record(["not", "hashable"])  # type: ignore[arg-type]
    assert isinstance(scheme_record("dp3t"), SchemeRecord)


def test_bluezone_byte_selection_has_no_copy_in_c() -> None:
    """The C backend knows no scheme: the byte selection is passed to its SHA-256 chains."""
    c_source = (SRC / "crypto" / "_native.c").read_text()
    assert "BLUEZONE" not in c_source.upper() and "0, 4, 8, 12, 16, 18" not in c_source
    assert np.unique(BYTE_SELECT).size == 12


def test_each_fact_has_one_home() -> None:
    """Literals that used to be copied across modules now appear once in src."""
    facts = {
        '"-0000-1000-8000-00805f9b34fb"': 1,  # the Bluetooth base UUID's tail, as a constant
        "0, 4, 8, 12, 16, 18, 20, 22, 24, 26, 28, 30": 1,  # Bluezone's byte selection (Python side)
        "DEDUP_SECONDS = ": 0,  # de-duplication is the record's dedup_seconds
        "RETENTION_DAYS = 14": 1,  # the registry's; the log and the key ring import it
        "_AD_SERVICE_DATA_16 = ": 0,  # AD types are proximity.payloads.adstructures' alone
        "_AD_MANUFACTURER = ": 0,
    }
    texts = {path: path.read_text() for path in SRC.rglob("*.py")}
    for fact, count in facts.items():
        where = [str(p.relative_to(SRC)) for p, text in texts.items() for _ in range(text.count(fact))]
        assert len(where) == count, (fact, where)


def test_background_limits_per_os_are_the_records_and_the_simulator_reads_them() -> None:
    from dataclasses import replace

    from proximity.schemes.registry import OPERATING_SYSTEMS
    from proximity.sim.duty import ADVERTISES_ONLY_IN_FOREGROUND

    assert {
        (record.name, system) for record in scheme_records() for system in record.foreground_only
    } == ADVERTISES_ONLY_IN_FOREGROUND
    assert ("bluezone", "ios") in ADVERTISES_ONLY_IN_FOREGROUND  # the one known limit, on its record
    assert ("gaen", "ios") not in ADVERTISES_ONLY_IN_FOREGROUND  # GAEN runs in the OS: exempt
    assert all(r.foreground_only <= set(OPERATING_SYSTEMS) for r in scheme_records())
    odd = replace(scheme_record("gaen"), name="other", log_code=99, foreground_only=frozenset({"palmos"}))
    with pytest.raises(ValueError, match="palmos"):
        register_scheme(odd)


def test_key_files_are_sniffed_through_the_records(tmp_path: Path) -> None:
    from proximity.keyfiles.bluezone_json import dump_records
    from proximity.keyfiles.dp3t_json import dump_exposees
    from proximity.keyfiles.gaen_export import EXPORT_HEADER
    from proximity.schemes.bluezone import BluezoneBaseKey
    from proximity.schemes.dp3t import Dp3tDayKey
    from proximity.schemes.registry import sniff_key_file

    day = 1596585600
    heads = {
        "gaen": b"PK\x03\x04" + bytes(60),
        "bluezone": dump_records([BluezoneBaseKey(bytes(32), day).record(day)]).encode()[:256],
        "dp3t": dump_exposees([Dp3tDayKey(bytes(32), day)]).encode()[:256],
    }
    for name, head in heads.items():
        found = sniff_key_file(head)
        assert found is not None and found.name == name
    assert sniff_key_file(EXPORT_HEADER + bytes(8)) is scheme_record("gaen")  # a bare export.bin
    assert sniff_key_file(b"\x00garbage") is None
    # Bluezone's sniff takes any JSON (its fallback), so the order is what keeps a DP-3T list DP-3T's
    assert scheme_record("bluezone").key_files.sniffs(heads["dp3t"])
    assert scheme_record("bluezone").key_files.fallback and not scheme_record("dp3t").key_files.fallback
    # and each record's reader reads what its writer wrote
    path = tmp_path / "exposees.json"
    path.write_text(dump_exposees([Dp3tDayKey(bytes(32), day)]))
    assert scheme_record("dp3t").key_files.load_reader()(path) == [Dp3tDayKey(bytes(32), day)]
    assert scheme_record("dp3t").key_files.load_writer() is dump_exposees


def test_match_refuses_an_unknown_key_file_naming_every_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from proximity.cli.main import main

    keys = tmp_path / "keys.bin"
    keys.write_bytes(b"\x00not a key file")
    observed = tmp_path / "observed.csv"
    observed.write_text("id,time\n")
    assert main(["match", "--keys", str(keys), "--observed", str(observed)]) != 0
    err = capsys.readouterr().err
    for record in scheme_records():
        assert record.key_files.description in err


@pytest.mark.parametrize("name", SCHEME_NAMES)
def test_each_matcher_refuses_another_schemes_observations(name: str) -> None:
    from proximity.sightings import InvalidSightingError, Observations

    other = next(r for r in scheme_records() if r.name != name)  # dp3t gets GAEN's 16-byte IDs
    observations = Observations.from_sightings(other.name, [])
    with pytest.raises(InvalidSightingError, match=f"{scheme_record(name).label} matching needs"):
        scheme_record(name).load_matcher()([], observations)
