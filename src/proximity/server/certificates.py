"""Verification certificates: the health authority's ES256 JWT vouching for an upload, and its HMAC.

The key server checks a certificate offline (:func:`verify_certificate`): ES256 only (never ``none`` or
an HMAC algorithm), the signature under the issuer's key for the token's ``kid`` (no ``kid`` = ``v1``),
``iss``, ``aud``, ``exp``/``nbf``/``iat`` with a small clock skew. The ``tekmac`` claim binds the
certificate to the uploaded keys: standard padded base64 of HMAC-SHA256 under the device's ``hmacKey``
over the sorted, comma-joined key segments (:func:`tek_mac`). :func:`mint_certificate` is what a
verification server returns (for tests and demos).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from proximity.errors import KeyServerError
from proximity.server.mac import tek_mac

__all__ = [
    "ALGORITHM",
    "DEFAULT_KEY_VERSION",
    "REPORT_TYPES",
    "CertificateClaims",
    "InvalidCertificateError",
    "mint_certificate",
    "tek_mac",
    "verify_certificate",
]

ALGORITHM = "ES256"
DEFAULT_KEY_VERSION = "v1"
CLOCK_SKEW_SECONDS = 60
REPORT_TYPES = ("confirmed", "likely", "negative")


class InvalidCertificateError(KeyServerError, ValueError):
    """The certificate does not vouch for this upload; the message says which check failed."""


@dataclass(frozen=True, slots=True)
class CertificateClaims:
    issuer: str
    report_type: str  # "confirmed", "likely" or "negative"
    symptom_onset_interval: int | None
    tekmac: str
    issued_at: int = 0  # ``iat``: when the verification server vouched for these keys


def verify_certificate(
    token: str,
    *,
    issuer: str,
    keys: Mapping[str, ec.EllipticCurvePublicKey],
    audience: str,
    now: float | None = None,
    leeway: int = CLOCK_SKEW_SECONDS,
) -> CertificateClaims:
    """The certificate's claims if it is valid for ``issuer`` (keys by version) and ``audience``."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise InvalidCertificateError(f"not a JWT ({error})") from None
    if header.get("alg") != ALGORITHM:
        raise InvalidCertificateError(f"algorithm {header.get('alg')!r} is not allowed (ES256 only)")
    version = header.get("kid") or DEFAULT_KEY_VERSION
    key = keys.get(str(version))
    if key is None:
        raise InvalidCertificateError(f"no key version {version!r} is configured for issuer {issuer!r}")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["exp", "iat", "iss", "aud"], "verify_iat": True},
        )
    except jwt.PyJWTError as error:
        raise InvalidCertificateError(str(error)) from None
    for name in ("exp", "iat", "nbf"):  # PyJWT accepts numeric strings here; the checks below need numbers
        if name in claims and (not isinstance(claims[name], int | float) or isinstance(claims[name], bool)):
            raise InvalidCertificateError(f"{name} {claims[name]!r} is not a NumericDate")
    if now is not None:  # PyJWT checks against the system clock; a server with its own clock also checks
        if claims["exp"] + leeway < now:
            raise InvalidCertificateError("Signature has expired")
        if claims.get("nbf", claims["iat"]) - leeway > now:
            raise InvalidCertificateError("The token is not yet valid")
    report_type = claims.get("reportType", "")
    if report_type not in REPORT_TYPES:
        raise InvalidCertificateError(f"reportType {report_type!r} is not one of {', '.join(REPORT_TYPES)}")
    tekmac = claims.get("tekmac")
    if not isinstance(tekmac, str) or not tekmac:
        raise InvalidCertificateError("no tekmac claim")
    onset = claims.get("symptomOnsetInterval")
    if onset is not None and (not isinstance(onset, int) or isinstance(onset, bool) or onset < 0):
        raise InvalidCertificateError(f"symptomOnsetInterval {onset!r} is not an interval number")
    return CertificateClaims(issuer, report_type, onset, tekmac, int(claims["iat"]))


def mint_certificate(
    authority_key: ec.EllipticCurvePrivateKey,
    *,
    issuer: str,
    audience: str,
    tekmac: str,
    report_type: str = "confirmed",
    key_version: str = DEFAULT_KEY_VERSION,
    symptom_onset_interval: int | None = None,
    issued_at: float | None = None,
    lifetime_seconds: int = 15 * 60,
) -> str:
    """A certificate as a verification server issues it (ES256, ``kid`` = the key version)."""
    if report_type not in REPORT_TYPES:
        raise ValueError(f"report_type must be one of {', '.join(REPORT_TYPES)}")
    iat = int(time.time() if issued_at is None else issued_at)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "iat": iat,
        "nbf": iat,
        "exp": iat + lifetime_seconds,
        "reportType": report_type,
        "tekmac": tekmac,
    }
    if symptom_onset_interval is not None:
        claims["symptomOnsetInterval"] = symptom_onset_interval
    return jwt.encode(claims, authority_key, algorithm=ALGORITHM, headers={"kid": key_version})
