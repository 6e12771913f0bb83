"""Build the package's calibration table from the published lists copied into data/calibration/.

Rows: Google's EN calibration list of 2020-08-12 (every Android model), each replaced WHOLE by its row
in the confidence-3 part of the 2020-12-14 list where that list has one (Google's later measurement of
that model; 87 models appear only there), so each row carries one list's values and its date, never a
mix. iPhones are GAEN's reference: RSSI correction 0. Google gives no iPhone TX; ``--iphone-tx``
chooses it: ``fleet`` (the Android fleet value) or ``tousanticovid`` (TousAntiCovid's per-model TX
factor on GAEN's scale: Google's tx is TousAntiCovid's + 2 dB, the median over the 10,814 Android
models both lists hold). The fleet value is the median of the 2020-08-12 list's ``tx`` and
``rssi_correction``.

    python scripts/build_calibration.py [--iphone-tx fleet|tousanticovid] [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "data" / "calibration"
OUT = ROOT / "src" / "proximity" / "estimation" / "data" / "calibration.csv"
COLUMNS = ("oem", "device", "model", "rssi_correction", "tx", "calibration_confidence", "list")

# iOS hardware identifiers (TousAntiCovid's keys) and their marketing names; the recordings' names map
# to these through the package's alias file.
IPHONES = {
    "iPhone6,1": "iPhone 5s", "iPhone6,2": "iPhone 5s",
    "iPhone7,2": "iPhone 6", "iPhone7,1": "iPhone 6 Plus",
    "iPhone8,1": "iPhone 6s", "iPhone8,2": "iPhone 6s Plus", "iPhone8,4": "iPhone SE",
    "iPhone9,1": "iPhone 7", "iPhone9,3": "iPhone 7",
    "iPhone9,2": "iPhone 7 Plus", "iPhone9,4": "iPhone 7 Plus",
    "iPhone10,1": "iPhone 8", "iPhone10,4": "iPhone 8", "iPhone10,2": "iPhone 8 Plus",
    "iPhone10,5": "iPhone 8 Plus", "iPhone10,3": "iPhone X", "iPhone10,6": "iPhone X",
    "iPhone11,2": "iPhone XS", "iPhone11,4": "iPhone XS Max", "iPhone11,6": "iPhone XS Max",
    "iPhone11,8": "iPhone XR", "iPhone12,1": "iPhone 11", "iPhone12,3": "iPhone 11 Pro",
    "iPhone12,5": "iPhone 11 Pro Max", "iPhone12,8": "iPhone SE (2nd generation)",
}  # fmt: skip
TOUSANTICOVID_TO_GAEN_DB = 2.0


def _read(name: str) -> list[dict[str, str]]:
    with (SOURCES / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def build(iphone_tx: str) -> list[dict[str, str]]:
    august = _read("en-calibration-2020-08-12.csv")
    december = {
        (r["oem"], r["device"], r["model"]): r for r in _read("en-calibration-2020-12-14-high-confidence.csv")
    }
    fleet_tx = statistics.median(float(r["tx"]) for r in august)
    rows = []
    for row in august:
        newer = december.pop((row["oem"], row["device"], row["model"]), None)
        rows.append({**(newer or row), "list": "2020-12-14" if newer else "2020-08-12"})
    rows += [{**r, "list": "2020-12-14"} for r in december.values()]
    tac = {
        r["device_handset_model"]: float(r["tx_rss_correction_factor"])
        for r in _read("tousanticovid-calibration-ble-v2.csv")
    }
    for hardware, name in IPHONES.items():
        if iphone_tx == "fleet":
            tx, source = fleet_tx, "fleet"
        else:
            tx, source = tac[hardware] + TOUSANTICOVID_TO_GAEN_DB, "tousanticovid-v2"
        rows.append({"oem": "apple", "device": hardware, "model": name, "rssi_correction": "0",
                     "tx": f"{tx:g}", "calibration_confidence": "0", "list": source})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iphone-tx", choices=("fleet", "tousanticovid"), default="tousanticovid")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = build(args.iphone_tx)
    with args.out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
