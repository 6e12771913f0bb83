"""`proximity match`, `keys export` and `keys signing-key`, run in-process as a user would type them."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, load_vectors
from proximity import load_keyring
from proximity.cli.main import main

AT = "2026-11-21T12:00:00Z"
AT_S = 1795262400
SET2 = load_vectors("gaen-test-vectors.json")["sets"][2]


@pytest.fixture
def published(tmp_path: Path, keyring_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A key ring, a signing key, its published GAEN zip and Bluezone JSON, and a CSV of sightings."""
    monkeypatch.setenv("PROXIMITY_KEYRING", str(keyring_path))
    monkeypatch.chdir(tmp_path)
    assert main(["keys", "init", "--at", "2026-11-20T10:00:00Z", "--json"]) == 0
    assert main(["keys", "roll", "--at", AT, "--json"]) == 0
    assert main(["keys", "signing-key", "--out", "signer.pem"]) == 0
    assert oct(os.stat("signer.pem").st_mode & 0o777) == "0o600"
    assert (
        main(
            [
                "keys",
                "export",
                "--scheme",
                "gaen",
                "--out",
                "gaen.zip",
                "--signing-key",
                "signer.pem",
                "--key-id",
                "310",
                "--at",
                AT,
                "--pad-to",
                "20",
            ]
        )
        == 0
    )
    assert (
        main(["keys", "export", "--scheme", "bluezone", "--out", "bz.json", "--at", AT, "--days", "3"]) == 0
    )
    ring = load_keyring(keyring_path)
    rows = ["id,time,rssi,metadata"]
    for b in ring.broadcasts("gaen", at=AT_S, count=3):
        rows.append(f"{b.id.hex},{b.start + 30},-65,{b.payload[16:].hex()}")
    for b in ring.broadcasts("bluezone", at=AT_S - 86400, count=2):
        rows.append(f"{b.id.hex},{b.end},-80,")  # inclusive slot end
    rows.append(f"{'ab' * 16},{AT_S},,")
    (tmp_path / "seen.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_match_both_schemes_as_json(published: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code, out, _ = run(
        capsys,
        "match",
        "--keys",
        "gaen.zip",
        "bz.json",
        "--pubkey",
        "310:v1=signer.pub.pem",
        "--observed",
        "seen.csv",
        "--json",
        "--workers",
        "1",
    )
    assert code == 0
    rows = json.loads(out)
    assert [(r["scheme"], r["sightings"], len(r["ids"])) for r in rows] == [
        ("gaen", 3, 3),
        ("bluezone", 2, 2),
    ]
    gaen = rows[0]
    assert gaen["verified"] is True and gaen["report_type"] == "CONFIRMED_TEST"
    assert gaen["first_seen"] == AT_S + 30 and gaen["last_seen"] > gaen["first_seen"]
    assert rows[1]["verified"] is False and len(rows[1]["key"]) == 64
    assert {"key", "ids", "first_seen", "last_seen", "sightings"} <= set(gaen)


