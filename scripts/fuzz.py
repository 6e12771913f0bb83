"""``make fuzz``: every fuzz harness, long, each in its own process; then the SIGKILL-during-ingest tests.

Usage: ``python scripts/fuzz.py [--examples N] [--kills K] [--jobs J] [--only NAME]``. ``N`` examples per
harness (default 100,000, or $FUZZ_EXAMPLES), ``K`` kills per SIGKILL test (default 100, or
$FUZZ_KILLS). Harnesses run ``J`` at a time (default 1: the machine is shared). The table at the end
gives, per input path: examples run, typed refusals, escapes, hangs, peak memory, time; the raw
lines are in build/fuzz/report.jsonl. Exit status is non-zero if any harness or kill test failed.
Ctrl-C stops early: each running harness still reports the examples it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESSES = sorted((ROOT / "tests" / "fuzz").glob("test_fuzz_*.py"))
KILL_TESTS = [
    "tests/test_log_crash.py::test_sigkill_mid_ingest_loses_no_committed_batch",
    "tests/test_log_crash.py::test_sigkill_mid_replay_loses_no_committed_row",
    "tests/test_log_crash.py::test_sigkill_mid_node_write_loses_no_committed_batch",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=int(os.environ.get("FUZZ_EXAMPLES", "100000")))
    parser.add_argument("--kills", type=int, default=int(os.environ.get("FUZZ_KILLS", "100")))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--only", help="run only harnesses whose file name contains this")
    args = parser.parse_args()
    out = ROOT / "build" / "fuzz"
    out.mkdir(parents=True, exist_ok=True)
    report = out / "report.jsonl"
    report.unlink(missing_ok=True)
    env = {**os.environ, "FUZZ_EXAMPLES": str(args.examples), "FUZZ_REPORT": str(report)}
    env["FUZZ_KILLS"] = str(args.kills)
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]
    chosen = [h for h in HARNESSES if not args.only or args.only in h.name]
    failed = []
    running: list[tuple[str, subprocess.Popen[bytes]]] = []
    started = time.monotonic()
    try:
        for harness in chosen + ([] if args.only else [None]):
            targets = [str(harness)] if harness is not None else KILL_TESTS
            name = harness.name if harness is not None else "SIGKILL tests"
            while len(running) >= args.jobs:
                failed += _reap(running)
            print(f"fuzz: running {name} ...", flush=True)
            running.append((name, subprocess.Popen([*pytest, *targets], cwd=ROOT, env=env)))
        while running:
            failed += _reap(running)
    except KeyboardInterrupt:  # Ctrl-C reached the harnesses too: each reports what it ran so far
        for name, process in running:
            process.wait()
            failed.append(f"{name} (interrupted)")
    _table(report)
    print(f"fuzz: done in {time.monotonic() - started:.0f} s; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


def _reap(running: list[tuple[str, subprocess.Popen[bytes]]]) -> list[str]:
    name, process = running.pop(0)
    return [] if process.wait() == 0 else [name]


def _table(report: Path) -> None:
    if not report.exists():
        return
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    header = ("input path", "examples", "refused", "escapes", "hangs", "peak MB", "seconds")
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    keys = ("harness", "examples", "refused", "escapes", "hangs", "peak_mb", "seconds")
    for r in rows:
        cells = [r[key] for key in keys]
        print("| " + " | ".join(str(c) for c in cells) + " |")
        for kind, sample in r.get("escape_samples", {}).items():
            print(f"|   escape {kind}: {sample} |")
    for line in (ROOT / "build" / "fuzz").glob("kills-*.json"):
        print(f"SIGKILL {line.stem}: {line.read_text().strip()}")


if __name__ == "__main__":
    sys.exit(main())
