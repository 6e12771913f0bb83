"""Fuzz: Bluezone daily-key JSON, byte-mutated and structurally odd -> parse_records."""

from __future__ import annotations

import json
from typing import Any

from fuzzing import FUZZ_SETTINGS, guarded, inputs, json_values
from hypothesis import given
from hypothesis import strategies as st

from proximity.keyfiles.bluezone_json import dump_records, parse_records
from proximity.schemes.bluezone import BluezoneBaseKey

BASE = BluezoneBaseKey(bytes(range(32)), 1596240000)
SEEDS = [
    dump_records([BASE.record(1596240000.0 + day * 86400, days=14) for day in range(3)]).encode(),
    b'[{"daily_key": "' + b"ab" * 32 + b'", "time_start": 1596240000, "max": 96, "time_end": 1596326400}]',
]
RECORD = st.fixed_dictionaries(
    {},
    optional={
        "daily_key": st.one_of(st.just("ab" * 32), json_values()),
        "time_start": st.one_of(st.just(1596240000), json_values()),
        "time_end": st.one_of(st.just(1596326400), json_values()),
        "max": st.one_of(st.sampled_from([96, 144, 86400, 0, 7]), json_values()),
    },
)
STRUCTURED = st.one_of(
    st.lists(RECORD, max_size=4), st.fixed_dictionaries({"data": st.lists(RECORD, max_size=4)})
)


def test_fuzz_bluezone_json() -> None:
    with guarded("bluezone-json") as guard:

        @FUZZ_SETTINGS
        @given(st.one_of(inputs(SEEDS), STRUCTURED.map(lambda v: json.dumps(v).encode())))
        def run(data: Any) -> None:
            guard.call(lambda: parse_records(data, "fuzz.json"))

        run()
