"""Daily-key schemes: every scheme whose record has an ``upload`` (a
:class:`~proximity.schemes.registry.DailyKeyUpload`, kept with its key-file format) is one registration.

A scheme whose diagnosed users publish day keys registers a :class:`DailyKeyScheme`: how an uploaded
item is read, the segment its certificate's ``tekmac`` covers, and the records document phones
download. The server then offers ``POST /<name>/v1/publish`` (same certificate check as GAEN) and
``GET /<name>/v1/records.json`` for it, stored in one generic table. Each stored day ends at the end of
its day, the last one at upload time. The hash chains run forward, so a published day key reveals
every later ID: the app must start new keys after uploading.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from proximity.schemes.registry import DailyKeyUpload, scheme_records
from proximity.server.certificates import CertificateClaims
from proximity.server.config import ServerConfig
from proximity.server.db import Database
from proximity.server.publish import (
    PublishEndpoint,
    PublishResult,
    authenticate,
    bad_request,
    check_mac,
    padding,
    request_items,
)
from proximity.times import SECONDS_PER_DAY

__all__ = [
    "DAILY_KEY_SCHEMES",
    "DailyKey",
    "DailyKeyScheme",
    "DailyKeyService",
    "daily_key_scheme",
    "register_daily_key_scheme",
]


@dataclass(frozen=True, slots=True)
class DailyKey:
    """One published day: the day's key, its UTC day, and a scheme parameter (Bluezone: IDs per day)."""

    key: bytes
    time_start: int
    time_end: int
    param: int


@dataclass(frozen=True, slots=True)
class DailyKeyScheme:
    name: str
    items_field: str
    parse_item: Callable[[Mapping[str, Any], str], DailyKey]  # raises PublishError (400) when malformed
    mac_segment: Callable[[DailyKey], str]
    records_document: Callable[[Sequence[DailyKey]], bytes]
    max_items: int = 30


DAILY_KEY_SCHEMES: dict[str, DailyKeyScheme] = {}


def register_daily_key_scheme(scheme: DailyKeyScheme) -> None:
    if scheme.name in DAILY_KEY_SCHEMES or scheme.name == "v1":
        raise ValueError(f"daily-key scheme {scheme.name!r} is already registered")
    DAILY_KEY_SCHEMES[scheme.name] = scheme


def daily_key_scheme(name: str, upload: DailyKeyUpload) -> DailyKeyScheme:
    """The server's side of a scheme's :class:`~proximity.schemes.registry.DailyKeyUpload`."""

    def parse_item(item: Mapping[str, Any], where: str) -> DailyKey:
        try:
            key, start, param = upload.parse_item(item, where)
        except ValueError as error:
            raise bad_request(str(error)) from None
        return DailyKey(key, start, start + SECONDS_PER_DAY, param)

    def mac_segment(day: DailyKey) -> str:
        return upload.mac_segment(day.key, day.time_start, day.param)

    def records_document(days: Sequence[DailyKey]) -> bytes:
        return upload.document([(d.key, d.time_start, d.time_end, d.param) for d in days])

    return DailyKeyScheme(name, upload.field, parse_item, mac_segment, records_document, upload.max_items)


for _record in scheme_records():
    if (_upload := _record.load_upload()) is not None:
        register_daily_key_scheme(daily_key_scheme(_record.name, _upload))


class DailyKeyService(PublishEndpoint):
    """Publish and serve one registered daily-key scheme."""

    def __init__(self, scheme: DailyKeyScheme, config: ServerConfig, database: Database) -> None:
        self.scheme = scheme
        self.config = config
        self.database = database

    def _publish(self, document: object, now: float) -> PublishResult:
        scheme = self.scheme
        document, items = request_items(document, scheme.items_field, scheme.max_items)
        days = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise bad_request(f"{scheme.items_field}[{i}] is not an object")
            days.append(scheme.parse_item(item, f"{scheme.items_field}[{i}]"))
        if len({d.time_start for d in days}) != len(days):
            raise bad_request("two daily keys for the same day")
        claims: CertificateClaims
        claims, hmac_key = authenticate(document, self.config, now)
        check_mac(claims, hmac_key, [[scheme.mac_segment(d) for d in days]])
        at = int(now)
        oldest = at - self.config.max_age_days * SECONDS_PER_DAY
        warnings = []
        accepted = []
        for d in days:
            if d.time_start >= at:
                warnings.append(f"day {d.time_start} is in the future")
            elif d.time_end <= oldest:
                warnings.append(f"day {d.time_start} is older than {self.config.max_age_days} days")
            else:
                accepted.append(DailyKey(d.key, d.time_start, min(d.time_end, at), d.param))
        if not accepted:
            raise bad_request("no daily key is inside the accepted window: " + "; ".join(warnings))
        inserted = 0
        if claims.report_type != "negative":
            with self.database.transaction() as tx:
                for d in accepted:
                    inserted += tx.rowcount(
                        "INSERT INTO daily_keys (scheme, key, time_start, time_end, param, health_authority, "
                        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (
                            scheme.name,
                            d.key,
                            d.time_start,
                            d.time_end,
                            d.param,
                            document["healthAuthorityID"],
                            at,
                        ),
                    )
        body: dict[str, Any] = {"insertedExposures": inserted, "padding": padding()}
        if warnings:
            body.update(code="partial_failure", error="; ".join(warnings), warnings=warnings)
        return PublishResult(200, body)

    def records(self) -> bytes:
        with self.database.transaction(write=False) as tx:
            rows = tx.fetchall(
                "SELECT key, time_start, time_end, param FROM daily_keys WHERE scheme = ? "
                "ORDER BY created_at, time_start, key",
                (self.scheme.name,),
            )
        return self.scheme.records_document([DailyKey(bytes(r[0]), r[1], r[2], r[3]) for r in rows])
