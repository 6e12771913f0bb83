"""The `proximity keys` and `proximity ids` commands, run in-process as a user would type them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import load_vectors
from proximity import decode_ad_bytes, load_keyring
from proximity.cli.main import main

BLUEZONE = load_vectors("bluezone-vectors.json")
GAEN = load_vectors("gaen-test-vectors.json")["sets"][0]


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_ids_from_a_gaen_key_match_the_official_vectors(capsys: pytest.CaptureFixture[str]) -> None:
    start = GAEN["key_generation_unix_seconds"]
    rows = run_json(
        capsys,
        "ids",
        "--scheme",
        "gaen",
        "--key",
        GAEN["tek_hex"],
        "--at",
        str(start + 1200),
        "--count",
        "3",
        "--tx-power",
        "8",
        "--json",
    )
    assert isinstance(rows, list)
    expected = GAEN["advertised_data"][2:5]
    assert [r["id"] for r in rows] == [p["rpi_hex"] for p in expected]
    assert [r["payload"] for r in rows] == [p["rpi_hex"] + p["aem_hex"] for p in expected]
    assert [(r["start"], r["end"]) for r in rows] == [
        (start + 600 * i, start + 600 * (i + 1)) for i in (2, 3, 4)
    ]
    for row in rows:
        advert = decode_ad_bytes(bytes.fromhex(row["advert"]))
        assert advert is not None and advert.payload.hex() == row["payload"]


def test_gaen_ids_stop_at_the_rolling_period(capsys: pytest.CaptureFixture[str]) -> None:
    start = GAEN["key_generation_unix_seconds"]
    rows = run_json(
        capsys,
        "ids",
        "--scheme",
        "gaen",
        "--key",
        GAEN["tek_hex"],
        "--key-start",
        "2020-04-02T00:00:00",
        "--at",
        str(start + 140 * 600),
        "--count",
        "10",
        "--json",
    )
    assert isinstance(rows, list) and len(rows) == 4


def test_ids_from_a_bluezone_base_key_match_real_captures(capsys: pytest.CaptureFixture[str]) -> None:
    captured = BLUEZONE["captured"]
    rows = run_json(
        capsys,
        "ids",
        "--scheme",
        "bluezone",
        "--key",
        BLUEZONE["base_key"],
        "--key-start",
        "2020-08-08",
        "--at",
        "2020-08-08T05:45:10Z",
        "--count",
        str(len(captured)),
        "--json",
    )
    assert isinstance(rows, list)
    assert [r["id"].upper() for r in rows] == [c["id"] for c in captured]
    assert rows[0]["start"] == BLUEZONE["base_day"] + 23 * 900


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ids", "--scheme", "bluezone", "--key", BLUEZONE["base_key"], "--at", "1596865500"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["slot", "start", "(UTC)", "end", "(UTC)", "id", "advert"]
    assert "2020-08-08T05:45:00Z" in out[2] and "b9a665d754fe65e665d76a45" in out[2]


def test_keys_init_show_ids_roll_wipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ring.json"
    init = run_json(capsys, "keys", "init", "--keyring", str(path), "--at", "2026-11-28T10:00:00Z", "--json")
    assert isinstance(init, dict) and init["broadcasting"]["gaen"]["start"] == 1_795_824_000 + 36_000
    assert main(["keys", "init", "--keyring", str(path)]) == 1
    assert "already exists" in capsys.readouterr().err

    argv = [
        "ids",
        "--scheme",
        "gaen",
        "--keyring",
        str(path),
        "--at",
        "2026-11-28T23:00:00Z",
        "--count",
        "10",
    ]
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 6  # the key ends at midnight
    assert "6 of 10 IDs printed" in captured.err

    assert main(["ids", "--scheme", "gaen", "--keyring", str(path), "--at", "2026-11-29T01:00:00Z"]) == 1
    assert "keys roll" in capsys.readouterr().err
    run_json(capsys, "keys", "roll", "--keyring", str(path), "--at", "2026-11-29T01:00:00Z", "--json")
    assert len(load_keyring(path).gaen_keys) == 2
    run_json(
        capsys, "ids", "--scheme", "gaen", "--keyring", str(path), "--at", "2026-11-29T01:00:00Z", "--json"
    )

    shown = run_json(capsys, "keys", "show", "--keyring", str(path), "--at", "2026-11-29T01:00:00Z", "--json")
    assert isinstance(shown, dict) and len(shown["gaen_keys"]) == 2

    assert main(["keys", "wipe", "--keyring", str(path)]) == 1  # no terminal, no --yes: refuses
    assert path.exists()
    assert main(["keys", "wipe", "--keyring", str(path), "--yes"]) == 0
    assert not path.exists()


def test_keyring_from_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROXIMITY_KEYRING", str(tmp_path / "env-ring.json"))
    assert main(["keys", "init", "--at", "2026-11-28"]) == 0
    assert (tmp_path / "env-ring.json").exists()


def test_ids_never_writes_and_says_how_to_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "none.json"
    assert main(["ids", "--scheme", "gaen", "--keyring", str(path)]) == 1
    assert "proximity keys init" in capsys.readouterr().err
    assert not path.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ids", "--scheme", "gaen", "--key", "abcd"], "must be 16 bytes"),
        (["ids", "--scheme", "bluezone", "--key", "xyz"], "must be hex"),
        (["ids", "--scheme", "gaen", "--key", "00" * 16, "--count", "0"], "--count"),
    ],
)
def test_bad_input_is_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bad_time_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["ids", "--scheme", "gaen", "--at", "yesterday"])
    assert exited.value.code == 2
    assert "cannot read time 'yesterday'" in capsys.readouterr().err


def test_corrupt_keyring_is_reported_not_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ring.json"
    path.write_text("{")
    assert main(["keys", "show", "--keyring", str(path)]) == 1
    assert "left untouched" in capsys.readouterr().err
    assert path.read_text() == "{"


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must fail with exit 1 and exactly one line on stderr (no traceback)."""
    assert main(list(argv)) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("proximity: error: "), captured.err
    return lines[0]


