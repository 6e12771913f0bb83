"""Under ``make test-postgres`` (PROXIMITY_REQUIRE_POSTGRES=1) a skipped key-server test is a failure."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from keyserver_harness import POSTGRES_ENV

REQUIRED = os.environ.get("PROXIMITY_REQUIRE_POSTGRES") == "1"


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRED and not os.environ.get(POSTGRES_ENV):
        raise pytest.UsageError(f"PROXIMITY_REQUIRE_POSTGRES=1 but {POSTGRES_ENV} is not set")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if REQUIRED and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped, which PROXIMITY_REQUIRE_POSTGRES=1 does not allow: {report.longrepr}"
