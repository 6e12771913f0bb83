"""Storage and export passes in-process, on each backend: revisions, embargo, file splits, retention,
two workers at once; and the ``--authority`` syntax."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from keyserver_harness import AUDIENCE, ISSUER, Keys, backends, make_keys, new_database
from proximity.errors import KeyServerConfigError, KeyServerError
from proximity.keyfiles.gaen_export import ExportFile, TrustedKey, load_signing_key, parse_export_zip
from proximity.schemes.gaen import TemporaryExposureKey
from proximity.schemes.published import ReportType
from proximity.server.app import load_token_secret
from proximity.server.certificates import mint_certificate, tek_mac
from proximity.server.client import gaen_publish_request, gaen_segments
from proximity.server.config import ServerConfig, load_authorities, parse_authority
from proximity.server.db import Database, open_database
from proximity.server.exporter import Exporter, export_data, export_index
from proximity.server.publish import PublishResult, PublishService
from proximity.server.tokens import InvalidRevisionTokenError, RevisionTokens, TokenEntry
from proximity.times import SECONDS_PER_DAY, now


@pytest.fixture(params=backends())
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, Keys]]:
    keys = make_keys(tmp_path / "keys")
    database = open_database(new_database(request.param, tmp_path))
    yield database, keys
    database.close()


def _config(keys: Keys, **change: object) -> ServerConfig:
    settings: dict[str, object] = {
        "region": "TE",
        "audience": AUDIENCE,
        "authorities": load_authorities([f"{ISSUER}={keys.authority_public}"]),
        "signing_key": load_signing_key(keys.signing_pem.read_bytes()),
        "min_keys": 10,
    }
    settings.update(change)
    return ServerConfig(**settings)  # type: ignore[arg-type]


def _publish(
    service: PublishService,
    keys: Keys,
    teks: list[TemporaryExposureKey],
    at: float,
    report: str = "confirmed",
    token: str | None = None,
) -> dict[str, object]:
    certificate, hmac_key = keys.certificate(gaen_segments(teks), report_type=report)
    document = gaen_publish_request(
        teks, certificate=certificate, hmac_key=hmac_key, authority=ISSUER, revision_token=token
    )
    result = service.publish(document, at)
    assert result.status == 200, result.body
    return result.body


def _exported(database: Database, keys: Keys) -> list[tuple[str, ExportFile]]:
    trusted = [TrustedKey.from_pem(keys.signing_public.read_bytes())]
    out = []
    for name in export_index(database):
        data = export_data(database, name)
        assert data is not None
        out.append((name, parse_export_zip(data, trusted)))
    return out


def _tek(days_ago: float) -> TemporaryExposureKey:
    return TemporaryExposureKey.generate(now() - days_ago * SECONDS_PER_DAY)


def test_revision_goes_out_as_a_revised_key(world: tuple[Database, Keys]) -> None:
    database, keys = world
    config = _config(keys)
    service = PublishService(config, database, RevisionTokens(load_token_secret(database)))
    exporter = Exporter(config, database)
    at = now()
    tek = _tek(1)
    first = _publish(service, keys, [tek], at, "likely")
    assert exporter.run_once(at).keys == 1
    _publish(service, keys, [tek], at + 1, "confirmed", token=str(first["revisionToken"]))
    second = exporter.run_once(at + 2)
    assert (second.keys, second.revised_keys) == (0, 1)
    assert exporter.run_once(at + 3).files == []  # nothing new, within the batch period
    (_, one), (_, two) = _exported(database, keys)
    assert tek.key_data in {bytes(k) for k in one.keys.key_data}
    found = dict(zip([bytes(k) for k in one.keys.key_data], one.keys.report_type.tolist(), strict=True))
    assert found[tek.key_data] == ReportType.CONFIRMED_CLINICAL_DIAGNOSIS
    assert [bytes(k) for k in two.revised_keys.key_data] == [tek.key_data]
    assert two.revised_keys.report_type.tolist() == [ReportType.CONFIRMED_TEST]


def test_a_later_certificate_for_stored_keys_gets_no_token(world: tuple[Database, Keys]) -> None:
    """Published keys are public, and anyone with a verification code can have them certified. Only a
    resend of the upload itself (its certificate older than the stored rows) gets the token back;
    otherwise a stranger could take the token and revoke someone else's likely keys."""
    database, keys = world
    service = PublishService(_config(keys), database, RevisionTokens(load_token_secret(database)))
    teks = [_tek(3), _tek(2)]
    stored_at = now() - 3600  # the owner uploaded an hour ago
    certificate, hmac_key = keys.certificate(
        gaen_segments(teks), report_type="likely", issued_at=stored_at - 5, lifetime_seconds=2 * 3600
    )
    owner = gaen_publish_request(teks, certificate=certificate, hmac_key=hmac_key, authority=ISSUER)
    assert service.publish(owner, stored_at).body["insertedExposures"] == 2
    resent = service.publish(owner, stored_at + 30)  # the response was lost; the app sends it again
    assert resent.status == 200 and resent.body["revisionToken"], resent.body
    certificate, hmac_key = keys.certificate(gaen_segments(teks), report_type="likely")  # a new code, now
    stranger = gaen_publish_request(teks, certificate=certificate, hmac_key=hmac_key, authority=ISSUER)
    refused = service.publish(stranger, now())
    assert (refused.status, refused.body.get("code")) == (400, "missing_revision_token"), refused.body
    assert "revisionToken" not in refused.body


