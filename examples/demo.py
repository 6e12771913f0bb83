"""`make demo`: the whole data flow on embedded defaults, through the real command line.

A day in the life: you and a colleague install the app; your phone logs a real btsnoop capture and
a 25-minute meeting with the colleague; the colleague tests positive and a health authority publishes
their keys as a signed export; your phone matches it and judges the exposure. The same loop then runs
through a health authority's key server on localhost: the colleague's phone uploads its keys with a
verification certificate, the server batches and signs them, and your phone downloads index.txt and
matches. Then the estimators are scored on real RSSI recordings, a classroom is simulated on the
same core, and a small Quang Ninh district's epidemic is run on Covasim with the app's measured reach.

The lesson is also run split in two shards on two Dask workers, with byte-identical results.
Everything runs in a temporary folder (your own key ring is never touched), except the simulation's
results table and plots, which are kept in build/demo/. The meeting is
synthesised from the colleague's real advertisements (an advert a second, RSSI drawn around -62 dBm),
written in the JSON Lines format that `proximity scan --record` writes, and replayed through bleak.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from proximity.ble.recording import RecordedAdvert, write_jsonl
from proximity.cli.main import main as proximity
from proximity.keyring import load_keyring
from proximity.times import SECONDS_PER_DAY, format_utc, now, utc_midnight

REPO = Path(__file__).resolve().parent.parent
CAPTURE = REPO / "tests" / "fixtures" / "btsnoop" / "run4_two_nodes_monitor_2001.btsnoop"
RECORDINGS = [REPO / "data" / f"{name}.csv.gz" for name in ("mit-matrix-rssi", "range_angle", "kri_anechoic")]
CLASSROOM = REPO / "simulations" / "classroom.toml"
DP3T_CLASSROOM = REPO / "simulations" / "dp3t-classroom.toml"
FAMILY_SHOP = REPO / "simulations" / "family-shop.toml"
DISTRICT = REPO / "simulations" / "quang-ninh-district.toml"
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


def record_meeting(colleague_ring: Path, start: float, out: Path, scheme: str = "gaen") -> int:
    """What your phone heard of the colleague's phone: one advert a second for the meeting."""
    ring = load_keyring(colleague_ring)
    rng = np.random.default_rng(2020)
    offset = rng.normal(0.0, 4.0)  # this encounter's own carriage/body offset
    adverts = []
    for second in range(MEETING_MINUTES * 60):
        at = start + second
        sent = ring.broadcast_at(scheme, at)
        on_air = sent.advert.to_bluez()
        rssi = round(-62.0 + offset + float(rng.normal(0.0, 6.0)))
        address = "5A:" + sent.id.value[:5].hex(":").upper()  # a random address, rotated with the RPI
        adverts.append(
            RecordedAdvert(
                time=at,
                address=address,
                rssi=max(rssi, -100),
                service_data=dict(on_air.service_data),
                service_uuids=on_air.service_uuids,
            )
        )
    with out.open("w") as handle:
        return write_jsonl(adverts, handle)


