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
