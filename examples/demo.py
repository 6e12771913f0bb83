"""`make demo`: the whole data flow on embedded defaults, through the real command line.

A day in the life: you and a colleague install the app; your phone logs a real btsnoop capture and
a 25-minute meeting with the colleague; the colleague tests positive and a health authority publishes
their keys as a signed export; your phone matches it and judges the exposure. Then the estimators are
scored on real RSSI recordings, and a classroom is simulated on the same core.

Everything runs in a temporary folder (your own key ring is never touched), except the simulation's
results table and plots, which are kept in build/demo/. The meeting is
synthesised from the colleague's real advertisements (an advert a second, RSSI drawn around -62 dBm),
written in the JSON Lines format that `proximity scan --record` writes, and replayed through bleak.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from proximity.ble.recording import RecordedAdvert, write_jsonl
from proximity.cli.main import main as proximity
from proximity.keyring import load_keyring
from proximity.payloads.adverts import GAEN_SERVICE_UUID
from proximity.times import SECONDS_PER_DAY, format_utc, now, utc_midnight

REPO = Path(__file__).resolve().parent.parent
CAPTURE = REPO / "tests" / "fixtures" / "btsnoop" / "run4_two_nodes_monitor_2001.btsnoop"
RECORDINGS = REPO / "data" / "mit-matrix-rssi.csv.gz"
CLASSROOM = REPO / "simulations" / "classroom.toml"
PLOTS = REPO / "build" / "demo"  # kept after the demo: results table and plots of the simulation
MEETING_MINUTES = 25


def step(title: str, *argv: str) -> None:
    print(f"\n$ proximity {' '.join(argv)}    # {title}", flush=True)
    if proximity(list(argv)) != 0:
        sys.exit(f"demo step failed: {title}")


def refused(title: str, *argv: str) -> None:
    """A step that must be refused with one line (bad input, or a file that is not the command's own)."""
    print(f"\n$ proximity {' '.join(argv)}    # {title}", flush=True)
    if proximity(list(argv)) == 0:
        sys.exit(f"demo step should have been refused: {title}")


def record_meeting(colleague_ring: Path, start: float, out: Path) -> int:
    """What your phone heard of the colleague's phone: one advert a second for the meeting."""
    ring = load_keyring(colleague_ring)
    rng = np.random.default_rng(2020)
    offset = rng.normal(0.0, 4.0)  # this encounter's own carriage/body offset
    adverts = []
    for second in range(MEETING_MINUTES * 60):
        at = start + second
        sent = ring.broadcast_at("gaen", at)
        rssi = round(-62.0 + offset + float(rng.normal(0.0, 6.0)))
        address = "5A:" + sent.id.value[:5].hex(":").upper()  # a random address, rotated with the RPI
        adverts.append(
            RecordedAdvert(
                time=at,
                address=address,
                rssi=max(rssi, -100),
                service_data={GAEN_SERVICE_UUID: sent.payload},
                service_uuids=(GAEN_SERVICE_UUID,),
            )
        )
    with out.open("w") as handle:
        return write_jsonl(adverts, handle)


def main() -> None:
    day = utc_midnight(now()) - SECONDS_PER_DAY  # yesterday
    meeting = day + 10 * 3600
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        you, colleague = str(tmp / "you.json"), str(tmp / "colleague.json")
        log, recording = str(tmp / "encounters.sqlite3"), tmp / "meeting.jsonl"
        signing, export = str(tmp / "health-authority.pem"), str(tmp / "export.zip")
        print(f"You and a colleague installed the app at {format_utc(day)} (yesterday, UTC).")
        step("create your phone's keys", "keys", "init", "--keyring", you, "--at", str(day))
        step("and your colleague's", "keys", "init", "--keyring", colleague, "--at", str(day))
        step(
            "GAEN: your phone broadcasts a new RPI every 10 minutes (144 a day; the first 6)",
            *("ids", "--scheme", "gaen", "--keyring", you, "--at", str(day), "--count", "6"),
        )
        step(
            "Bluezone: a new 12-byte ID every 15 minutes (96 a day; the first 4)",
            *("ids", "--scheme", "bluezone", "--keyring", you, "--at", str(day), "--count", "4"),
        )
        step(
            "a real capture of two Linux nodes advertising (btmon), into your encounter log",
            *("replay", str(CAPTURE), "--db", log),
        )
        heard = record_meeting(Path(colleague), meeting, recording)
        print(
            f"\n(recorded {heard} adverts of your colleague's phone during a {MEETING_MINUTES}-minute meeting"
            f" from {format_utc(meeting)}, as `proximity scan --record` writes them)"
        )
        step("the meeting, replayed through bleak into the same log", "replay", str(recording), "--db", log)
        step(
            "replayed again, it adds nothing: the log knows each capture",
            "replay",
            str(recording),
            "--db",
            log,
        )
        step("what your log holds", "log", "stats", "--db", log)
        step("a health authority's signing key", "keys", "signing-key", "--out", signing)
        step(
            "your colleague tests positive: their keys, published as a signed export.zip",
            *("keys", "export", "--scheme", "gaen", "--keyring", colleague, "--signing-key", signing),
            *("--out", export),
        )
        step(
            "your phone verifies the export, matches it against its log and judges the exposure",
            *("match", "--keys", export, "--pubkey", signing.replace(".pem", ".pub.pem"), "--log", log),
        )
        step("the exposure found is kept in your log", "log", "stats", "--db", log)
        notes = tmp / "notes.txt"
        notes.write_text("not a key ring\n")
        refused(
            "a file that is not a key ring is never wiped", "keys", "wipe", "--keyring", str(notes), "--yes"
        )
        seen = tmp / "seen.csv"
        seen.write_text(f"id,time,rssi\n{'ab' * 16},{meeting},127\n")  # 127 = HCI's "no RSSI"
        refused("bad input gets one line naming the row and field", "match", "--keys", export, "--no-verify",
                "--observed", str(seen))  # fmt: skip
        step(
            "how well each estimator tells near from far on real recordings (MIT; each carriage judged by "
            "a fit on the other 7), and whether the differences are real (bootstrap intervals)",
            *("evaluate", str(RECORDINGS), "--cross-validate"),
        )
        step(
            "a classroom lesson simulated on the real core: who gets traced at 30/60/90 % adoption",
            *("simulate", str(CLASSROOM), "--estimator", "probabilistic,cwa", "--scheduler", "inline"),
            *("--out", str(PLOTS)),
        )
        print(f"\nplots: {PLOTS / 'fraction_traced.png'} (traced vs adoption), {PLOTS / 'roc.png'} (ROC)")


if __name__ == "__main__":
    main()
