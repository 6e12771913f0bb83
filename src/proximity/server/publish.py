"""``POST /v1/publish``: Google's publish request, checked the reference server's way, stored atomically.

Order of checks: the request's shape and limits (400 ``bad_request``), the health authority (401
``unknown_health_authority_id``), the certificate and its ``tekmac`` (401
``health_authority_verification_certificate_invalid``), the keys' window (keys too old or starting in the
future are dropped: 200 ``partial_failure``, or 400 when none is left), then revisions. A request either
stores all it accepted in one transaction or nothing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from proximity.errors import KeyServerError
from proximity.schemes.gaen import ENIN_SECONDS, TEK_LENGTH, TEK_ROLLING_PERIOD
from proximity.schemes.published import ReportType
from proximity.server.certificates import (
    CLOCK_SKEW_SECONDS,
    CertificateClaims,
    InvalidCertificateError,
    tek_mac,
    verify_certificate,
)
from proximity.server.config import ServerConfig
from proximity.server.db import ConflictError, Database, Transaction
from proximity.server.mac import gaen_segment
from proximity.server.tokens import InvalidRevisionTokenError, RevisionTokens, TokenEntry

__all__ = [
    "REPORT_TYPE_CODES",
    "PublishEndpoint",
    "PublishError",
    "PublishResult",
    "PublishService",
    "UploadedKey",
    "gaen_mac_segments",
    "padding",
    "request_items",
]

REPORT_TYPE_CODES = {
    "confirmed": ReportType.CONFIRMED_TEST,
    "likely": ReportType.CONFIRMED_CLINICAL_DIAGNOSIS,
    "negative": ReportType.REVOKED,
}
# A missing transmission risk follows from the report type (the reference server's defaults); as in the
# reference server, an explicit 0 counts as missing (Go cannot tell them apart, and apps send 0).
DEFAULT_RISK = {"confirmed": 2, "likely": 4, "negative": 6}
MIN_HMAC_KEY_BYTES = 16
ONSET_MAX_DAYS = 14


class PublishError(KeyServerError):
    """A refused request: HTTP status, the protocol's error code, a message for the app's developer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def result(self) -> PublishResult:
        return PublishResult(self.status, {"error": self.message, "code": self.code, "padding": padding()})


def bad_request(message: str) -> PublishError:
    return PublishError(400, "bad_request", message)


@dataclass(frozen=True, slots=True)
class PublishResult:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UploadedKey:
    key: bytes
    rolling_start: int
    rolling_period: int
    risk: int | None  # None: omitted

    @property
    def end_interval(self) -> int:
        return self.rolling_start + self.rolling_period


def padding(rng: int = 64) -> str:
    """Random base64 of random length, so response sizes say nothing."""
    return base64.b64encode(os.urandom(16 + int.from_bytes(os.urandom(1)) % rng)).decode()


