"""The key server over real HTTP (a `proximity serve` process on 127.0.0.1): publish, export, match.

Every refusal is checked for its status, its error code and that nothing was stored.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from keyserver_harness import (
    AUDIENCE,
    ISSUER,
    Keys,
    Server,
    backends,
    cli,
    count_rows,
    get,
    make_keys,
    new_database,
    post_raw,
    running_server,
    storage_args,
)
from proximity.cli.main import main
from proximity.keyfiles.bluezone_json import parse_records
from proximity.keyfiles.dp3t_json import parse_exposees
from proximity.keyfiles.gaen_export import TrustedKey, parse_export_zip
from proximity.keyring import KeyRing, save_keyring
from proximity.schemes.gaen import TemporaryExposureKey
from proximity.schemes.published import ReportType
from proximity.server.client import (
    daily_publish_items,
    daily_segments,
    gaen_publish_request,
    gaen_segments,
    post_json,
    upload_keys,
)
from proximity.times import SECONDS_PER_DAY, now, utc_midnight


@pytest.fixture(scope="module", params=backends())
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str, Keys]]:
    directory = tmp_path_factory.mktemp(f"server-{request.param}")
    keys = make_keys(directory / "keys")
    db = new_database(request.param, directory)
    with running_server(db, keys, log=directory / "server.log") as server:
        yield server, db, keys


def _ring(days: int = 3) -> KeyRing:
    """A phone installed ``days`` days ago at midnight: full-day keys, and today's key (still valid)."""
    first = utc_midnight(now()) - days * SECONDS_PER_DAY
    ring = KeyRing.create(first)
    for day in range(1, days + 1):
        ring = ring.rolled(first + day * SECONDS_PER_DAY)
    return ring


def _publish(
    server: Server, keys: Keys, teks: list[TemporaryExposureKey], **cert: Any
) -> tuple[int, dict[str, Any]]:
    certificate, hmac_key = keys.certificate(gaen_segments(teks), **cert)
    document = gaen_publish_request(teks, certificate=certificate, hmac_key=hmac_key, authority=ISSUER)
    return post_json(server.url + "/v1/publish", document)


