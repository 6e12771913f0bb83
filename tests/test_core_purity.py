"""The core stays pure: importing it loads no BLE, database, D-Bus or asyncio module."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("bleak", "sqlite3", "_sqlite3", "dbus_fast", "asyncio")


CORE = (
    "proximity, proximity.schemes, proximity.schemes.registry, proximity.payloads, proximity.keyring, "
    "proximity.sightings, proximity.broadcast, proximity.matching, proximity.crypto, "
    "proximity.matching.dp3t, proximity.keyfiles, proximity.estimation, proximity.sighting_columns, "
    "proximity.keyring.scheme_keys"
)


def edges_loaded(modules: str) -> list[str]:
    """The forbidden modules loaded by importing ``modules`` (and making the crypto backends) in a fresh
    interpreter."""
    code = (
        f"import json, sys, {modules}\n"
        "import proximity.crypto\n"
        "proximity.crypto.crypto_backend('python')\n"
        "proximity.crypto.crypto_backend()\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(json.loads(result.stdout))


def test_importing_the_core_loads_none_of_the_edges() -> None:
    assert edges_loaded(CORE) == []


def test_the_check_itself_can_fail() -> None:
    """The same check, run on the core plus the encounter log (an edge: sqlite3), reports sqlite3."""
    assert "sqlite3" in edges_loaded(CORE + ", proximity.log")


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
