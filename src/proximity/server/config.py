"""The key server's settings, and the ``--authority ISS[@VERSION]=PUBLIC.pem`` syntax.

An issuer may hold ``=``, ``@`` or ``%``: write them percent-escaped (``%3D``, ``%40``, ``%25``), so
``--authority 'health%40gov%3Dvn@v2=ha.pem'`` is issuer ``health@gov=vn``, key version ``v2``. Everything
after the first unescaped ``=`` is the PEM path, taken as it is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from cryptography.hazmat.primitives.asymmetric import ec

from proximity.errors import KeyServerConfigError, ProximityError
from proximity.keyfiles.gaen_export import TrustedKey, load_signing_key
from proximity.keyring.store import default_keyring_path

__all__ = [
    "AuthoritySpec",
    "ServerConfig",
    "default_database_path",
    "load_authorities",
    "parse_authority",
]

_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True, slots=True)
class AuthoritySpec:
    issuer: str
    version: str
    path: str


def parse_authority(spec: str) -> AuthoritySpec:
    """``ISS[@VERSION]=PEM`` (issuer percent-escaped; no version means ``v1``)."""
    head, sep, path = spec.partition("=")
    if not sep or not head or not path:
        raise KeyServerConfigError("--authority", f"{spec!r} is not ISS[@VERSION]=PUBLIC.pem")
    issuer_text, at, version = head.partition("@")
    if not at:
        version = "v1"
    if not _VERSION.match(version):
        raise KeyServerConfigError(
            "--authority", f"key version {version!r} must be 1-64 of A-Z a-z 0-9 . _ -"
        )
    issuer = unquote(issuer_text, errors="strict")
    if not issuer:
        raise KeyServerConfigError("--authority", f"{spec!r} names no issuer")
    return AuthoritySpec(issuer, version, path)


def load_authorities(specs: list[str]) -> dict[str, dict[str, ec.EllipticCurvePublicKey]]:
    """Public keys by issuer, then key version; a repeated (issuer, version) is refused."""
    authorities: dict[str, dict[str, ec.EllipticCurvePublicKey]] = {}
    for text in specs:
        spec = parse_authority(text)
        try:
            pem = Path(spec.path).read_bytes()
        except OSError as error:
            raise KeyServerConfigError("--authority", f"cannot read {spec.path}: {error.strerror}") from None
        try:
            key = TrustedKey.from_pem(pem, source=spec.path).public_key
        except ProximityError as error:
            raise KeyServerConfigError("--authority", str(error)) from None
        versions = authorities.setdefault(spec.issuer, {})
        if spec.version in versions:
            raise KeyServerConfigError(
                "--authority", f"issuer {spec.issuer!r} version {spec.version} is given twice"
            )
        versions[spec.version] = key
    return authorities


def load_export_signing_key(path: str) -> ec.EllipticCurvePrivateKey:
    try:
        pem = Path(path).read_bytes()
    except OSError as error:
        raise KeyServerConfigError("--signing-key", f"cannot read {path}: {error.strerror}") from None
    return load_signing_key(pem, path)


def default_database_path(environ: Mapping[str, str] = os.environ) -> Path:
    """``keys.sqlite`` in the user data directory, beside the default key ring."""
    return default_keyring_path(environ).with_name("keys.sqlite")


@dataclass(frozen=True)
class ServerConfig:
    """What one region's server needs; limits default to the reference server's."""

    region: str
    audience: str
    authorities: Mapping[str, Mapping[str, ec.EllipticCurvePublicKey]] = field(default_factory=dict)
    signing_key: ec.EllipticCurvePrivateKey | None = None
    key_id: str = "proximity"
    key_version: str = "v1"
    max_keys_per_publish: int = 30
    max_same_start: int = 3
    max_age_days: int = 15
    max_body_bytes: int = 64_000
    batch_minutes: int = 60
    min_keys: int = 1000
    max_keys_per_file: int = 500_000
    retention_days: int = 14

    def __post_init__(self) -> None:
        for name in ("max_keys_per_publish", "max_same_start", "max_age_days", "batch_minutes"):
            if getattr(self, name) < 1:
                raise KeyServerConfigError(name, "must be at least 1")
        if self.min_keys < 0 or self.max_keys_per_file < 1 or self.retention_days < 1:
            raise KeyServerConfigError("limits", "min_keys >= 0, max_keys_per_file >= 1, retention_days >= 1")
