"""Create a device's key ring in a temporary folder and show what it broadcasts right now."""

from __future__ import annotations

import tempfile
from pathlib import Path

from proximity import KeyRing, KeyRingSettings, load_keyring, save_keyring
from proximity.times import format_utc, now


def main() -> None:
    at = now()
    ring = KeyRing.create(at, KeyRingSettings(tx_power=-24))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "keyring.json"
        save_keyring(path, ring, create=True)  # atomic, mode 0600, refuses to replace a ring
        assert load_keyring(path) == ring
        print(f"key ring saved to {path} ({path.stat().st_size} bytes)")
    for scheme in ("gaen", "bluezone"):
        broadcast = ring.broadcast_at(scheme, at)
        until = format_utc(broadcast.end)
        print(f"{scheme:8}  {broadcast.id.hex}  until {until}  advert {broadcast.ad_bytes.hex()}")


if __name__ == "__main__":
    main()
