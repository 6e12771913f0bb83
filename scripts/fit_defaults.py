"""Fit the shipped defaults on all the shared recordings and write src/proximity/estimation/data/fitted.json.

Choosing the default, nested: the candidate (evaluation.CANDIDATES) with the least equal-weight
leave-one-dataset-out nDCF at 1.8 m over these files is the procedure's choice; the same procedure run
without each file in turn (nested leave-one-dataset-out) says what that choice is worth on a file it
never saw. The procedure's choice ships only if its nested held-out nDCF at 1.8 m is below the
mean-attenuation baseline's held-out one; otherwise the default is mean attenuation. The session
attenuation thresholds (mean, median, max) are then fitted on all the files, each at every TC4TL
distance (least nDCF, as the presets' are). Deterministic: the same files give the same bytes (a
test checks the committed file).

    python scripts/fit_defaults.py [--out PATH] FILE.csv.gz ...
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from proximity.cli.evaluate import read_recordings
from proximity.estimation.evaluation import (
    CANDIDATES,
    NESTED,
    SELECTION_DISTANCE,
    attenuation_thresholds,
    labelled,
    leave_one_dataset_out,
)

BASELINE = "mean-attenuation"
OUT = Path(__file__).resolve().parent.parent / "src" / "proximity" / "estimation" / "data" / "fitted.json"


def fit(paths: list[Path]) -> dict[str, object]:
    files = {}
    for path in paths:
        print(f"reading {path} ...", file=sys.stderr)
        sessions = read_recordings(str(path))
        files[sessions[0].dataset] = sessions
    print(f"(nested) leave-one-dataset-out over {', '.join(CANDIDATES)} ...", file=sys.stderr)
    scored = {f: sessions for f, sessions in files.items() if labelled(sessions, SELECTION_DISTANCE)}
    fit_only = {f: sessions for f, sessions in files.items() if f not in scored}
    rows = leave_one_dataset_out(scored, fit_only, CANDIDATES, candidates=CANDIDATES)
    pooled = {r["name"]: r for r in rows if r["file"] == "pooled"}
    # the procedure on all the files: the candidate with the least pooled held-out nDCF (ties: the simpler)
    figures = {name: pooled[name][f"ndcf_{SELECTION_DISTANCE}"] for name in CANDIDATES}
    best = min(CANDIDATES, key=lambda n: (figures[n], CANDIDATES.index(n)))
    nested = pooled[NESTED][f"ndcf_{SELECTION_DISTANCE}"]
    baseline = figures[BASELINE]
    default = best if nested < baseline else BASELINE
    everything = [s for sessions in files.values() for s in sessions]
    thresholds = {
        name.split("-")[0]: {str(d): round(t, 4) for d, t in by_distance.items()}
        for name, by_distance in attenuation_thresholds(everything).items()
    }
    return {
        "about": "written by scripts/fit_defaults.py (make fit); attenuation on GAEN's scale, dB",
        "files": sorted(files),
        "sessions": len(everything),
        "selection": {
            "criterion": "least equal-weight leave-one-dataset-out nDCF at 1.8 m",
            "held_out_ndcf_1.8": {k: round(v, 4) for k, v in figures.items()},
            "procedure_choice": best,
            "nested_choices": pooled[NESTED]["chosen"],
            "nested_held_out_ndcf_1.8": round(nested, 4),
            "baseline_held_out_ndcf_1.8": round(baseline, 4),
            "rule": "ship the procedure's choice only if its nested held-out nDCF beats mean attenuation's",
        },
        "default_estimator": default,
        "thresholds_db": thresholds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    document = fit(args.files)
    args.out.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"default estimator: {document['default_estimator']}; wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
