"""The observed-ID index: exact lookups, duplicates collapsed, rows kept, prefix collisions handled."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proximity.errors import InvalidLengthError
from proximity.matching.index import ObservedIdIndex


def _ids(rng: np.random.Generator, n: int, length: int = 16) -> np.ndarray:
    return rng.integers(0, 256, (n, length), dtype=np.uint8)


def test_finds_exactly_the_observed_ids_and_their_rows() -> None:
    rng = np.random.default_rng(1)
    observed = _ids(rng, 1000)
    observed[500] = observed[3]  # a duplicate sighting
    index = ObservedIdIndex.build(observed)
    assert len(index) == 999
    candidates = np.concatenate([observed[[3, 10, 999]], _ids(rng, 500)])
    hit, unique = index.lookup(candidates)
    assert hit.tolist() == [True, True, True] + [False] * 500
    assert index.rows_of(int(unique[0])).tolist() == [3, 500]
    assert index.rows_of(int(unique[1])).tolist() == [10]
    assert bytes(index.unique_ids[unique[2]]) == bytes(observed[999])


def test_a_one_byte_difference_is_a_miss() -> None:
    rng = np.random.default_rng(2)
    observed = _ids(rng, 50)
    index = ObservedIdIndex.build(observed)
    for column in (0, 7, 8, 15):
        probe = observed[:1].copy()
        probe[0, column] ^= 1
        assert not index.lookup(probe)[0][0]


def test_ids_sharing_their_first_eight_bytes_are_told_apart() -> None:
    rng = np.random.default_rng(3)
    observed = _ids(rng, 10)
    observed[1, :8] = observed[0, :8]
    observed[2, :8] = observed[0, :8]
    index = ObservedIdIndex.build(observed)
    assert index.has_prefix_collisions
    hit, unique = index.lookup(observed[[2, 1, 0]])
    assert hit.all()
    assert [index.rows_of(int(u)).tolist() for u in unique] == [[2], [1], [0]]
    other = observed[:1].copy()
    other[0, 12] ^= 0xFF
    assert not index.lookup(other)[0][0]


def test_twelve_byte_bluezone_ids() -> None:
    rng = np.random.default_rng(4)
    observed = _ids(rng, 100, 12)
    index = ObservedIdIndex.build(observed)
    positions, _ = index.find(np.concatenate([_ids(rng, 20, 12), observed[[7]]]))
    assert positions.tolist() == [20]


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(InvalidLengthError):
        ObservedIdIndex.build(np.zeros((3, 4), np.uint8))
    index = ObservedIdIndex.build(np.zeros((3, 16), np.uint8))
    with pytest.raises(InvalidLengthError):
        index.find(np.zeros((3, 12), np.uint8))


def test_empty_index_and_empty_probe() -> None:
    index = ObservedIdIndex.build(np.zeros((0, 16), np.uint8))
    assert index.find(np.zeros((5, 16), np.uint8))[0].size == 0
    full = ObservedIdIndex.build(np.ones((2, 16), np.uint8))
    assert full.find(np.zeros((0, 16), np.uint8))[0].size == 0


@pytest.mark.parametrize("backend", ["python", "auto"])  # auto: the C probe where it is built
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(min_size=16, max_size=16), min_size=0, max_size=60),
    st.lists(st.binary(min_size=16, max_size=16), max_size=30),
    st.integers(0, 255),
)
def test_agrees_with_a_python_set(
    backend: str, observed: list[bytes], others: list[bytes], prefix: int
) -> None:
    # shared first bytes make prefix buckets and collisions common
    observed = [bytes([prefix]) * 8 + o[8:] if i % 3 == 0 else o for i, o in enumerate(observed)]
    array = np.frombuffer(b"".join(observed), np.uint8).reshape(len(observed), 16)
    index = ObservedIdIndex.build(array)
    probes = observed + others
    candidates = np.frombuffer(b"".join(probes), np.uint8).reshape(len(probes), 16)
    hit, unique = index.lookup(candidates, backend=backend)
    expected = set(observed)
    assert hit.tolist() == [p in expected for p in probes]
    for probe, u in zip(probes, unique.tolist(), strict=True):
        if u >= 0:
            assert bytes(index.unique_ids[u]) == probe
            assert [observed[r] for r in index.rows_of(u)] == [probe] * observed.count(probe)


@pytest.mark.skipif(
    __import__("proximity.crypto.native", fromlist=["native_module"]).native_module() is None,
    reason="C backend unavailable",
)
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 400), st.sampled_from([12, 16]))
def test_the_c_probe_searches_the_right_slice(seed: int, n: int, length: int) -> None:
    # IDs crowded into few top-16-bit slices (and sharing whole 8-byte prefixes), probed in C and numpy
    rng = np.random.default_rng(seed)
    ids = _ids(rng, n, length)
    ids[:, 0] = rng.integers(0, 3, n)  # three slices' worth of first bytes...
    ids[:, 1] = 7  # ...and one second byte
    ids[: n // 3, 2:8] = ids[0, 2:8]  # a third share their first 8 bytes
    index = ObservedIdIndex.build(ids)
    assert (
        index.slices[0] == 0
        and index.slices[-1] == len(index)
        and np.all(np.diff(index.slices.astype(np.int64)) >= 0)
    )
    misses = ids.copy()
    misses[:, -1] ^= 1
    candidates = np.concatenate([ids, misses, _ids(rng, 50, length)])
    c_found = index.find(candidates, backend="c")
    numpy_found = index.find(candidates, backend="python")
    assert [a.tolist() for a in c_found] == [a.tolist() for a in numpy_found]
    hit = set(c_found[0].tolist())
    assert set(range(n)) <= hit


def _reference_build(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the index holds, by the plain definition: unique IDs sorted by their first 8 bytes, then
    the rest (each read as a native integer), each one's rows in input order, and the top-16-bit
    slice ends."""
    n = ids.shape[0]
    head = np.ascontiguousarray(ids[:, :8]).view(np.uint64).reshape(n)
    rest = np.zeros((n, 8), np.uint8)
    rest[:, : ids.shape[1] - 8] = ids[:, 8:]
    order = np.lexsort((np.arange(n), rest.view(np.uint64).reshape(n), head))
    ranked = ids[order]
    new = np.ones(n, np.bool_)
    new[1:] = np.any(ranked[1:] != ranked[:-1], axis=1)
    starts = np.flatnonzero(new)
    keys = head[order][starts]
    slices = np.searchsorted(keys, np.arange(65537, dtype=np.uint64) << np.uint64(48)).astype(np.uint32)
    slices[-1] = keys.size
    return ranked[starts], order, np.append(starts, n), slices


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.one_of(st.integers(1, 50), st.integers(1024, 3000)),  # (the fast sort from 1024 keys)
    st.integers(1, 60),
    st.sampled_from([12, 16]),
)
def test_the_index_of_many_ids_sharing_prefixes_is_the_plain_definition(
    seed: int, n: int, distinct_ids: int, length: int
) -> None:
    """Many rows of few IDs (as a simulator chunk), some sharing their top 32 or all 64 leading bits
    but not the rest, interleaved: the fast sort's fallbacks give the same index as the definition."""
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 256, (distinct_ids, length), dtype=np.uint8)
    share = rng.integers(0, distinct_ids, distinct_ids)
    top32 = rng.random(distinct_ids) < 0.3
    pool[top32, 4:8] = pool[share[top32], 4:8]  # (native uint64: bytes 4..7 are the top 32 bits)
    all64 = rng.random(distinct_ids) < 0.1
    pool[all64, :8] = pool[share[all64], :8]
    ids = pool[rng.integers(0, distinct_ids, n)]
    index = ObservedIdIndex.build(ids)
    unique, rows, offsets, slices = _reference_build(ids)
    assert np.array_equal(index.unique_ids, unique)
    assert np.array_equal(index.rows, rows) and np.array_equal(index.offsets, offsets)
    assert np.array_equal(index.slices, slices)