def captured(*argv: str) -> str:
    """Run a step whose output the demo reads back (and shows)."""
    print(f"\n$ proximity {' '.join(argv)}", flush=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        if proximity(list(argv)) != 0:
            sys.exit(f"demo step failed: {argv[0]}")
    print(out.getvalue(), end="", flush=True)
    return out.getvalue()


def key_server_loop(tmp: Path, colleague: str, log: str, signing: str) -> None:
    """The colleague uploads through a key server on 127.0.0.1; your phone downloads index.txt."""
    authority, db = str(tmp / "verification-server.pem"), str(tmp / "keys.sqlite")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    step("the verification server's certificate key", "keys", "signing-key", "--out", authority)
    storage = ["--db", db, "--signing-key", signing, "--region", "VN", "--min-keys", "1000"]
    serve = ["serve", *storage, "--authority", f"health.example={authority.replace('.pem', '.pub.pem')}"]
    serve += ["--audience", "demo-key-server", "--port", str(port)]
    print(f"\n$ proximity {' '.join(serve)} &    # the health authority's key server", flush=True)
    server = subprocess.Popen([sys.executable, "-m", "proximity.cli.main", *serve])
    try:
        for _ in range(600):  # up to a minute to start
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=5):
                    break
            except OSError:
                time.sleep(0.1)
        minted = json.loads(
            captured(
                *("keys", "certificate", "--keyring", colleague, "--authority-key", authority),
                *("--iss", "health.example", "--aud", "demo-key-server"),
            )
        )
        step(
            "the colleague's phone uploads its keys with the certificate (what a GAEN app sends)",
            *("publish", "--server", url, "--keyring", colleague),
            *("--certificate", minted["certificate"], "--hmac-key", minted["hmacKey"]),
        )
        step("the server batches, pads and signs the keys into an export", "serve-export", *storage)
        step(
            "your phone downloads index.txt and every file it lists, verifies and matches them",
            *("match", "--keys", url + "/v1/index.txt", "--pubkey", signing.replace(".pem", ".pub.pem")),
            *("--log", log),
        )
    finally:
        server.terminate()
        server.wait(timeout=60)