def test_tekmac_in_any_base64_flavour(world: tuple[Database, Keys]) -> None:
    """The reference server decodes ``tekmac`` leniently (standard or URL-safe, padded or not) and
    compares bytes; verification servers pass on whatever the app sent, so this server does too."""
    database, keys = world
    service = PublishService(_config(keys), database, RevisionTokens(load_token_secret(database)))
    flavours: dict[str, Callable[[str], str]] = {
        "unpadded": lambda mac: mac.rstrip("="),
        "URL-safe": lambda mac: mac.replace("+", "-").replace("/", "_"),
        "URL-safe unpadded": lambda mac: mac.replace("+", "-").replace("/", "_").rstrip("="),
    }
    for name, flavour in flavours.items():
        while True:  # a MAC whose standard form holds + or /, so that the flavours differ
            teks = [_tek(2)]
            hmac_key = os.urandom(32)
            mac = tek_mac(hmac_key, gaen_segments(teks))
            if "+" in mac or "/" in mac:
                break
        certificate = mint_certificate(keys.authority, issuer=ISSUER, audience=AUDIENCE, tekmac=flavour(mac))
        document = gaen_publish_request(
            teks, certificate=certificate, hmac_key=base64.b64encode(hmac_key).decode(), authority=ISSUER
        )
        result = service.publish(document, now())
        assert (result.status, result.body["insertedExposures"]) == (200, 1), (name, result.body)


def test_certificate_times_must_be_numbers(world: tuple[Database, Keys]) -> None:
    """A signed certificate whose ``iat``/``exp`` is a string (PyJWT lets numeric strings through) is
    refused as invalid, not a TypeError and a 500."""
    import jwt

    database, keys = world
    service = PublishService(_config(keys), database, RevisionTokens(load_token_secret(database)))
    teks = [_tek(2)]
    hmac_key = os.urandom(32)
    at = int(now())
    for bad in ({"iat": str(at)}, {"exp": str(at + 600)}, {"nbf": str(at)}):
        claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": at, "exp": at + 600, "reportType": "confirmed"}
        claims.update(bad, tekmac=tek_mac(hmac_key, gaen_segments(teks)))
        certificate = jwt.encode(claims, keys.authority, algorithm="ES256", headers={"kid": "v1"})
        document = gaen_publish_request(
            teks, certificate=certificate, hmac_key=base64.b64encode(hmac_key).decode(), authority=ISSUER
        )
        result = service.publish(document, at)
        assert (result.status, result.body["code"]) == (
            401,
            "health_authority_verification_certificate_invalid",
        ), (bad, result.body)


