"""Print a day of IDs for both schemes, starting from published keys (Google's TEK, a real Bluezone key)."""

from __future__ import annotations

from proximity import BLUEZONE, GAEN, BluezoneBaseKey, TemporaryExposureKey
from proximity.times import format_utc

# The official GAEN v1.2 test key, and a Bluezone base key from a real capture.
TEK = TemporaryExposureKey(
    bytes.fromhex("75c734c6dd1a782de7a965da5eb93125"), rolling_start_interval_number=2642976
)
BASE = BluezoneBaseKey(
    bytes.fromhex("4C5224B397F8AB3896781D5AA0F3119F280513F1B592CA280EBDED6357E21084"), 1596844800
)


def main() -> None:
    rpis = GAEN.ids_of_key(TEK)  # 144 RPIs, one AES call
    print(f"GAEN: {len(rpis)} RPIs from {format_utc(rpis.starts[0])}")
    for rpi in list(rpis)[:3] + list(rpis)[-1:]:
        print(f"  {format_utc(rpi.start)}  {rpi.hex}")
    record = BASE.record(BASE.base_day)  # the daily-key record a diagnosed user would publish
    ids = BLUEZONE.ids_of_key(record)
    day = format_utc(record.time_start)[:10]
    print(f"Bluezone: {len(ids)} IDs on {day}, from the published record {record.to_record()}")
    for slot in (0, 23, 24, 95):
        print(f"  {format_utc(ids[slot].start)}  {ids[slot].hex.upper()}")


if __name__ == "__main__":
    main()