def dp3t_loop(tmp: Path, colleague: str, log: str, lunch: float) -> None:
    """The third scheme, DP-3T, through the same commands: heard at lunch, published, matched."""
    recording, exposed = tmp / "lunch.jsonl", str(tmp / "dp3t-exposed.json")
    heard = record_meeting(Path(colleague), lunch, recording, "dp3t")
    print(f"\n(recorded {heard} DP-3T adverts, service data under 0xFD68, at lunch from {format_utc(lunch)})")
    step("the lunch, replayed into your log", "replay", str(recording), "--db", log)
    step(
        "the colleague publishes their DP-3T day key of yesterday (SK_t, day) as an exposee list",
        *("keys", "export", "--scheme", "dp3t", "--keyring", colleague, "--days", "2", "--out", exposed),
    )
    step(
        "your phone sniffs the exposee list, chains each key forward and matches it",
        *("match", "--keys", exposed, "--log", log, "--device", "Samsung A20"),
    )


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
        step(
            "and your colleague's (a Pixel 4: its calibrated TX power, -30 dBm, goes into its metadata)",
            *("keys", "init", "--keyring", colleague, "--at", str(day), "--device", "Pixel 4"),
        )
        step(
            "GAEN: your phone broadcasts a new RPI every 10 minutes (144 a day; the first 6)",
            *("ids", "--scheme", "gaen", "--keyring", you, "--at", str(day), "--count", "6"),
        )
        step(
            "Bluezone: a new 12-byte ID every 15 minutes (96 a day; the first 4)",
            *("ids", "--scheme", "bluezone", "--keyring", you, "--at", str(day), "--count", "4"),
        )
        step(
            "DP-3T: 16-byte EphIDs every 15 minutes, in an order derived from the day key (the first 4)",
            *("ids", "--scheme", "dp3t", "--keyring", you, "--at", str(day), "--count", "4"),
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
            "your phone verifies the export, matches it against its log (the IDs read packed per hour, "
            "then only the sightings of those some key derives) and judges the exposure",
            *("match", "--keys", export, "--pubkey", signing.replace(".pem", ".pub.pem"), "--log", log),
            *("--device", "Samsung A20"),
        )
        step("the exposure found is kept in your log", "log", "stats", "--db", log)
        with contextlib.closing(sqlite3.connect(log)) as raw, raw:  # another program edits a sighting
            raw.execute("UPDATE sightings SET time = time WHERE id = 1")
        step(
            "an edit made around the library empties the packed IDs (match then reads every sighting): "
            "rebuild them",
            *("log", "reindex", "--db", log),
        )
        notes = tmp / "notes.txt"
        notes.write_text("not a key ring\n")
        refused(
            "a file that is not a key ring is never wiped", "keys", "wipe", "--keyring", str(notes), "--yes"
        )
        seen = tmp / "seen.csv"
        seen.write_text(f"id,time,rssi\n{'ab' * 16},{meeting},127\n")  # 127 = HCI's "no RSSI"
        refused("bad input gets one line naming the row and field", "match", "--keys", export, "--no-verify",
                "--observed", str(seen))  # fmt: skip
        key_server_loop(tmp, colleague, log, signing)
        dp3t_loop(tmp, colleague, log, meeting + 3 * 3600)
        step(
            "how well each estimator tells near from far on recordings it never saw (each of three data "
            "sets judged by a fit on the other two; per file and pooled; bootstrap intervals)",
            *("evaluate", *map(str, RECORDINGS), "--leave-one-dataset-out"),
        )
        step(
            "a classroom lesson simulated on the real core: who gets traced at 30/60/90 % adoption",
            *(
                "simulate",
                str(CLASSROOM),
                "--estimator",
                "probabilistic,cwa",
                "--seeds",
                "3",
                "--scheduler",
                "inline",
            ),
            *("--out", str(PLOTS)),
        )
        step(
            "a shop where households come, go and adopt together, on a custom duty cycle ([duty]), through "
            "the channel fitted on the recordings: companions and strangers traced apart; the contact table "
            "as contacts.csv and contacts.parquet",
            *("simulate", str(FAMILY_SHOP), "--seeds", "2", "--scheduler", "inline"),
            *("--out", str(PLOTS / "family-shop")),
        )
        contradictory = tmp / "contradictory.toml"
        contradictory.write_text(
            FAMILY_SHOP.read_text().replace("scan_on = 4\nscan_period = 60", "scan_on = 60\nscan_period = 4")
        )
        refused("a duty cycle whose window outlasts its period is refused, naming the key", "simulate",
                str(contradictory))  # fmt: skip
        print(f"\nplots: {PLOTS / 'fraction_traced.png'} (traced vs adoption), {PLOTS / 'roc.png'} (ROC)")
        step(
            "the same lesson with DP-3T phones (30 s scans every 5 min, a new EphID every 15 min): the "
            "simulator runs every registered scheme",
            *("simulate", str(DP3T_CLASSROOM), "--adoption", "0.6", "--seeds", "3"),
            *("--estimator", "probabilistic", "--scheduler", "inline", "--out", str(tmp / "dp3t-simulation")),
        )
        step(
            "the epidemic it changes: Covasim driven by the BLE simulator's per-layer detection, a small "
            "Quang Ninh district (20,000 agents, 60 days, 2 paired seeds; docs/epidemic.md has the province)",
            *("epidemic", str(DISTRICT), "--agents", "20000", "--days", "60", "--seeds", "2"),
            *("--adoption", "0.58", "--scheduler", "inline", "--out", str(PLOTS / "epidemic")),
        )
        refused("an epidemic scenario that cannot run is refused before any run", "epidemic", str(DISTRICT),
                "--agents", "2000000")  # fmt: skip
        split_run(tmp)


def split_run(tmp: Path) -> None:
    """One lesson split in 2 shards on 2 Dask workers writes the same result rows as one process."""
    outs = {}
    for name, extra in (
        ("one process", ("--scheduler", "inline")),
        ("split", ("--shards", "2", "--workers", "2")),
    ):
        outs[name] = tmp / f"split-{name.replace(' ', '-')}"
        step(
            f"the lesson at 60 %, one seed: {name}",
            *("simulate", str(CLASSROOM), "--adoption", "0.6", "--seeds", "1", "--estimator", "cwa"),
            *(*extra, "--out", str(outs[name])),
        )
    same = all(
        (outs["split"] / f).read_bytes() == (outs["one process"] / f).read_bytes()
        for f in ("results.csv", "contacts.csv", "pair_scores.csv")
    )
    print(f"split across 2 Dask workers: results.csv, contacts.csv, pair_scores.csv byte-identical: {same}")
    if not same:
        sys.exit("demo step failed: the split run differs from the one-process run")


if __name__ == "__main__":
    main()
