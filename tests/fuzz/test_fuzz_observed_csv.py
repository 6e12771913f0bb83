"""Fuzz: the observed-ID CSV of `match --observed` (a `log export` file, mutated) -> read_observed_csv."""

from __future__ import annotations

from fuzzing import fuzz_file_reader, inputs

from proximity.cli.match import read_observed_csv

SEEDS = [
    b"id,time,rssi,metadata,scheme\n"
    + b"".join(
        b"%s,%d,-%d,%s,gaen\n" % (bytes([i]).hex().encode() * 16, 1596844800 + i, 60 + i, b"400c0000")
        for i in range(6)
    )
    + b"".join(b"%s,%d,,,bluezone\n" % (bytes([i]).hex().encode() * 12, 1596844800 + i) for i in range(3)),
    b"\xef\xbb\xbfid,time\r\n" + b"ab" * 16 + b",2020-08-08T06:00:00Z\r\n",
]


def test_fuzz_observed_csv() -> None:
    fuzz_file_reader("observed-csv", inputs(SEEDS), lambda path: read_observed_csv(str(path)))