def test_a_zero_risk_is_a_missing_risk(world: tuple[Database, Keys]) -> None:
    """The reference server cannot tell ``transmissionRisk: 0`` from an omitted one and derives both
    from the report type; exporting a 0 would score these keys as no risk at all."""
    database, keys = world
    config = _config(keys, min_keys=0)
    service = PublishService(config, database, RevisionTokens(load_token_secret(database)))
    at = now()
    teks = [_tek(2)]
    certificate, hmac_key = keys.certificate(gaen_segments(teks), report_type="likely")
    document = gaen_publish_request(
        teks, certificate=certificate, hmac_key=hmac_key, authority=ISSUER, risk=0
    )
    assert document["temporaryExposureKeys"][0]["transmissionRisk"] == 0
    assert service.publish(document, at).status == 200
    Exporter(config, database).run_once(at)
    ((_, export),) = _exported(database, keys)
    assert set(export.keys.transmission_risk_level.tolist()) == {4}  # fake keys copy real ones


def test_certificate_onset_overrides_the_request(world: tuple[Database, Keys]) -> None:
    database, keys = world
    config = _config(keys)
    service = PublishService(config, database, RevisionTokens(load_token_secret(database)))
    at = now()
    teks = [_tek(3), _tek(1)]
    # Symptoms began on the older key's UTC day (its start may be late in that day: round down first).
    onset_day = teks[0].rolling_start_interval_number // 144 * 144
    certificate, hmac_key = keys.certificate(gaen_segments(teks), symptom_onset_interval=onset_day + 5)
    document = gaen_publish_request(
        teks, certificate=certificate, hmac_key=hmac_key, authority=ISSUER, symptom_onset_interval=1
    )
    assert service.publish(document, at).status == 200
    Exporter(config, database).run_once(at)
    ((_, export),) = _exported(database, keys)
    onsets = dict(
        zip([bytes(k) for k in export.keys.key_data], export.keys.days_since_onset.tolist(), strict=True)
    )
    assert [onsets[t.key_data] for t in teks] == [0, 2]


def test_embargo_split_and_retention(world: tuple[Database, Keys]) -> None:
    database, keys = world
    config = _config(keys, max_keys_per_file=3, min_keys=0)
    service = PublishService(config, database, RevisionTokens(load_token_secret(database)))
    exporter = Exporter(config, database)
    at = now()
    today = TemporaryExposureKey.generate(at)
    old = [
        TemporaryExposureKey(os.urandom(16), today.rolling_start_interval_number - 144 * d) for d in (1, 2, 3)
    ]
    old += [
        TemporaryExposureKey(os.urandom(16), today.rolling_start_interval_number - 144 * d)
        for d in (1, 2, 3, 4)
    ]
    _publish(service, keys, [*old, today], at)
    report = exporter.run_once(at)
    assert report.keys == 7 and [n[-9:] for n in report.files] == ["00001.zip", "00002.zip", "00003.zip"]
    files = _exported(database, keys)
    exported = [bytes(k) for _, f in files for k in f.keys.key_data]
    assert {t.key_data for t in old} <= set(exported) and len(files) == 3  # (with fake keys)
    assert today.key_data not in exported
    assert exporter.run_once(today.end - 1).keys == 0  # still embargoed until its period ends
    assert exporter.run_once(today.end).keys == 1
    listed = export_index(database)
    late = exporter.run_once(at + 20 * SECONDS_PER_DAY)
    assert late.deleted_files == len(listed) >= 4 and late.deleted_keys == 8
    assert export_index(database) == late.files  # only the padded quiet-period file is left


def test_two_workers_export_each_key_once(world: tuple[Database, Keys]) -> None:
    database, keys = world
    config = _config(keys, max_keys_per_publish=30, min_keys=0)
    service = PublishService(config, database, RevisionTokens(load_token_secret(database)))
    at = now()
    published = set()
    for _ in range(10):
        teks = [
            TemporaryExposureKey(os.urandom(16), _tek(d).rolling_start_interval_number) for d in range(1, 11)
        ]
        _publish(service, keys, teks, at)
        published |= {t.key_data for t in teks}
    barrier = threading.Barrier(2)
    reports = []

    def work() -> None:
        worker = Exporter(config, database)
        barrier.wait()
        reports.append(worker.run_once(at))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    exported = [bytes(k) for _, f in _exported(database, keys) for k in f.keys.key_data]
    assert published <= set(exported) and sum(r.keys for r in reports) == 100
    assert len([k for k in exported if k in published]) == 100  # each once