def test_match_table_and_scheme_option(published: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code, out, _ = run(capsys, "match", "--keys", "bz.json", "--scheme", "bluezone", "--observed", "seen.csv")
    assert code == 0
    assert (
        out.splitlines()[0].split()[:3] == ["scheme", "key", "day"]
        and "bluezone" in out
        and "1 matched" in out
    )
    code, _, err = run(
        capsys, "match", "--keys", "bz.json", "--scheme", "gaen", "--observed", "seen.csv", "--no-verify"
    )
    assert code == 1 and "not a gaen key file" in err


def test_refused_files_abort_with_one_line(published: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    for argv, reason in [
        (["--pubkey", "999=signer.pub.pem"], "no trusted key matches"),
        ([], "trusted public key"),
        (["--pubkey", str(FIXTURES / "gaen-server-example-public.pem")], "does not verify"),
    ]:
        code, out, err = run(capsys, "match", "--keys", "gaen.zip", "--observed", "seen.csv", *argv)
        assert code == 1 and reason in err and len(err.strip().splitlines()) == 1, err
        assert err.startswith("proximity: error:") and out == ""


def test_bare_export_bin_only_with_no_verify(published: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(FIXTURES / "gaen-internals-export.bin", "export.bin")
    Path("round.csv").write_text(
        f"id,time\n{SET2['derived_here_not_official']['rpi_at_2646801_hex']},{2646801 * 600 + 5}\n"
    )
    capsys.readouterr()
    code, _, err = run(
        capsys, "match", "--keys", "export.bin", "--pubkey", "signer.pub.pem", "--observed", "round.csv"
    )
    assert code == 1 and "bare export.bin" in err
    code, out, err = run(
        capsys, "match", "--keys", "export.bin", "--no-verify", "--observed", "round.csv", "--json"
    )
    assert code == 0
    [row] = json.loads(out)
    assert row["key"] == SET2["tek_hex"] and row["verified"] is False and "110 keys" in err


def test_no_match_is_not_an_error(published: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("other.csv").write_text("id,time\n" + "cd" * 16 + f",{AT_S}\n")
    capsys.readouterr()
    code, out, _ = run(
        capsys, "match", "--keys", "gaen.zip", "--pubkey", "signer.pub.pem", "--observed", "other.csv"
    )
    assert code == 0 and out.startswith("no matches")
    code, out, _ = run(
        capsys,
        "match",
        "--keys",
        "gaen.zip",
        "--pubkey",
        "signer.pub.pem",
        "--observed",
        "other.csv",
        "--json",
    )
    assert code == 0 and json.loads(out) == []


def test_bad_csv_names_the_row(published: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("bad.csv").write_text("id,time\n" + "ab" * 16 + ",1\nzz,2\n")
    capsys.readouterr()
    code, _, err = run(capsys, "match", "--keys", "bz.json", "--observed", "bad.csv")
    assert code == 1 and "row 2" in err
    Path("nohead.csv").write_text("a,b\n1,2\n")
    code, _, err = run(capsys, "match", "--keys", "bz.json", "--observed", "nohead.csv")
    assert code == 1 and "id and time" in err


def test_export_needs_a_signing_key_and_signing_key_refuses_overwrite(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code, _, err = run(capsys, "keys", "export", "--scheme", "gaen", "--out", "x.zip")
    assert code == 1 and "--signing-key" in err
    code, _, err = run(capsys, "keys", "signing-key", "--out", "signer.pem")
    assert code == 1 and "exists" in err


def test_progress_bar_for_big_inputs(
    published: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import proximity.cli.match as cli_match

    monkeypatch.setattr(cli_match, "PROGRESS_BYTES", 1)
    capsys.readouterr()
    code, _, err = run(
        capsys,
        "match",
        "--keys",
        "gaen.zip",
        "--pubkey",
        "signer.pub.pem",
        "--observed",
        "seen.csv",
        "--json",
    )
    assert code == 0 and "matching [" in err and "1/1 files" in err


def test_match_against_the_encounter_log(published: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from proximity.cli.match import read_observed_csv
    from proximity.log import EncounterLog

    observed = read_observed_csv("seen.csv")
    with EncounterLog(published / "log.db") as log:
        for scheme, obs in observed.items():
            known = ~np.isnan(obs.rssi)
            rssi = np.nan_to_num(obs.rssi)
            if scheme == "gaen":
                log.add_columns(
                    scheme, obs.ids, obs.times, rssi, rssi_known=known, aem=obs.aem, has_aem=obs.has_aem
                )
            else:
                log.add_columns(scheme, obs.ids, obs.times, rssi, rssi_known=known)
    capsys.readouterr()
    code, out, _ = run(
        capsys,
        "match",
        "--keys",
        "gaen.zip",
        "bz.json",
        "--pubkey",
        "signer.pub.pem",
        "--log",
        "log.db",
        "--json",
    )
    assert code == 0
    assert [(r["scheme"], r["sightings"]) for r in json.loads(out)] == [("gaen", 3), ("bluezone", 2)]


def test_several_trusted_keys_one_of_which_signed(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = str(FIXTURES / "gaen-server-example-public.pem")
    capsys.readouterr()
    code, out, _ = run(
        capsys,
        "match",
        "--keys",
        "gaen.zip",
        "--pubkey",
        other,
        "signer.pub.pem",
        "--observed",
        "seen.csv",
        "--json",
    )
    assert code == 0 and [r["verified"] for r in json.loads(out)] == [True]


def test_a_pubkey_that_is_not_p256_is_named(published: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Regression: an EC key on another curve (P-384, secp256k1, ...) ended in a TypeError traceback.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    others: dict[str, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey] = {
        "p384": ec.generate_private_key(ec.SECP384R1()).public_key(),
        "k1": ec.generate_private_key(ec.SECP256K1()).public_key(),
        "ed25519": ed25519.Ed25519PrivateKey.generate().public_key(),
        "rsa": rsa.generate_private_key(65537, 1024).public_key(),
    }
    capsys.readouterr()
    for name, key in others.items():
        pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        Path(f"{name}.pem").write_bytes(pem)
        code, out, err = run(
            capsys, "match", "--keys", "gaen.zip", "--pubkey", f"{name}.pem", "--observed", "seen.csv"
        )
        assert code == 1 and out == "", err
        assert err.startswith("proximity: error:") and len(err.strip().splitlines()) == 1, err
        assert f"{name}.pem" in err and "P-256" in err


@pytest.mark.parametrize(
    ("time", "problem"),
    [("nan", "finite"), ("inf", "finite"), ("-inf", "finite"), ("1e999", "finite")],
)
def test_a_non_finite_time_in_the_csv_names_the_row(
    published: Path, capsys: pytest.CaptureFixture[str], time: str, problem: str
) -> None:
    # Regression: a NaN/inf time was reported as an ID of the wrong length.
    Path("bad.csv").write_text("id,time\n" + "ab" * 16 + ",1\n" + "cd" * 16 + f",{time}\n")
    capsys.readouterr()
    code, _, err = run(capsys, "match", "--keys", "bz.json", "--observed", "bad.csv")
    assert code == 1 and "row 2" in err and "time" in err and problem in err, err
    assert "neither GAEN" not in err and len(err.strip().splitlines()) == 1


def test_the_same_bluezone_key_in_two_files_is_one_match(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Regression: Bluezone files were matched one at a time, so a key in two files matched twice.
    shutil.copy("bz.json", "bz-again.json")
    capsys.readouterr()
    argv = ["match", "--observed", "seen.csv", "--json", "--workers", "1", "--keys"]
    code, out, err = run(capsys, *argv, "bz.json")
    assert code == 0
    once = json.loads(out)
    assert len(once) == 1 and "1 matched" in err
    code, out, err = run(capsys, *argv, "bz.json", "bz-again.json")
    assert code == 0
    assert json.loads(out) == once and "1 matched" in err and "2 key file(s)" in err


def test_match_log_keeps_its_exposures_and_the_verdict_day_is_a_date(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Regressions: the README says the log keeps the exposures found later, but `log stats` showed 0;
    # the verdict's day was unix seconds while the top level's was a date.
    from proximity.cli.match import read_observed_csv
    from proximity.log import EncounterLog

    observed = read_observed_csv("seen.csv")["bluezone"]
    with EncounterLog("log.db") as log:
        log.add_columns("bluezone", observed.ids, observed.times, observed.rssi)
    for _ in range(2):  # matching again replaces, never duplicates
        code, out, _ = run(capsys, "match", "--keys", "bz.json", "--log", "log.db", "--json")
        assert code == 0
        rows = json.loads(out)
        assert rows and all(r["verdict"]["day"] == r["day"] for r in rows)
        code, out, _ = run(capsys, "log", "stats", "--db", "log.db", "--json")
        assert json.loads(out)["exposures"] == len(rows)
