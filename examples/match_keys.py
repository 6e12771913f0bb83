"""Publish keys from a fresh key ring, fake what a nearby phone heard, and match the two.

A diagnosed user publishes a signed GAEN export and a Bluezone daily-key record; another phone's
observations (some of the user's IDs among strangers') are matched against them, as a health app
would after downloading the day's keys. Runs offline in a second or two; takes no arguments.
"""

from __future__ import annotations

import numpy as np

from proximity import KeyRing, Observations, Sighting
from proximity.keyfiles import TrustedKey, generate_signing_key, parse_export_zip, parse_records, write_export
from proximity.keyfiles.bluezone_json import dump_records
from proximity.matching import DiagnosisKey, ReportType, group_by_day, match_bluezone, match_gaen
from proximity.times import format_utc

INSTALL = 1_795_132_800.0  # 2026-11-20T00:00:00Z: every time is explicit, nothing reads the clock
MET_AT = INSTALL + 9 * 3600  # the two phones met at 09:00 UTC for 15 minutes


def main() -> None:
    rng = np.random.default_rng(2026)
    ring = KeyRing.create(INSTALL, random_bytes=rng.bytes)

    # The diagnosed user publishes: a signed GAEN export.zip and a Bluezone JSON record.
    signer = generate_signing_key()
    keys = [DiagnosisKey(tek, 0, ReportType.CONFIRMED_TEST) for tek in ring.gaen_keys]
    export_zip = write_export(
        keys,
        signer,
        key_id="310",
        start_timestamp=int(INSTALL),
        end_timestamp=int(INSTALL) + 86400,
        pad_to=100,
    )
    record_json = dump_records([ring.bluezone_key.record(INSTALL, 1)])
    print(f"published a GAEN export of {len(export_zip)} bytes (1 real key among 100) and 1 Bluezone record")

    # What the other phone heard: the user's adverts every minute while they met, plus strangers.
    sightings: list[Sighting] = []
    for minute in range(15):
        at = MET_AT + 60 * minute
        for scheme in ("gaen", "bluezone"):
            broadcast = ring.broadcast_at(scheme, at)
            aem = broadcast.payload[16:] if scheme == "gaen" else None
            sightings.append(Sighting(scheme, broadcast.id.value, at, int(rng.integers(-85, -55)), aem))
    for _ in range(1000):
        sightings.append(Sighting("gaen", rng.bytes(16), MET_AT, -90, rng.bytes(4)))
        sightings.append(Sighting("bluezone", rng.bytes(12), MET_AT, -90))

    # The phone downloads, verifies and matches.
    export = parse_export_zip(export_zip, [TrustedKey(signer.public_key(), "310")])
    gaen = match_gaen(export.keys, Observations.from_sightings("gaen", sightings), workers=1)
    bluezone = match_bluezone(
        parse_records(record_json), Observations.from_sightings("bluezone", sightings), workers=1
    )

    for day in group_by_day(gaen + bluezone):
        m = day.match
        tx = "unknown" if np.isnan(m.tx_power).all() else f"{int(np.nanmax(m.tx_power))} dBm"
        seen = f"{day.sightings} sightings of {len(day.unique_ids)} IDs"
        print(
            f"{m.scheme:8} key {m.key_data.hex()[:16]}... {seen}, {format_utc(day.first_seen)} to "
            f"{format_utc(day.last_seen)}, TX power {tx}, {'verified' if m.verified else 'unverified'}"
        )


if __name__ == "__main__":
    main()
