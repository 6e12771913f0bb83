"""The certificate's ``tekmac``: HMAC-SHA256 over the uploaded keys' sorted, comma-joined segments.

Shared by the server (checking) and the clients (minting, uploading); needs no JWT library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

__all__ = ["tek_mac"]


def tek_mac(hmac_key: bytes, segments: Iterable[str]) -> str:
    """Padded standard base64 of HMAC-SHA256 over the sorted, comma-joined segments."""
    message = ",".join(sorted(segments)).encode()
    return base64.b64encode(hmac.new(hmac_key, message, hashlib.sha256).digest()).decode()
