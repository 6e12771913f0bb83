"""Fuzz: JSON Lines recordings (`scan --record`) -> read_jsonl, byte-mutated and structurally odd."""

from __future__ import annotations

import json
from typing import Any

from fuzzing import FUZZ_SETTINGS, guarded, inputs, json_values
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURES
from proximity.ble.recording import advert_to_json, load_capture, read_jsonl

ADVERTS = load_capture(FIXTURES / "btsnoop" / "run4_two_nodes_monitor_2001.btsnoop")[:20]
SEEDS = ["\n".join(advert_to_json(a) for a in ADVERTS[i : i + 4]).encode() for i in range(0, 20, 4)]
LINE = st.fixed_dictionaries(
    {},
    optional={
        key: json_values()
        for key in (
            "time",
            "address",
            "rssi",
            "service_uuids",
            "service_data",
            "manufacturer_data",
            "local_name",
            "tx_power",
        )
    },
)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")  # load_capture refuses non-UTF-8 before this reader


def test_fuzz_jsonl() -> None:
    with guarded("jsonl") as guard:

        @FUZZ_SETTINGS
        @given(st.one_of(inputs(SEEDS).map(_text), LINE.map(json.dumps)))
        def run(text: Any) -> None:
            guard.call(lambda: read_jsonl(text))

        run()
