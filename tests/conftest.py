"""Shared test helpers: where the vectors and fixtures live, and one loader for them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# No per-example wall-clock deadline anywhere: the suite must pass on a loaded 2-core machine, where a
# 200 ms budget fails for reasons that have nothing to do with the code under test.
settings.register_profile("proximity", deadline=None)
settings.load_profile("proximity")

TESTS = Path(__file__).parent
VECTORS = TESTS / "vectors"
FIXTURES = TESTS / "fixtures"
REPO = TESTS.parent


def load_vectors(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "proximity" / "keyring.json"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``hardware`` need a real Bluetooth adapter: run them only with PROXIMITY_HARDWARE=1."""
    if os.environ.get("PROXIMITY_HARDWARE") == "1":
        return
    skip = pytest.mark.skip(reason="needs a real Bluetooth adapter; run with PROXIMITY_HARDWARE=1")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


# Under `make test-postgres` (PROXIMITY_REQUIRE_POSTGRES=1) a skipped key-server test is a failure.
REQUIRE_POSTGRES = os.environ.get("PROXIMITY_REQUIRE_POSTGRES") == "1"


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE_POSTGRES and not os.environ.get("PROXIMITY_TEST_POSTGRES"):
        raise pytest.UsageError("PROXIMITY_REQUIRE_POSTGRES=1 but PROXIMITY_TEST_POSTGRES is not set")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    outcome: Any = yield
    report = outcome.get_result()
    if REQUIRE_POSTGRES and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped, which PROXIMITY_REQUIRE_POSTGRES=1 does not allow: {report.longrepr}"
