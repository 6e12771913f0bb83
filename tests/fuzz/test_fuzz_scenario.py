"""Fuzz: scenario TOML (the shipped scenarios, mutated) -> load_scenario, with its memory estimate."""

from __future__ import annotations

from fuzzing import fuzz_file_reader, inputs
from hypothesis import strategies as st

from conftest import TESTS
from proximity.sim.scenario import load_scenario

SEEDS = [path.read_bytes() for path in sorted((TESTS.parent / "simulations").glob("*.toml"))]
VALUES = [
    *(b"0", b"-1", b"1e308", b"1e-300", b"nan", b"inf", b'"x"', b"[1, 2]", b"true", b"{a = 1}"),
    *(b"99999999999999999999999", b"0.001", b"253402300800", b'"2020-08-05T08:00:00Z"', b"[" * 40),
]


@st.composite
def scenarios(draw: st.DrawFn) -> bytes:
    """A shipped scenario with some values replaced: TOML stays valid, so validation is reached."""
    lines = draw(st.sampled_from(SEEDS)).split(b"\n")
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        if b"=" in lines[at]:
            key = lines[at].split(b"=")[0]
            lines[at] = key + b"= " + draw(st.sampled_from(VALUES))
    return b"\n".join(lines)


def test_fuzz_scenario() -> None:
    fuzz_file_reader("scenario-toml", st.one_of(inputs(SEEDS), scenarios()), load_scenario)
