"""Fuzz: the key ring file (a real one, mutated; and valid-checksum rings with odd values) -> load_keyring."""

from __future__ import annotations

import json
from typing import Any

from fuzzing import fuzz_file_reader, inputs, json_values
from hypothesis import strategies as st

from proximity.keyring import KeyRing
from proximity.keyring.store import _checksum, dumps_keyring, load_keyring

RING = dumps_keyring(KeyRing.create(1_700_000_000.0).rolled(1_700_200_000.0))
SEEDS = [RING.encode()]


@st.composite
def checksummed(draw: st.DrawFn) -> bytes:
    """A ring with one value replaced and the checksum made right: validation past the checksum."""
    document: Any = json.loads(RING)
    body = document["body"]
    keys = body["keys"]
    where = draw(st.sampled_from(["settings", "gaen", "bluezone", "dp3t", "entry", "keys"]))
    value = draw(json_values())
    if where == "settings":
        body["settings"][draw(st.sampled_from(sorted(body["settings"])))] = value
    elif where == "gaen":
        entry = keys["gaen"][0]
        entry[draw(st.sampled_from(sorted(entry)))] = value
    elif where in ("bluezone", "dp3t"):
        keys[where][draw(st.sampled_from(sorted(keys[where])))] = value
    elif where == "entry":  # a scheme's whole entry, or one under a name no scheme has
        keys[draw(st.sampled_from([*sorted(keys), "nosuchscheme"]))] = value
    else:
        body["keys"] = value
    document["sha256"] = _checksum(body)
    return json.dumps(document).encode()


def test_fuzz_keyring() -> None:
    fuzz_file_reader(
        "keyring",
        st.one_of(inputs(SEEDS), checksummed()),
        lambda path: load_keyring(path).rolled(1_700_300_000.0),
    )
