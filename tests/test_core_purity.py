"""The core stays pure: importing it loads no BLE, database, D-Bus or asyncio module."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("bleak", "sqlite3", "_sqlite3", "dbus_fast", "asyncio")


def test_importing_the_core_loads_none_of_the_edges() -> None:
    code = (
        "import json, sys, proximity, proximity.schemes, proximity.payloads, proximity.keyring, "
        "proximity.sightings, proximity.broadcast, proximity.matching, proximity.matching.aes, "
        "proximity.keyfiles, proximity.estimation\n"
        "proximity.matching.aes.default_backend()\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


def test_the_check_itself_can_fail() -> None:
    code = f"import json, sys, sqlite3\nprint(json.dumps([m for m in sys.modules if m in {FORBIDDEN!r}]))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "sqlite3" in json.loads(result.stdout)
