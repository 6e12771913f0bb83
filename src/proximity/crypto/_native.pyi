"""Typed stub of the optional C extension built from _native.c (see proximity.crypto.native)."""

from typing import Any, TypeAlias

import numpy as np
from typing_extensions import Buffer

_In: TypeAlias = Buffer | np.ndarray[Any, Any]  # any C-contiguous buffer
_Out: TypeAlias = bytearray | memoryview | np.ndarray[Any, Any]  # writable

def sha256(data: _In, /) -> bytes: ...
def sha256_rows(rows: _In, width: int, out: _Out, threads: int = 1, /) -> None: ...
def sha256_chain(seeds: _In, length: int, select: _In, out: _Out, threads: int = 1, /) -> None: ...
def hmac_sha256(keys: _In, key_length: int, message: _In, out: _Out, threads: int = 1, /) -> None: ...
def hkdf_sha256(
    ikms: _In, ikm_length: int, info: _In, length: int, out: _Out, threads: int = 1, /
) -> None: ...
def aes_ecb(
    keys: _In, width: int, blocks: _In, per: int, rows: _In, out: _Out, threads: int = 1, /
) -> None: ...
def aes_ctr(keys: _In, width: int, counters: _In, length: int, out: _Out, threads: int = 1, /) -> None: ...
def probe(
    candidates: _In,
    length: int,
    keys: _In,
    ids: _In,
    bitmap1: _In,
    bitmap2: _In,
    slices: _In,
    bits: int,
    out_pos: _Out,
    out_unique: _Out,
    threads: int = 1,
    /,
) -> int: ...
def aes_ecb_probe(
    keys: _In,
    width: int,
    blocks: _In,
    per: int,
    rows: _In,
    counts: _In,
    index_keys: _In,
    ids: _In,
    bitmap1: _In,
    bitmap2: _In,
    slices: _In,
    bits: int,
    out_pos: _Out,
    out_unique: _Out,
    threads: int = 1,
    /,
) -> int: ...
def features() -> dict[str, bool | str]: ...
def set_sha256(name: str, /) -> str: ...
def set_aes(name: str, /) -> str: ...
