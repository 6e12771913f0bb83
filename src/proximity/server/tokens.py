"""Revision tokens: opaque, tamper-evident lists of the keys an upload stored.

An app sends its token back when it revises keys (likely -> confirmed). The token is AES-256-GCM over a
compact list of (key, start interval, period, report type) under a secret kept in the database, so
tokens survive restarts and are shared by every server process; a changed byte fails authentication.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from proximity.errors import KeyServerError

__all__ = ["SECRET_LENGTH", "InvalidRevisionTokenError", "RevisionTokens", "TokenEntry"]

SECRET_LENGTH = 32
_NONCE = 12
_VERSION = 1
_AAD = b"proximity revision token v1"
_ENTRY = struct.Struct(">16sIBB")  # key, rolling start interval, rolling period, report type


class InvalidRevisionTokenError(KeyServerError, ValueError):
    """The token is not one this server issued (or it was altered)."""


@dataclass(frozen=True, slots=True)
class TokenEntry:
    key: bytes
    rolling_start: int
    rolling_period: int
    report_type: int


class RevisionTokens:
    """Seal and open revision tokens under one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != SECRET_LENGTH:
            raise ValueError(f"the revision-token secret must be {SECRET_LENGTH} bytes")
        self._aead = AESGCM(secret)

    def seal(self, entries: Iterable[TokenEntry]) -> str:
        body = bytes([_VERSION]) + b"".join(
            _ENTRY.pack(e.key, e.rolling_start, e.rolling_period, e.report_type)
            for e in sorted(entries, key=lambda e: e.key)
        )
        nonce = os.urandom(_NONCE)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, body, _AAD)).decode()

    def open(self, token: str) -> list[TokenEntry]:
        try:
            raw = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRevisionTokenError("not base64") from None
        if len(raw) < _NONCE + 16 + 1:
            raise InvalidRevisionTokenError("too short")
        try:
            body = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _AAD)
        except InvalidTag:
            raise InvalidRevisionTokenError("does not authenticate") from None
        if body[:1] != bytes([_VERSION]) or (len(body) - 1) % _ENTRY.size:
            raise InvalidRevisionTokenError("unknown layout")
        return [TokenEntry(*fields) for fields in _ENTRY.iter_unpack(body[1:])]
