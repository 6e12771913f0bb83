"""Shared test helpers: where the vectors and fixtures live, and one loader for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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
    import os

    if os.environ.get("PROXIMITY_HARDWARE") == "1":
        return
    skip = pytest.mark.skip(reason="needs a real Bluetooth adapter; run with PROXIMITY_HARDWARE=1")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)
