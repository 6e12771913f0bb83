"""Fuzz: btsnoop captures (the recorded ones, mutated) -> advertising reports -> recorded adverts."""

from __future__ import annotations

from fuzzing import FUZZ_SETTINGS, guarded, inputs
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURES
from proximity.ble.btsnoop import advertising_reports, hci_commands
from proximity.ble.recording import recorded_from_reports

# the small captures whole, the big one cut to its first 8 KB (mutations land where parsing happens)
SEEDS = [path.read_bytes()[:8192] for path in sorted((FIXTURES / "btsnoop").glob("*.btsnoop"))]


def test_fuzz_btsnoop() -> None:
    with guarded("btsnoop") as guard:

        @FUZZ_SETTINGS
        @given(inputs(SEEDS), st.booleans())
        def run(data: bytes, adverts: bool) -> None:
            if adverts:
                guard.call(lambda: list(recorded_from_reports(advertising_reports(data))))
            else:
                guard.call(lambda: list(hci_commands(data)))

        run()
