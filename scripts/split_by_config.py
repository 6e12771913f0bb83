"""Split recordings by carriage configuration: configs in name order go alternately to A and B.

usage: python scripts/split_by_config.py IN.csv.gz OUT_A.csv.gz OUT_B.csv.gz
Derivatives of the MIT Matrix Data keep its licence (CC BY 4.0) and attribution (data/README.md).
"""

from __future__ import annotations

import csv
import gzip
import sys


def main(source: str, out_a: str, out_b: str) -> None:
    with gzip.open(source, "rt", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    column = header.index("config")
    configs = sorted({row[column] for row in rows})
    first = set(configs[::2])
    for path, keep in ((out_a, True), (out_b, False)):
        with gzip.open(path, "wt", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(row for row in rows if (row[column] in first) == keep)
        chosen = [c for c in configs if (c in first) == keep]
        print(f"{path}: {', '.join(chosen)}", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:4])