@pytest.mark.parametrize("backend", [b for b in backends() if b == "postgresql"])
def test_same_new_key_from_two_uploads_at_once(backend: str, tmp_path: Path) -> None:
    """PostgreSQL runs publishes concurrently: the second insert of a key waits on the first's
    uncommitted row, then meets the unique key. That is a retry's no-op, never an internal error."""
    import psycopg

    keys = make_keys(tmp_path / "keys")
    url = new_database(backend, tmp_path)
    database = open_database(url)
    service = PublishService(_config(keys), database, RevisionTokens(load_token_secret(database)))
    at = now()
    tek = _tek(2)
    certificate, hmac_key = keys.certificate(gaen_segments([tek]))
    document = gaen_publish_request([tek], certificate=certificate, hmac_key=hmac_key, authority=ISSUER)
    outcome: list[PublishResult | Exception] = []

    def upload() -> None:
        try:
            outcome.append(service.publish(document, at))
        except Exception as error:  # what the app would see as a 500
            outcome.append(error)

    with psycopg.connect(url, autocommit=True) as other, psycopg.connect(url, autocommit=True) as watch:
        other.execute("BEGIN")
        other.execute(  # the other upload: its row is written, not yet committed
            "INSERT INTO exposures (key, rolling_start, rolling_period, transmission_risk, report_type, "
            "traveler, health_authority, created_at, available_at) VALUES (%s, %s, %s, 2, %s, 0, %s, %s, %s)",
            (
                tek.key_data,
                tek.rolling_start_interval_number,
                tek.rolling_period,
                int(ReportType.CONFIRMED_TEST),
                ISSUER,
                int(at),
                int(at),
            ),
        )
        thread = threading.Thread(target=upload)
        thread.start()
        waiting = False
        for _ in range(6000):  # until our upload waits on the other's row lock (a safety net, not a budget)
            row = watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ).fetchone()
            if (waiting := bool(row and row[0])) or not thread.is_alive():
                break
            thread.join(0.01)
        other.execute("COMMIT")
        thread.join(120)
    database.close()
    assert waiting, "the upload never waited on the concurrent insert"
    (result,) = outcome
    assert isinstance(result, PublishResult), repr(result)
    assert result.status == 200 and result.body["insertedExposures"] == 0, result.body
    assert result.body["revisionToken"]


def test_revision_tokens_are_tamper_evident() -> None:
    tokens = RevisionTokens(os.urandom(32))
    entries = [TokenEntry(os.urandom(16), 2_900_000, 144, 2), TokenEntry(os.urandom(16), 2_900_144, 144, 1)]
    token = tokens.seal(entries)
    assert sorted(tokens.open(token), key=lambda e: e.key) == sorted(entries, key=lambda e: e.key)
    raw = bytearray(token.encode())
    raw[20] = ord("A") if raw[20] != ord("A") else ord("B")
    with pytest.raises(InvalidRevisionTokenError):
        tokens.open(raw.decode())
    with pytest.raises(InvalidRevisionTokenError):
        RevisionTokens(os.urandom(32)).open(token)


def test_authority_syntax() -> None:
    spec = parse_authority("health%40gov%3Dvn@v2=dir/ha=1@x.pem")
    assert (spec.issuer, spec.version, spec.path) == ("health@gov=vn", "v2", "dir/ha=1@x.pem")
    assert parse_authority("gov.vn=ha.pem").version == "v1"
    assert parse_authority("100%25%20sure=ha.pem").issuer == "100% sure"
    for bad in ("gov.vn", "=ha.pem", "gov.vn@=ha.pem", "gov@v 1=ha.pem"):
        with pytest.raises(KeyServerConfigError):
            parse_authority(bad)


def test_refusals_are_typed_under_proximity_error() -> None:
    from proximity.errors import ProximityError
    from proximity.server.publish import PublishError, bad_request

    assert isinstance(bad_request("x"), ProximityError)
    assert issubclass(PublishError, KeyServerError)


def test_database_description_holds_no_password() -> None:
    for url in (
        "postgresql://user:s3cr3t@db.example:5432/keys",
        "postgresql://db.example/keys?password=s3cr3t&sslmode=require",
        "postgresql://user:p@ss:s3cr3t@db.example/keys",
    ):
        described = Database(url).describe()
        assert "s3cr3t" not in described and "db.example" in described, described
