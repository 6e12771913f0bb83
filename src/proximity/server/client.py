"""Clients of a key server, standard library only: what an app uploads, and what a phone downloads.

:func:`gaen_publish_request` builds the publish JSON exactly as an app does (keys, certificate, hmacKey,
random padding; risk omitted by default, so the certificate's MAC is the 3-segment form);
:func:`download_key_files` turns ``URL/index.txt`` (or a records.json URL) into local files for
``proximity match``.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from proximity.errors import KeyServerError
from proximity.keyring import KeyRing
from proximity.schemes.gaen import TemporaryExposureKey
from proximity.schemes.registry import DailyKeyUpload, scheme_record
from proximity.server.exporter import EXPORT_NAME
from proximity.server.mac import gaen_segment
from proximity.times import SECONDS_PER_DAY, utc_midnight

__all__ = [
    "certificate_issuer",
    "daily_publish_items",
    "daily_segments",
    "download_key_files",
    "gaen_publish_request",
    "gaen_segments",
    "post_json",
    "upload_keys",
]

TIMEOUT_SECONDS = 60.0


def upload_keys(ring: KeyRing, at: float) -> list[TemporaryExposureKey]:
    """The ring's GAEN keys that began by ``at`` (today's too: the server embargoes it)."""
    return [key for key in ring.gaen_keys if key.start <= at]


def gaen_segments(keys: Sequence[TemporaryExposureKey], risk: int | None = None) -> list[str]:
    """The MAC segments for keys uploaded with ``risk`` (None: omitted, the 3-segment form)."""
    return [gaen_segment(k.key_data, k.rolling_start_interval_number, k.rolling_period, risk) for k in keys]


def _upload_of(scheme: str) -> DailyKeyUpload:
    upload = scheme_record(scheme).load_upload()
    if upload is None:
        raise ValueError(f"{scheme} keys are uploaded through /v1/publish, not as daily keys")
    return upload


def daily_publish_items(ring: KeyRing, scheme: str, at: float, days: int) -> list[dict[str, Any]]:
    """The upload items of what the ring publishes of a daily-key scheme over the ``days`` UTC days up
    to the day of ``at`` (none before the ring's first key of it)."""
    first = utc_midnight(at) - (days - 1) * SECONDS_PER_DAY
    return _upload_of(scheme).items(ring.published(scheme, first, days))


def daily_segments(scheme: str, items: Sequence[dict[str, Any]]) -> list[str]:
    """The certificate's MAC segments for those items (as the server computes them)."""
    upload = _upload_of(scheme)
    return [upload.mac_segment(*upload.parse_item(item, f"item {i}")) for i, item in enumerate(items)]


def _padding() -> str:
    return base64.b64encode(os.urandom(64 + os.urandom(1)[0] % 256)).decode()


def gaen_publish_request(
    keys: Sequence[TemporaryExposureKey],
    *,
    certificate: str,
    hmac_key: str,
    authority: str,
    risk: int | None = None,
    symptom_onset_interval: int | None = None,
    revision_token: str | None = None,
    traveler: bool = False,
) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for k in keys:
        item: dict[str, Any] = {
            "key": base64.b64encode(k.key_data).decode(),
            "rollingStartNumber": k.rolling_start_interval_number,
            "rollingPeriod": k.rolling_period,
        }
        if risk is not None:
            item["transmissionRisk"] = risk
        items.append(item)
    document: dict[str, Any] = {
        "temporaryExposureKeys": items,
        "healthAuthorityID": authority,
        "verificationPayload": certificate,
        "hmacKey": hmac_key,
        "traveler": traveler,
        "padding": _padding(),
    }
    if symptom_onset_interval is not None:
        document["symptomOnsetInterval"] = symptom_onset_interval
    if revision_token:
        document["revisionToken"] = revision_token
    return document


def certificate_issuer(certificate: str) -> str:
    """The ``iss`` claim, read without checking (the server checks): the default healthAuthorityID."""
    try:
        payload = certificate.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        issuer = claims["iss"]
    except (IndexError, ValueError, KeyError, TypeError):
        raise KeyServerError("the certificate is not a JWT with an iss claim; pass --authority") from None
    if not isinstance(issuer, str):
        raise KeyServerError("the certificate's iss claim is not a string; pass --authority")
    return issuer


def _check_url(url: str) -> None:
    if urlsplit(url).scheme not in ("http", "https"):
        raise KeyServerError(f"{url}: only http and https URLs are supported")


def post_json(url: str, document: Any, *, timeout: float = TIMEOUT_SECONDS) -> tuple[int, dict[str, Any]]:
    """POST JSON; returns (status, JSON body) for any HTTP status; a network failure raises."""
    _check_url(url)
    request = urllib.request.Request(
        url, json.dumps(document).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        raise KeyServerError(f"cannot reach {url}: {getattr(error, 'reason', error)}") from None
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = {"error": body[:200].decode(errors="replace")}
    return status, parsed if isinstance(parsed, dict) else {"body": parsed}


def _get(url: str, timeout: float = TIMEOUT_SECONDS) -> bytes:
    _check_url(url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as error:
        raise KeyServerError(f"{url}: HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        raise KeyServerError(f"cannot reach {url}: {getattr(error, 'reason', error)}") from None


def download_key_files(specs: Sequence[str], directory: Path) -> list[str]:
    """Local paths for ``specs``: files stay as they are; an ``.../index.txt`` URL becomes every file it
    lists (bare names resolved against ``exports/`` beside it); any other URL is one key file."""
    paths: list[str] = []
    for spec in specs:
        if not spec.startswith(("http://", "https://")):
            paths.append(spec)
            continue
        if urlsplit(spec).path.endswith("/index.txt"):
            names = [line.strip() for line in _get(spec).decode().splitlines() if line.strip()]
            for name in names:
                if not EXPORT_NAME.match(name):
                    raise KeyServerError(f"{spec} lists {name!r}, not an export file name")
                target = directory / name
                target.write_bytes(_get(urljoin(spec, "exports/" + name)))
                paths.append(str(target))
            continue
        target = directory / f"download-{len(paths):05d}{Path(urlsplit(spec).path).suffix or '.bin'}"
        target.write_bytes(_get(spec))
        paths.append(str(target))
    return paths
