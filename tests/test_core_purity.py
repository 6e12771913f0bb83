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


def test_every_error_is_public_and_under_proximity_error() -> None:
    """One hierarchy, all of it importable from the top: a caller can catch any error by name."""
    import inspect

    import proximity
    from proximity import errors

    members = inspect.getmembers(errors, inspect.isclass)
    classes = {name for name, obj in members if obj.__module__ == errors.__name__}
    assert classes == set(errors.__all__)
    assert set(errors.__all__) <= set(proximity.__all__)
    assert all(issubclass(getattr(errors, name), errors.ProximityError) for name in classes)
