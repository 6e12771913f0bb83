"""Daily-key schemes (Bluezone's daily keys, DP-3T's (SK_t, day) list): one registration each.

A scheme whose diagnosed users publish one key per day registers a :class:`DailyKeyScheme`: how an
uploaded item is read, the segment its certificate's ``tekmac`` covers, and the records document phones
download. The server then offers ``POST /<name>/v1/publish`` (same certificate check as GAEN) and
``GET /<name>/v1/records.json`` for it, stored in one generic table.

Bluezone: the app uploads the daily keys of the days since the first infectious day, one item per day
(``{"daily_key": hex, "time_start": UTC midnight, "max": IDs per day}``), never its base key. Each
record ends at the end of its day, the last one at upload time. The hash chain runs forward, so a
published daily key reveals every later ID: the app must start a new base key after uploading.

DP-3T: the app uploads one item, the day key SK_t of its first contagious day, as the DP-3T backend took
it (``{"key": base64, "keyDate": UTC midnight in unix ms}``); phones download the exposee list
(:mod:`proximity.keyfiles.dp3t_json`) and chain each key forward. The item's record ends at upload time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from proximity.errors import ProximityError
from proximity.keyfiles.bluezone_json import dump_records
from proximity.keyfiles.dp3t_json import dump_exposees, parse_exposees
from proximity.schemes.bluezone import BLUEZONE, KEY_LENGTH, BluezoneDailyKey
from proximity.schemes.dp3t import DP3T, Dp3tDayKey
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
    "bluezone_mac_segment",
    "dp3t_mac_segment",
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


def _bluezone_item(item: Mapping[str, Any], where: str) -> DailyKey:
    key_hex, start, ids = item.get("daily_key"), item.get("time_start"), item.get("max")
    if not isinstance(key_hex, str) or not isinstance(start, int) or not isinstance(ids, int):
        raise bad_request(f"{where} must be {{daily_key: hex, time_start: int, max: int}}")
    try:
        key = bytes.fromhex(key_hex)
        BluezoneDailyKey(key, start, start + SECONDS_PER_DAY, ids)  # the scheme's own checks
    except (ValueError, ProximityError) as error:
        raise bad_request(f"{where}: {error}") from None
    if len(key) != KEY_LENGTH:
        raise bad_request(f"{where}: a daily key is {KEY_LENGTH} bytes")
    return DailyKey(key, start, start + SECONDS_PER_DAY, ids)


def bluezone_mac_segment(day: DailyKey) -> str:
    return f"{day.key.hex()}.{day.time_start}.{day.param}"


def _bluezone_records(days: Sequence[DailyKey]) -> bytes:
    return dump_records(BluezoneDailyKey(d.key, d.time_start, d.time_end, d.param) for d in days).encode()


def _dp3t_item(item: Mapping[str, Any], where: str) -> DailyKey:
    try:  # the exposee list's own entry checks (base64 of 32 bytes, keyDate a UTC midnight in ms)
        (key,) = parse_exposees(json.dumps({"exposed": [dict(item)]}), where)
    except (ProximityError, TypeError, ValueError) as error:
        raise bad_request(f"{where}: {error}") from None
    return DailyKey(key.key, key.day, key.day + SECONDS_PER_DAY, 0)


def dp3t_mac_segment(day: DailyKey) -> str:
    return f"{day.key.hex()}.{day.time_start}"


def _dp3t_records(days: Sequence[DailyKey]) -> bytes:
    return dump_exposees(Dp3tDayKey(d.key, d.time_start) for d in days).encode()


register_daily_key_scheme(
    DailyKeyScheme(BLUEZONE.name, "dailyKeys", _bluezone_item, bluezone_mac_segment, _bluezone_records, 15)
)
register_daily_key_scheme(
    DailyKeyScheme(DP3T.name, "exposed", _dp3t_item, dp3t_mac_segment, _dp3t_records, 1)
)


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