def test_publish_export_download_and_match(
    setup: tuple[Server, str, Keys], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, db, keys = setup
    ring = _ring()
    teks = upload_keys(ring, now())
    status, body = _publish(server, keys, teks)
    assert status == 200 and body["insertedExposures"] == len(teks) == 4, body
    assert body["revisionToken"] and "code" not in body

    done = subprocess.run(
        cli("serve-export", *storage_args(db, keys), "--json"), capture_output=True, check=True
    )
    report = json.loads(done.stdout)
    assert report["keys"] >= 3 and len(report["files"]) == 1  # today's key is embargoed

    names = get(server.url + "/v1/index.txt").decode().splitlines()
    assert report["files"][0] in names
    name = report["files"][0]
    start, end, number = name.removesuffix(".zip").split("-")
    assert int(start) < int(end) and number == "00001"
    trusted = [TrustedKey.from_pem(keys.signing_public.read_bytes(), "proximity", "v1")]
    export = parse_export_zip(get(f"{server.url}/v1/exports/{name}"), trusted)
    published = {bytes(k) for k in export.keys.key_data}
    assert export.verified and export.region == "TE" and (export.batch_num, export.batch_size) == (1, 1)
    assert len(export.keys) >= 20  # padded
    assert {t.key_data for t in teks[:-1]} <= published and teks[-1].key_data not in published
    assert set(export.keys.report_type.tolist()) == {int(ReportType.CONFIRMED_TEST)}
    assert set(export.keys.transmission_risk_level.tolist()) == {2}  # omitted risk: confirmed -> 2

    # A second phone heard yesterday's key: it downloads index.txt and matches.
    yesterday = teks[-2]
    broadcasts = ring.broadcasts("gaen", at=yesterday.start + 3600, count=2)
    rows = ["id,time,rssi,metadata"] + [
        f"{b.id.hex},{b.start + 10},-60,{b.payload[16:].hex()}" for b in broadcasts
    ]
    (tmp_path / "seen.csv").write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    pubkey = f"proximity:v1={keys.signing_public}"
    code = main(
        [
            "match",
            "--keys",
            server.url + "/v1/index.txt",
            "--pubkey",
            pubkey,
            "--observed",
            str(tmp_path / "seen.csv"),
            "--json",
            "--workers",
            "1",
        ]
    )
    assert code == 0
    matched = json.loads(capsys.readouterr().out)
    assert [(m["key"], m["sightings"], m["verified"]) for m in matched] == [
        (yesterday.key_data.hex(), 2, True)
    ]


def _key_item(tek: TemporaryExposureKey, **change: Any) -> dict[str, Any]:
    item = {
        "key": base64.b64encode(tek.key_data).decode(),
        "rollingStartNumber": tek.rolling_start_interval_number,
        "rollingPeriod": tek.rolling_period,
    }
    item.update(change)
    return item


def _document(
    keys: Keys, items: list[dict[str, Any]], segments: list[str] | None = None, **cert: Any
) -> dict[str, Any]:
    segs = (
        segments
        if segments is not None
        else [f"{i['key']}.{i['rollingStartNumber']}.{i['rollingPeriod']}" for i in items]
    )
    certificate, hmac_key = keys.certificate(segs, **cert)
    return {
        "temporaryExposureKeys": items,
        "healthAuthorityID": ISSUER,
        "verificationPayload": certificate,
        "hmacKey": hmac_key,
    }


def _fresh(days_ago: int = 1) -> TemporaryExposureKey:
    return TemporaryExposureKey.generate(now() - days_ago * SECONDS_PER_DAY)


def _forged(keys: Keys, document: dict[str, Any]) -> dict[str, Any]:
    header, payload, signature = document["verificationPayload"].split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[5] ^= 1
    document["verificationPayload"] = (
        f"{header}.{payload}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"
    )
    return document


def _alg_none(keys: Keys, document: dict[str, Any]) -> dict[str, Any]:
    claims = jwt.decode(document["verificationPayload"], options={"verify_signature": False})
    document["verificationPayload"] = jwt.encode(claims, "", algorithm="none")
    return document


def _hs256(keys: Keys, document: dict[str, Any]) -> dict[str, Any]:
    claims = jwt.decode(document["verificationPayload"], options={"verify_signature": False})
    secret = keys.authority_public.read_bytes()  # the classic key-confusion attack
    document["verificationPayload"] = jwt.encode(claims, secret.decode()[:32], algorithm="HS256")
    return document


def _other_keys_mac(keys: Keys, document: dict[str, Any]) -> dict[str, Any]:
    other = [_key_item(_fresh(2))]
    certificate, hmac_key = keys.certificate(
        [f"{i['key']}.{i['rollingStartNumber']}.{i['rollingPeriod']}" for i in other]
    )
    document.update(verificationPayload=certificate, hmacKey=hmac_key)
    return document


def _stranger(keys: Keys, document: dict[str, Any]) -> dict[str, Any]:
    document["healthAuthorityID"] = "nobody.example"
    return document


def _many(n: int) -> list[dict[str, Any]]:
    base = int(now()) // 600 // 144 * 144
    return [_key_item(TemporaryExposureKey(os.urandom(16), base - (1 + i // 3) * 144)) for i in range(n)]


REFUSALS: dict[str, tuple[Any, int, str]] = {
    "forged signature": (
        lambda k: _forged(k, _document(k, [_key_item(_fresh())])),
        401,
        "health_authority_verification_certificate_invalid",
    ),
    "wrong issuer": (
        lambda k: _document(k, [_key_item(_fresh())], issuer="other.example"),
        401,
        "health_authority_verification_certificate_invalid",
    ),
    "unknown healthAuthorityID": (
        lambda k: _stranger(k, _document(k, [_key_item(_fresh())])),
        401,
        "unknown_health_authority_id",
    ),
    "wrong audience": (
        lambda k: _document(k, [_key_item(_fresh())], audience="someone-else"),
        401,
        "health_authority_verification_certificate_invalid",
    ),
    "expired token": (
        lambda k: _document(k, [_key_item(_fresh())], issued_at=now() - 3600, lifetime_seconds=600),
        401,
        "health_authority_verification_certificate_invalid",
    ),
    "alg none": (
        lambda k: _alg_none(k, _document(k, [_key_item(_fresh())])),
        401,
        "health_authority_verification_certificate_invalid",
    ),
    "alg HS256": (
        lambda k: _hs256(k, _document(k, [_key_item(_fresh())])),
        401,
        "health_authority_verification_certificate_invalid",
    ),
    "MAC over other keys": (
        lambda k: _other_keys_mac(k, _document(k, [_key_item(_fresh())])),
        401,
        "health_authority_verification_certificate_invalid",
    ),
    "3-segment MAC with a risk": (
        lambda k: _document(k, [_key_item(_fresh(), transmissionRisk=5)]),
        401,
        "health_authority_verification_certificate_invalid",
    ),
    "31 keys": (lambda k: _document(k, _many(31)), 400, "bad_request"),
    "4 keys with one start": (
        lambda k: _document(
            k,
            [
                _key_item(TemporaryExposureKey(os.urandom(16), _fresh().rolling_start_interval_number))
                for _ in range(4)
            ],
        ),
        400,
        "bad_request",
    ),
    "15-byte key": (
        lambda k: _document(k, [_key_item(_fresh(), key=base64.b64encode(os.urandom(15)).decode())]),
        400,
        "bad_request",
    ),
    "only key in the future": (lambda k: _document(k, [_key_item(_fresh(-2))]), 400, "bad_request"),
    "only key 16 days old": (lambda k: _document(k, [_key_item(_fresh(17))]), 400, "bad_request"),
    "negative report type": (lambda k: _document(k, [_key_item(_fresh())], report_type="negative"), 200, ""),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_store_nothing(setup: tuple[Server, str, Keys], case: str) -> None:
    server, db, keys = setup
    build, status, code = REFUSALS[case]
    before = count_rows(db)
    got, body = post_json(server.url + "/v1/publish", build(keys))
    assert (got, body.get("code", "")) == (status, code), body
    assert count_rows(db) == before
    if status == 200:
        assert body["insertedExposures"] == 0


def test_transport_refusals(setup: tuple[Server, str, Keys]) -> None:
    server, db, keys = setup
    before = count_rows(db)
    good = json.dumps(_document(keys, [_key_item(_fresh())])).encode()
    url = server.url + "/v1/publish"
    assert post_raw(url, b"{" + b" " * 64_000 + b"}", {"Content-Type": "application/json"})[0] == 413
    assert post_raw(url, good, {"Content-Type": "text/plain"})[0] == 415
    status, body = post_raw(url, b"{not json", {"Content-Type": "application/json"})
    assert (status, body["code"]) == (400, "bad_request")
    status, body = post_raw(url, good, {"Content-Type": "application/json", "X-Chaff": "1"})
    assert status == 200 and body["insertedExposures"] == 0 and body["revisionToken"]
    assert count_rows(db) == before
    status, body = post_raw(url, good, {"Content-Type": "application/json; charset=utf-8"})
    assert status == 200 and body["insertedExposures"] == 1
    assert count_rows(db) == before + 1


def test_partial_failure_keeps_the_good_keys(setup: tuple[Server, str, Keys]) -> None:
    server, db, keys = setup
    before = count_rows(db)
    status, body = post_json(
        server.url + "/v1/publish", _document(keys, [_key_item(_fresh()), _key_item(_fresh(-2))])
    )
    assert status == 200 and body["code"] == "partial_failure" and body["insertedExposures"] == 1
    assert count_rows(db) == before + 1


def test_four_segment_mac_with_risk(setup: tuple[Server, str, Keys]) -> None:
    server, _, keys = setup
    items = [_key_item(_fresh(), transmissionRisk=5)]
    segments = [f"{i['key']}.{i['rollingStartNumber']}.{i['rollingPeriod']}.5" for i in items]
    status, body = post_json(server.url + "/v1/publish", _document(keys, items, segments))
    assert status == 200 and body["insertedExposures"] == 1, body


def test_revisions(setup: tuple[Server, str, Keys]) -> None:
    server, _, keys = setup
    url = server.url + "/v1/publish"
    items = [_key_item(_fresh(3)), _key_item(_fresh(2))]
    status, first = post_json(url, _document(keys, items, report_type="likely"))
    assert status == 200 and first["insertedExposures"] == 2
    status, body = post_json(url, _document(keys, items, report_type="likely"))
    assert status == 200 and body["insertedExposures"] == 0 and body["revisionToken"]  # a retry: no change
    status, body = post_json(url, _document(keys, items, report_type="confirmed"))
    assert (status, body["code"]) == (400, "missing_revision_token")
    tampered = bytearray(base64.b64decode(first["revisionToken"]))
    tampered[-1] ^= 1
    status, body = post_json(
        url, {**_document(keys, items), "revisionToken": base64.b64encode(bytes(tampered)).decode()}
    )
    assert (status, body["code"]) == (400, "invalid_revision_token")
    status, body = post_json(url, {**_document(keys, items), "revisionToken": first["revisionToken"]})
    assert status == 200 and body["insertedExposures"] == 2, body
    status, body = post_json(
        url, {**_document(keys, items, report_type="negative"), "revisionToken": body["revisionToken"]}
    )
    assert (status, body["code"]) == (400, "key_already_revised")


def test_bluezone_publish_and_records(setup: tuple[Server, str, Keys]) -> None:
    server, _, keys = setup
    ring = _ring()
    items = daily_publish_items(ring, "bluezone", now(), days=3)
    certificate, hmac_key = keys.certificate(daily_segments("bluezone", items))
    document = {
        "dailyKeys": items,
        "healthAuthorityID": ISSUER,
        "verificationPayload": certificate,
        "hmacKey": hmac_key,
    }
    status, body = post_json(server.url + "/bluezone/v1/publish", document)
    assert status == 200 and body["insertedExposures"] == 3, body
    records = {r.daily_key: r for r in parse_records(get(server.url + "/bluezone/v1/records.json"))}
    for item in items:
        record = records[bytes.fromhex(item["daily_key"])]
        assert record.time_start == item["time_start"] and record.time_end <= now()
    forged = {**document, "dailyKeys": items[:2]}
    status, body = post_json(server.url + "/bluezone/v1/publish", forged)
    assert (status, body["code"]) == (401, "health_authority_verification_certificate_invalid")


def test_dp3t_publish_and_exposee_list(setup: tuple[Server, str, Keys]) -> None:
    """The daily-key hook with DP-3T registered: one (SK_t, day) item in, the exposee list out."""
    server, _, keys = setup
    ring = _ring()
    items = daily_publish_items(ring, "dp3t", now(), days=2)
    assert len(items) == 1
    certificate, hmac_key = keys.certificate(daily_segments("dp3t", items))
    document = {
        "exposed": items,
        "healthAuthorityID": ISSUER,
        "verificationPayload": certificate,
        "hmacKey": hmac_key,
    }
    status, body = post_json(server.url + "/dp3t/v1/publish", document)
    assert status == 200 and body["insertedExposures"] == 1, body
    published = parse_exposees(get(server.url + "/dp3t/v1/records.json"))
    own = ring.key_state("dp3t")
    assert own is not None
    assert own.on_day(utc_midnight(now()) - SECONDS_PER_DAY) in published
    bad = {**document, "exposed": [{"key": "AAAA", "keyDate": items[0]["keyDate"]}]}
    status, body = post_json(server.url + "/dp3t/v1/publish", bad)
    assert status == 400, body
    two = {**document, "exposed": items * 2}
    status, body = post_json(server.url + "/dp3t/v1/publish", two)
    assert status == 400, body


def test_cli_certificate_and_publish(
    setup: tuple[Server, str, Keys],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, db, keys = setup
    ring_path = tmp_path / "ring.json"
    save_keyring(ring_path, _ring(), create=True)
    monkeypatch.setenv("PROXIMITY_KEYRING", str(ring_path))
    certify = [
        "keys",
        "certificate",
        "--authority-key",
        str(keys.authority_pem),
        "--iss",
        ISSUER,
        "--aud",
        AUDIENCE,
    ]
    for scheme, table, count in (
        (["--scheme", "gaen"], "exposures", 4),
        (["--scheme", "bluezone", "--days", "3"], "daily_keys", 3),
    ):
        capsys.readouterr()
        assert main([*certify, *scheme]) == 0
        minted = json.loads(capsys.readouterr().out)
        before = count_rows(db, table)
        upload = [
            "publish",
            "--server",
            server.url,
            "--certificate",
            minted["certificate"],
            "--hmac-key",
            minted["hmacKey"],
        ]
        assert main([*upload, "--json", *scheme]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["status"] == 200 and result["insertedExposures"] == count
        assert count_rows(db, table) == before + count


def test_serve_exports_on_its_own_timer(tmp_path: Path) -> None:
    """`serve` runs an export pass at start and every --batch-minutes, without a separate worker."""
    keys = make_keys(tmp_path / "keys")
    db = new_database("sqlite", tmp_path)
    tek = _fresh(2)
    with running_server(db, keys) as first:
        status, _ = _publish(first, keys, [tek])
        assert status == 200
    with running_server(db, keys) as second:  # its start-up pass exports the pending key
        deadline = time.monotonic() + 120  # a safety net only
        while not (names := get(second.url + "/v1/index.txt").decode().split()):
            assert time.monotonic() < deadline, "serve did not export on its own"
            time.sleep(0.1)
        trusted = [TrustedKey.from_pem(keys.signing_public.read_bytes())]
        export = parse_export_zip(get(f"{second.url}/v1/exports/{names[0]}"), trusted)
        assert tek.key_data in {bytes(k) for k in export.keys.key_data}