@pytest.mark.parametrize("tx_power", ["500", "21", "-51"])
def test_keys_init_with_a_bad_tx_power_is_one_line(
    tx_power: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = tmp_path / "ring.json"
    line = one_line_error(capsys, "keys", "init", "--keyring", str(ring), "--tx-power", tx_power)
    assert f"tx_power must be in [-50, 20] dBm (GAEN's range), got {tx_power}" in line
    assert not ring.exists()


def test_ids_with_a_bad_metadata_field_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, "ids", "--scheme", "gaen", "--key", GAEN["tek_hex"], "--tx-power", "300")
    assert "tx_power must be a signed byte" in line


@pytest.mark.parametrize("at", ["1e12", "-1", "253370764800"])
@pytest.mark.parametrize("scheme", ["gaen", "bluezone"])
def test_ids_at_out_of_range_is_a_usage_error(
    at: str, scheme: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = GAEN["tek_hex"] if scheme == "gaen" else "00" * 32
    with pytest.raises(SystemExit) as caught:
        main(["ids", "--scheme", scheme, "--key", key, "--at", at])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "out of range" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["keys", "init", "--keyring", str(tmp_path / "r.json"), "--at", at])
    assert "out of range" in capsys.readouterr().err and not (tmp_path / "r.json").exists()


def test_ids_at_the_last_accepted_time(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(
        capsys, "ids", "--scheme", "gaen", "--key", GAEN["tek_hex"], "--at", "253370764799", "--json"
    )
    assert isinstance(rows, list) and len(rows) == 1


def test_unwritable_outputs_are_one_line_errors_without_temporary_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    line = one_line_error(capsys, "keys", "init", "--keyring", str(blocker / "ring.json"))
    assert line.endswith(f"cannot write key ring {blocker / 'ring.json'}: {blocker} is not a directory")
    ring = str(tmp_path / "ring.json")
    assert main(["keys", "init", "--keyring", ring, "--at", "1796428800"]) == 0
    capsys.readouterr()
    out_dir = tmp_path / "out"
    out_dir.mkdir()  # a directory where the export should go: the final rename fails
    line = one_line_error(
        capsys,
        "keys",
        "export",
        "--keyring",
        ring,
        "--scheme",
        "bluezone",
        "--out",
        str(out_dir),
        "--at",
        "1796500000",
    )
    assert f"cannot write file {out_dir}: " in line
    line = one_line_error(
        capsys,
        "keys",
        "export",
        "--keyring",
        ring,
        "--scheme",
        "bluezone",
        "--out",
        str(blocker / "bz.json"),
        "--at",
        "1796500000",
    )
    assert "blocker/bz.json" in line
    line = one_line_error(capsys, "keys", "signing-key", "--out", str(blocker / "k.pem"))
    assert "blocker/k.pem" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "out", "ring.json"]
    assert list(out_dir.iterdir()) == []


def test_scan_record_to_an_unwritable_path_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    line = one_line_error(capsys, "scan", "--seconds", "0.1", "--record", str(blocker / "scan.jsonl"))
    assert f"cannot write recording {blocker / 'scan.jsonl'}: " in line


@pytest.mark.parametrize("value", ["0", "-96"])
def test_ids_per_day_zero_or_negative_is_refused_not_defaulted(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = one_line_error(
        capsys, "ids", "--scheme", "bluezone", "--key", "00" * 32, "--at", "0", "--ids-per-day", value
    )
    assert f"--ids-per-day must be a positive divisor of 86400 (e.g. 96 or 144), got {value}" in line


def test_ids_per_day_is_used_as_given(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(
        capsys,
        "ids",
        "--scheme",
        "bluezone",
        "--key",
        "00" * 32,
        "--at",
        "0",
        "--ids-per-day",
        "144",
        "--json",
    )
    assert isinstance(rows, list) and rows[0]["end"] - rows[0]["start"] == 600


@pytest.mark.parametrize("scheme", ["gaen", "bluezone"])
def test_ids_at_before_the_first_key_says_so(
    keyring_path: Path, capsys: pytest.CaptureFixture[str], scheme: str
) -> None:
    # Regression: GAEN silently started at the first key's slot; Bluezone said no key existed.
    assert main(["keys", "init", "--keyring", str(keyring_path), "--at", "2026-11-20T10:00:00Z"]) == 0
    capsys.readouterr()
    line = one_line_error(
        capsys, "ids", "--scheme", scheme, "--keyring", str(keyring_path), "--at", "2026-11-19T10:00:00Z"
    )
    assert "before the key ring's first" in line and "2026-11-20" in line
