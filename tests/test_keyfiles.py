"""GAEN export files (the real fixtures, tampering, writing) and Bluezone JSON records."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import FIXTURES, load_vectors
from proximity.errors import KeyFileSignatureError, MalformedKeyFileError
from proximity.keyfiles import (
    TrustedKey,
    dump_records,
    generate_signing_key,
    load_export,
    parse_export,
    parse_export_bytes,
    parse_export_zip,
    parse_records,
    stream_exports,
    write_export,
)
from proximity.keyfiles import export_pb2 as pb
from proximity.keyfiles.gaen_export import EXPORT_HEADER
from proximity.matching import DiagnosisKey, ReportType, match_gaen
from proximity.schemes.bluezone import BluezoneBaseKey
from proximity.schemes.gaen import TemporaryExposureKey
from proximity.sightings import Observations, Sighting

SERVER_ZIP = (FIXTURES / "gaen-server-example-export.zip").read_bytes()
SERVER_PEM = (FIXTURES / "gaen-server-example-public.pem").read_bytes()
INTERNALS_BIN = (FIXTURES / "gaen-internals-export.bin").read_bytes()
SETS: list[dict[str, Any]] = load_vectors("gaen-test-vectors.json")["sets"]
SERVER_KEY = TrustedKey.from_pem(SERVER_PEM)


def _entries(data: bytes) -> tuple[bytes, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("export.bin"), archive.read("export.sig")


def test_the_signed_server_example_verifies() -> None:
    export = parse_export_zip(SERVER_ZIP, [SERVER_KEY])
    assert export.verified and export.region == "US" and export.skipped_keys == 0
    assert (export.signature_key_id, export.signature_key_version) == ("some_id", "1")
    assert export.start_timestamp == 1590159600 and export.end_timestamp == 1590246000
    assert len(export.keys) == 2 and export.keys.verified
    bin_bytes, sig_bytes = _entries(SERVER_ZIP)
    assert bin_bytes.hex() == SETS[1]["export_bin_hex"] and sig_bytes.hex() == SETS[1]["export_sig_hex"]


@pytest.mark.parametrize(
    "trusted",
    [TrustedKey.from_pem(SERVER_PEM, "some_id"), TrustedKey.from_pem(SERVER_PEM, "some_id", "1")],
    ids=["id", "id+version"],
)
def test_a_key_with_its_id_verifies(trusted: TrustedKey) -> None:
    assert parse_export_zip(SERVER_ZIP, [trusted]).verified


def test_a_key_under_another_id_or_version_is_not_tried() -> None:
    for trusted in (
        TrustedKey.from_pem(SERVER_PEM, "other"),
        TrustedKey.from_pem(SERVER_PEM, "some_id", "2"),
    ):
        with pytest.raises(KeyFileSignatureError) as caught:
            parse_export_zip(SERVER_ZIP, [trusted])
        assert caught.value.kind == "untrusted"


def test_flipping_any_byte_of_export_bin_fails() -> None:
    bin_bytes, sig_bytes = _entries(SERVER_ZIP)
    for i in range(len(bin_bytes)):
        tampered = bytearray(bin_bytes)
        tampered[i] ^= 0x01
        with pytest.raises((KeyFileSignatureError, MalformedKeyFileError)):
            parse_export(bytes(tampered), sig_bytes, [SERVER_KEY])


def test_flipping_any_byte_of_the_signature_fails() -> None:
    bin_bytes, sig_bytes = _entries(SERVER_ZIP)
    signatures = pb.TEKSignatureList.FromString(sig_bytes)
    der = signatures.signatures[0].signature
    for i in range(len(der)):
        tampered = bytearray(der)
        tampered[i] ^= 0x01
        signatures.signatures[0].signature = bytes(tampered)
        with pytest.raises(KeyFileSignatureError) as caught:
            parse_export(bin_bytes, signatures.SerializeToString(), [SERVER_KEY])
        assert caught.value.kind == "invalid"


def test_another_public_key_does_not_verify() -> None:
    other = TrustedKey(generate_signing_key().public_key())
    with pytest.raises(KeyFileSignatureError, match="does not verify"):
        parse_export_zip(SERVER_ZIP, [other])


def test_unsigned_and_bare_files_are_refused_unless_verification_is_skipped() -> None:
    with pytest.raises(KeyFileSignatureError, match=r"bare export\.bin") as caught:
        parse_export_bytes(INTERNALS_BIN, [SERVER_KEY])
    assert caught.value.kind == "unsigned"
    bin_bytes, _ = _entries(SERVER_ZIP)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("export.bin", bin_bytes)
    with pytest.raises(KeyFileSignatureError, match="unsigned"):
        parse_export_zip(buffer.getvalue(), [SERVER_KEY])
    with pytest.raises(KeyFileSignatureError, match="no trusted public key"):
        parse_export_zip(SERVER_ZIP, [])
    assert not parse_export_zip(buffer.getvalue(), verify=False).verified


def test_the_internals_export_matches_exactly_its_one_key() -> None:
    export = parse_export_bytes(INTERNALS_BIN, verify=False)
    assert len(export.keys) == SETS[2]["export_bin_key_count"] == 110 and not export.verified
    rpi = bytes.fromhex(SETS[2]["derived_here_not_official"]["rpi_at_2646801_hex"])
    observed = Observations.from_sightings("gaen", [Sighting("gaen", rpi, 2646801 * 600 + 60, -70)])
    [found] = match_gaen(export.keys, observed, workers=1)
    assert found.key_data.hex() == SETS[2]["tek_hex"]
    assert isinstance(found.key, DiagnosisKey)
    assert found.key.tek.rolling_start_interval_number == 2646801 and found.key.tek.rolling_period == 89
    assert found.transmission_risk_level == 2 and not found.verified


def test_malformed_files() -> None:
    with pytest.raises(MalformedKeyFileError, match="header"):
        parse_export(b"EK Export v2    ", None, verify=False)
    with pytest.raises(MalformedKeyFileError, match="TemporaryExposureKeyExport"):
        parse_export(EXPORT_HEADER + b"\xff\xff\xff", None, verify=False)
    with pytest.raises(MalformedKeyFileError, match="zip"):
        parse_export_zip(b"PK\x03\x04 broken", verify=False)
    with pytest.raises(MalformedKeyFileError, match="neither"):
        parse_export_bytes(b"hello", verify=False)
    with pytest.raises(MalformedKeyFileError):
        TrustedKey.from_pem(b"not a pem")


def _sample_keys() -> list[DiagnosisKey]:
    return [
        DiagnosisKey(
            TemporaryExposureKey(bytes([9 - i]) * 16, 2650032 + 144 * i, 144 if i else 77),
            i,
            ReportType(1 + i % 3),
            i - 2,
        )
        for i in range(5)
    ]


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    signer = generate_signing_key()
    keys = _sample_keys()
    revoked = [DiagnosisKey(keys[0].tek, report_type=ReportType.REVOKED)]
    data = write_export(
        keys, signer, key_id="310", start_timestamp=1, end_timestamp=2, region="VN", revised_keys=revoked
    )
    export = parse_export_zip(data, [TrustedKey(signer.public_key(), "310", "v1")])
    assert sorted(export.keys, key=lambda k: k.key_data) == sorted(keys, key=lambda k: k.key_data)
    assert [k.key_data for k in export.keys] == sorted(k.key_data for k in keys)  # sorted by key bytes
    assert list(export.revised_keys) == revoked and export.region == "VN"
    message = pb.TemporaryExposureKeyExport.FromString(_entries(data)[0][16:])
    assert [k.HasField("rolling_period") for k in message.keys] == [
        k.tek.rolling_period != 144 for k in sorted(keys, key=lambda k: k.key_data)
    ]


def test_padding_adds_fake_keys_shaped_like_real_ones() -> None:
    signer = generate_signing_key()
    keys = _sample_keys()[:2]
    export = parse_export_zip(
        write_export(keys, signer, key_id="a", start_timestamp=0, end_timestamp=1, pad_to=50),
        [TrustedKey(signer.public_key())],
    )
    assert len(export.keys) == 50
    assert set(export.keys.rolling_start.tolist()) <= {k.tek.rolling_start_interval_number for k in keys}
    assert len({k.key_data for k in export.keys}) == 50


def test_malformed_keys_in_a_verified_file_are_skipped_and_counted() -> None:
    signer = generate_signing_key()
    info = pb.SignatureInfo(
        verification_key_id="x", verification_key_version="v1", signature_algorithm="1.2.840.10045.4.3.2"
    )
    message = pb.TemporaryExposureKeyExport(
        signature_infos=[info],
        keys=[
            pb.TemporaryExposureKey(key_data=bytes(16), rolling_start_interval_number=2650032),
            pb.TemporaryExposureKey(key_data=bytes(15), rolling_start_interval_number=2650032),
            pb.TemporaryExposureKey(
                key_data=bytes(16), rolling_start_interval_number=2650032, rolling_period=0
            ),
            pb.TemporaryExposureKey(key_data=bytes(16), rolling_start_interval_number=-5),
            pb.TemporaryExposureKey(key_data=bytes(16)),
        ],
    )
    export_bin = EXPORT_HEADER + message.SerializeToString()
    sig = pb.TEKSignatureList(
        signatures=[
            pb.TEKSignature(signature_info=info, signature=signer.sign(export_bin, ec.ECDSA(hashes.SHA256())))
        ]
    )
    export = parse_export(export_bin, sig.SerializeToString(), [TrustedKey(signer.public_key(), "x")])
    assert len(export.keys) == 1 and export.skipped_keys == 4


def test_streaming_many_files_collects_revisions(tmp_path: Path) -> None:
    signer = generate_signing_key()
    keys = _sample_keys()
    paths = []
    for i, key in enumerate(keys):
        revised = [DiagnosisKey(keys[0].tek, report_type=ReportType.REVOKED)] if i == 4 else []
        path = tmp_path / f"{i}.zip"
        path.write_bytes(
            write_export([key], signer, key_id="k", start_timestamp=0, end_timestamp=1, revised_keys=revised)
        )
        paths.append(path)
    stream = stream_exports(paths, [TrustedKey(signer.public_key())])
    sightings = [Sighting("gaen", _first_rpi(k), k.tek.start + 1) for k in keys]
    found = match_gaen(
        stream.keys(),
        Observations.from_sightings("gaen", sightings),
        revised_keys=stream.revisions(),
        workers=1,
    )
    assert stream.files == 5 and stream.total_keys == 5
    assert {m.key_data for m in found} == {k.key_data for k in keys[1:]}
    assert all(m.verified for m in found)
    assert load_export(paths[0], [TrustedKey(signer.public_key())]).verified


def _first_rpi(key: DiagnosisKey) -> bytes:
    from proximity.schemes.gaen import derive_rpik, rpis

    return bytes(rpis(derive_rpik(key.key_data), key.tek.rolling_start_interval_number, 1)[0])


def test_bluezone_records_round_trip_and_errors() -> None:
    records = [
        BluezoneBaseKey(bytes([i]) * 32, 1596844800).record(1596844800 + i * 86400, 14) for i in range(3)
    ]
    text = dump_records(records)
    assert json.loads(text)["data"][0] == records[0].to_record()
    assert parse_records(text) == records
    assert parse_records(json.dumps([r.to_record() for r in records])) == records
    with pytest.raises(MalformedKeyFileError, match="record 1"):
        parse_records(json.dumps({"data": [records[0].to_record(), {"daily_key": "zz"}]}))
    with pytest.raises(MalformedKeyFileError, match="not JSON"):
        parse_records("{")
    assert parse_records(dump_records([])) == []


def test_observed_batch_keys_are_numpy() -> None:
    export = parse_export_zip(SERVER_ZIP, [SERVER_KEY])
    assert export.keys.key_data.dtype == np.uint8 and export.keys.key_data.shape == (2, 16)


def test_trusted_key_from_pem_refuses_other_curves_with_a_typed_error() -> None:
    from cryptography.hazmat.primitives import serialization

    from proximity.errors import MalformedKeyFileError
    from proximity.keyfiles.gaen_export import TrustedKey

    for curve in (ec.SECP384R1(), ec.SECP256K1()):
        pem = (
            ec.generate_private_key(curve)
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        with pytest.raises(MalformedKeyFileError, match=rf"my\.pem.*P-256.*{curve.name}"):
            TrustedKey.from_pem(pem, source="my.pem")
    good = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = good.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert TrustedKey.from_pem(pem).public_key.public_numbers() == good.public_numbers()