def decode_b64(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise bad_request(f"{what} must be a non-empty base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{what} is not standard padded base64") from None


def _int(item: Mapping[str, Any], name: str, where: str, *, required: bool = True) -> int | None:
    value = item.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(f"{where}: {name} must be an integer")
    return value


def parse_key(item: object, index: int) -> UploadedKey:
    where = f"temporaryExposureKeys[{index}]"
    if not isinstance(item, dict):
        raise bad_request(f"{where} is not an object")
    key = decode_b64(item.get("key"), f"{where}.key")
    if len(key) != TEK_LENGTH:
        raise bad_request(f"{where}.key is {len(key)} bytes; a TEK is {TEK_LENGTH}")
    start = _int(item, "rollingStartNumber", where)
    period = _int(item, "rollingPeriod", where, required=False)
    risk = _int(item, "transmissionRisk", where, required=False)
    assert start is not None
    period = TEK_ROLLING_PERIOD if period is None else period
    if start < 0 or start >= 2**32:
        raise bad_request(f"{where}: rollingStartNumber {start} is out of range")
    if not 1 <= period <= TEK_ROLLING_PERIOD:
        raise bad_request(f"{where}: rollingPeriod {period} is not in 1..{TEK_ROLLING_PERIOD}")
    if risk is not None and not 0 <= risk <= 8:
        raise bad_request(f"{where}: transmissionRisk {risk} is not in 0..8")
    return UploadedKey(key, start, period, risk)


def gaen_mac_segments(keys: Sequence[UploadedKey], *, with_risk: bool) -> list[str]:
    """``base64(key).start.period[.risk]`` per key (an omitted risk is 0 in the 4-segment form)."""
    return [
        gaen_segment(k.key, k.rolling_start, k.rolling_period, (k.risk or 0) if with_risk else None)
        for k in keys
    ]


def _mac_bytes(text: str) -> bytes | None:
    """The claim's MAC: like the reference server, standard or URL-safe base64, padded or not."""
    padded = text + "=" * (-len(text) % 4)
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def check_mac(claims: CertificateClaims, hmac_key: bytes, segment_sets: Sequence[Sequence[str]]) -> None:
    """The certificate's ``tekmac`` must equal the MAC of one of the allowed segment forms (bytes compared
    in constant time, whichever base64 flavour the verification server passed on)."""
    claimed = _mac_bytes(claims.tekmac)
    for segments in segment_sets:
        expected = base64.b64decode(tek_mac(hmac_key, segments))
        if claimed is not None and hmac.compare_digest(expected, claimed):
            return
    raise PublishError(
        401,
        "health_authority_verification_certificate_invalid",
        "the certificate's tekmac does not match the uploaded keys and hmacKey",
    )


def authenticate(
    document: Mapping[str, Any], config: ServerConfig, now: float
) -> tuple[CertificateClaims, bytes]:
    """The authority and certificate checks every publish endpoint shares; returns claims and hmacKey."""
    authority = document.get("healthAuthorityID")
    if not isinstance(authority, str) or authority not in config.authorities:
        raise PublishError(
            401, "unknown_health_authority_id", f"healthAuthorityID {authority!r} is not configured here"
        )
    hmac_key = decode_b64(document.get("hmacKey"), "hmacKey")
    if len(hmac_key) < MIN_HMAC_KEY_BYTES:
        raise bad_request(f"hmacKey must hold at least {MIN_HMAC_KEY_BYTES} bytes")
    token = document.get("verificationPayload")
    if not isinstance(token, str) or not token:
        raise PublishError(401, "health_authority_verification_certificate_invalid", "no verificationPayload")
    try:
        claims = verify_certificate(
            token, issuer=authority, keys=config.authorities[authority], audience=config.audience, now=now
        )
    except InvalidCertificateError as error:
        raise PublishError(
            401, "health_authority_verification_certificate_invalid", f"certificate refused: {error}"
        ) from None
    return claims, hmac_key


@dataclass(frozen=True, slots=True)
class _Row:
    key: bytes
    rolling_start: int
    rolling_period: int
    report_type: int
    revised: bool
    created_at: int


def request_items(document: object, field: str, limit: int) -> tuple[dict[str, Any], list[Any]]:
    """The request object and its non-empty list of at most ``limit`` items."""
    if not isinstance(document, dict):
        raise bad_request("the request must be a JSON object")
    items = document.get(field)
    if not isinstance(items, list) or not items:
        raise bad_request(f"{field} must be a non-empty list")
    if len(items) > limit:
        raise bad_request(f"{len(items)} items in {field}; at most {limit} are accepted in one publish")
    return document, items


class PublishEndpoint:
    """A publish endpoint: a refusal becomes its response, whatever check raised it."""

    def publish(self, document: object, now: float) -> PublishResult:
        try:
            return self._publish(document, now)
        except PublishError as error:
            return error.result()

    def _publish(self, document: object, now: float) -> PublishResult:
        raise NotImplementedError


class PublishService(PublishEndpoint):
    """The publish logic over a database; thread-safe (one transaction per call)."""

    def __init__(self, config: ServerConfig, database: Database, tokens: RevisionTokens) -> None:
        self.config = config
        self.database = database
        self.tokens = tokens

    def _publish(self, document: object, now: float) -> PublishResult:
        config = self.config
        document, items = request_items(document, "temporaryExposureKeys", config.max_keys_per_publish)
        keys = [parse_key(item, i) for i, item in enumerate(items)]
        if len({k.key for k in keys}) != len(keys):
            raise bad_request("the same key is uploaded twice")
        starts = Counter(k.rolling_start for k in keys)
        crowded = [s for s, n in starts.items() if n > config.max_same_start]
        if crowded:
            raise bad_request(f"more than {config.max_same_start} keys start at interval {crowded[0]}")
        traveler = document.get("traveler", False)
        if not isinstance(traveler, bool):
            raise bad_request("traveler must be true or false")
        onset_request = _int(document, "symptomOnsetInterval", "request", required=False)
        token = document.get("revisionToken") or None
        if token is not None and not isinstance(token, str):
            raise bad_request("revisionToken must be a string")

        claims, hmac_key = authenticate(document, config, now)
        forms = [gaen_mac_segments(keys, with_risk=True)]
        if all(not k.risk for k in keys):
            forms.append(gaen_mac_segments(keys, with_risk=False))
        check_mac(claims, hmac_key, forms)

        report_name = claims.report_type
        report_type = int(REPORT_TYPE_CODES[report_name])
        now_interval = int(now) // ENIN_SECONDS
        oldest = now_interval - config.max_age_days * TEK_ROLLING_PERIOD
        warnings: list[str] = []
        accepted: list[UploadedKey] = []
        for k in keys:
            if k.end_interval < oldest:
                warnings.append(f"key starting at {k.rolling_start} is older than {config.max_age_days} days")
            elif k.rolling_start > now_interval:
                warnings.append(f"key starting at {k.rolling_start} starts in the future")
            else:
                accepted.append(k)
        if not accepted:
            raise bad_request("no key is inside the accepted window: " + "; ".join(warnings))
        onset = claims.symptom_onset_interval if claims.symptom_onset_interval is not None else onset_request
        onset_day: int | None = None
        if onset is not None:
            day = onset // TEK_ROLLING_PERIOD * TEK_ROLLING_PERIOD
            if now_interval - ONSET_MAX_DAYS * TEK_ROLLING_PERIOD <= day <= now_interval:
                onset_day = day
            else:
                warnings.append("symptomOnsetInterval is outside the last 14 days; ignored")
        risk_default = DEFAULT_RISK[report_name]
        rows = []
        for k in accepted:
            embargo = k.end_interval * ENIN_SECONDS if k.end_interval > now_interval else 0
            since_onset = None if onset_day is None else (k.rolling_start - onset_day) // TEK_ROLLING_PERIOD
            rows.append(
                (
                    k.key,
                    k.rolling_start,
                    k.rolling_period,
                    k.risk or risk_default,
                    report_type,
                    since_onset,
                    int(traveler),
                    document["healthAuthorityID"],
                    int(now),
                    max(int(now), embargo),
                )
            )
        previous = self._open_token(token)
        # Only keys stored after this certificate was issued can be this upload's own, resent.
        retry_since = claims.issued_at - CLOCK_SKEW_SECONDS

        def store() -> tuple[int, list[TokenEntry]]:
            with self.database.transaction() as tx:
                return self._store(tx, rows, report_type, previous, token is not None, int(now), retry_since)

        try:
            inserted, entries = store()
        except ConflictError:
            # Another request stored one of these keys between our read and our insert (PostgreSQL runs
            # publishes concurrently). Run again: this time the keys are seen and judged as existing ones.
            inserted, entries = store()
        body: dict[str, Any] = {
            "revisionToken": self.tokens.seal(entries) if entries else "",
            "insertedExposures": inserted,
            "padding": padding(),
        }
        if warnings:
            body.update(code="partial_failure", error="; ".join(warnings), warnings=warnings)
        return PublishResult(200, body)

    def _open_token(self, token: str | None) -> dict[bytes, TokenEntry]:
        if token is None:
            return {}
        try:
            return {e.key: e for e in self.tokens.open(token)}
        except InvalidRevisionTokenError as error:
            raise PublishError(400, "invalid_revision_token", f"revisionToken refused: {error}") from None

    def _store(
        self,
        tx: Transaction,
        rows: list[tuple[Any, ...]],
        report_type: int,
        previous: dict[bytes, TokenEntry],
        has_token: bool,
        now: int,
        retry_since: int,
    ) -> tuple[int, list[TokenEntry]]:
        marks = ",".join("?" * len(rows))
        existing = {
            bytes(r[0]): _Row(bytes(r[0]), r[1], r[2], r[3], r[4] is not None, r[5])
            for r in tx.fetchall(
                "SELECT key, rolling_start, rolling_period, report_type, revised_report_type, created_at "
                f"FROM exposures WHERE key IN ({marks})",
                [row[0] for row in rows],
            )
        }
        inserts = []
        revisions = []
        entries = dict(previous)
        for row in rows:
            key = row[0]
            old = existing.get(key)
            if old is None:
                if report_type != ReportType.REVOKED:  # negative keys are never stored
                    inserts.append(row)
                    entries[key] = TokenEntry(key, row[1], row[2], report_type)
                continue
            same = (old.rolling_start, old.rolling_period, old.report_type) == (row[1], row[2], report_type)
            if same and not old.revised and old.created_at >= retry_since:
                # A retry of an upload whose response was lost (the certificate covers these very keys and
                # is older than their rows): nothing to change, and the app gets the token it missed. A
                # certificate issued after the keys were stored (published keys are public) gets no token.
                entries[key] = TokenEntry(key, old.rolling_start, old.rolling_period, old.report_type)
                continue
            if not has_token:
                raise PublishError(
                    400, "missing_revision_token", "a key was published before: send the revisionToken"
                )
            known = previous.get(key)
            if known is None or (known.rolling_start, known.rolling_period) != (
                old.rolling_start,
                old.rolling_period,
            ):
                raise PublishError(
                    400, "invalid_revision_token", "the revisionToken does not cover a revised key"
                )
            if old.revised:
                raise PublishError(400, "key_already_revised", "a key was already revised once")
            if old.report_type != ReportType.CONFIRMED_CLINICAL_DIAGNOSIS or report_type not in (
                ReportType.CONFIRMED_TEST,
                ReportType.REVOKED,
            ):
                raise PublishError(
                    400,
                    "invalid_report_type_transition",
                    "only likely keys can be revised (to confirmed or negative)",
                )
            revisions.append((report_type, now, key))
            entries[key] = TokenEntry(key, old.rolling_start, old.rolling_period, report_type)
        tx.executemany(
            "INSERT INTO exposures (key, rolling_start, rolling_period, transmission_risk, report_type, "
            "days_since_onset, traveler, health_authority, created_at, available_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            inserts,
        )
        tx.executemany(
            "UPDATE exposures SET revised_report_type = ?, revised_at = ? WHERE key = ?", revisions
        )
        return len(inserts) + len(revisions), list(entries.values())
