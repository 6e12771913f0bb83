"""The certificate's ``tekmac``: HMAC-SHA256 over the uploaded keys' sorted, comma-joined segments.

Shared by the server (checking) and the clients (minting, uploading); needs no JWT library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

__all__ = ["gaen_segment", "tek_mac"]


def gaen_segment(key: bytes, rolling_start: int, rolling_period: int, risk: int | None) -> str:
    """``base64(key).start.period`` plus ``.risk`` unless ``risk`` is None (the 3-segment form)."""
    head = f"{base64.b64encode(key).decode()}.{rolling_start}.{rolling_period}"
    return head if risk is None else f"{head}.{risk}"


def tek_mac(hmac_key: bytes, segments: Iterable[str]) -> str:
    """Padded standard base64 of HMAC-SHA256 over the sorted, comma-joined segments."""
    message = ",".join(sorted(segments)).encode()
    return base64.b64encode(hmac.new(hmac_key, message, hashlib.sha256).digest()).decode()
