"""Typed stub of the optional C extension built from _native.c (see proximity.matching.native)."""

from typing import Any, TypeAlias

import numpy as np
from typing_extensions import Buffer

_In: TypeAlias = Buffer | np.ndarray[Any, Any]  # any C-contiguous buffer
_Out: TypeAlias = bytearray | memoryview | np.ndarray[Any, Any]  # writable

def hkdf16(ikms: _In, info: _In, out: _Out, /) -> None: ...
def sha256(data: _In, /) -> bytes: ...
def gaen_rpis(teks: _In, starts: _In, out: _Out, /) -> None: ...
def aes128_ecb(keys: _In, blocks: _In, out: _Out, /) -> None: ...
def probe(
    candidates: _In,
    length: int,
    keys: _In,
    ids: _In,
    bitmap1: _In,
    bitmap2: _In,
    bits: int,
    out_pos: _Out,
    out_unique: _Out,
    /,
) -> int: ...
def gaen_probe(
    teks: _In,
    starts: _In,
    periods: _In,
    keys: _In,
    ids: _In,
    bitmap1: _In,
    bitmap2: _In,
    bits: int,
    out_pos: _Out,
    out_unique: _Out,
    /,
) -> int: ...
def bluezone_ids(
    daily_keys: _In, key_length: int, salt: _In, count: int, ids_per_day: int, out: _Out, /
) -> None: ...
def features() -> dict[str, bool | str]: ...
def set_sha256(name: str, /) -> str: ...
def set_aes(name: str, /) -> str: ...
