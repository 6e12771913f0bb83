"""HeardPairs (segments, settling in pieces, mirrors) against a plain per-pair ledger, on random runs."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proximity.sim import ledger as ledger_module
from proximity.sim.ledger import CloseTime, HeardPairs

DAY = 86400.0 * 18479
N = 5
Piece = tuple[list[int], list[int], list[float], list[float]]


class _Plain:
    """The ledger's contract one pair at a time: each pair's rows in (time, arrival) order, pairs
    in (scanner, counterpart) order, settled by midnight, forget and hold, cut into pieces of whole
    pairs after the pair where the rows reach each multiple of ``rows``."""

    def __init__(self, forget: float, hold: float) -> None:
        self.forget, self.hold = forget, hold
        self.held: dict[tuple[int, int], list[tuple[float, int, float]]] = {}
        self.arrived = 0
        self.peak_rows = self.peak_pairs = 0

    def copy(self) -> _Plain:
        twin = _Plain(self.forget, self.hold)
        twin.held = {pair: list(rows) for pair, rows in self.held.items()}
        twin.arrived, twin.peak_rows, twin.peak_pairs = self.arrived, self.peak_rows, self.peak_pairs
        return twin

    @property
    def rows(self) -> int:
        return sum(map(len, self.held.values()))

    def add(self, scanner: list[int], other: list[int], times: list[float], rssi: list[float]) -> None:
        for a, b, t, r in zip(scanner, other, times, rssi, strict=True):
            self.held.setdefault((a, b), []).append((t, self.arrived, float(np.float32(r))))
            self.arrived += 1
        if times:
            self.peak_rows, self.peak_pairs = (
                max(self.peak_rows, self.rows),
                max(self.peak_pairs, len(self.held)),
            )

    def settle(self, now: float, final: bool, rows: int) -> list[Piece]:
        midnight = math.floor(now / 86400.0) * 86400.0
        done = []
        for pair, held in sorted(self.held.items()):
            last, first = max(t for t, _, _ in held), min(t for t, _, _ in held)
            if (
                final
                or last < midnight
                or (self.forget > 0 and last < now - self.forget)
                or (self.hold > 0 and first < now - self.hold)
            ):
                done.append(pair)
        pieces: list[Piece] = []
        total = sum(len(self.held[pair]) for pair in done)
        ends, upto, marks = [], 0, list(range(rows, total, rows))
        for i, pair in enumerate(done):
            upto += len(self.held[pair])
            if (marks and upto >= marks[0]) or i == len(done) - 1:
                ends.append(i + 1)
                while marks and upto >= marks[0]:
                    marks.pop(0)
        start = 0
        for end in ends:
            piece: Piece = ([], [], [], [])
            for a, b in done[start:end]:
                for t, _, r in sorted(self.held[a, b]):
                    piece[0].append(a)
                    piece[1].append(b)
                    piece[2].append(t)
                    piece[3].append(r)
            pieces.append(piece)
            start = end
        for pair in done:
            del self.held[pair]
        return pieces


def _pieces(ledger: HeardPairs, now: float, final: bool, rows: int) -> list[Piece]:
    return [
        (s.tolist(), c.tolist(), t.tolist(), r.tolist())
        for s, c, t, r in ledger.settle_pieces(now, final, rows)
    ]


class Step(NamedTuple):
    rows: int
    back: float  # rows older than the clock by up to this (late batches)
    tick: float  # how far the clock moves before settling
    grid: float  # > 0: times on a grid of this (ties)
    piece: int
    final: bool
    twin: str  # what the twin does: mirror the ledger, add the batch itself or keep


_step = st.builds(
    Step,
    st.integers(0, 25),
    st.sampled_from([0.0, 0.0, 200.0, 2000.0]),
    st.sampled_from([0.0, 60.0, 300.0, 900.0, 5000.0]),
    st.sampled_from([0.0, 30.0]),
    st.integers(1, 30),
    st.booleans(),
    st.sampled_from(["mirror", "add", "keep"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    forget=st.sampled_from([0.0, 300.0, 900.0]),
    hold=st.sampled_from([0.0, 600.0, 1800.0]),
    segments=st.sampled_from([1, 2, 3, 64]),
    steps=st.lists(_step, min_size=1, max_size=14),
    seed=st.integers(0, 2**32 - 1),
    day=st.sampled_from([DAY, 86400.0 * 3]),
    whole=st.booleans(),
)
def test_heard_pairs_settle_what_a_plain_ledger_settles(
    forget: float, hold: float, segments: int, steps: list[Step], seed: int, day: float, whole: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Adds of batches in any order (a pair's rows out of time order within and across batches, ties,
    unknown counterparts), settlements at any time (midnight, forget, hold, the end) in pieces of any
    size, segments rewritten and merged (few allowed), pairs settled and heard again, and a twin that
    sometimes mirrors the ledger and sometimes adds on its own: every piece is what the plain ledger
    gives, and so are the rows held and the peaks. Times at a run's clock (~1.6e9 s: kept in 4 bytes)
    or early on (kept as they are), RSSIs whole (1 byte) or not."""
    monkeypatch.setattr(ledger_module, "SEGMENTS", segments)
    rng = np.random.default_rng(seed)
    ledger, plain = HeardPairs(N, forget, hold), _Plain(forget, hold)
    twin, plain_twin = HeardPairs(N, forget, hold), _Plain(forget, hold)
    now = day + 86400.0 - 4000.0  # crosses midnight
    for step in steps:
        k = step.rows
        times = now - rng.uniform(0.0, step.back, k) if step.back else now + rng.uniform(-59.0, 0.0, k)
        if step.grid:
            times = np.round(times / step.grid) * step.grid
        scanner, other, rssi = rng.integers(0, N, k), rng.integers(-1, N, k), rng.uniform(-100.0, -40.0, k)
        if whole:
            rssi = np.round(rssi)
        ledger.add(scanner, other, times, rssi)
        plain.add(scanner.tolist(), other.tolist(), times.tolist(), rssi.tolist())
        if step.twin == "mirror":
            twin.mirror(ledger)
            plain_twin = plain.copy()
        elif step.twin == "add":
            twin.add(scanner, other, times, rssi)
            plain_twin.add(scanner.tolist(), other.tolist(), times.tolist(), rssi.tolist())
        assert (ledger.rows, ledger.peak_rows, ledger.peak_pairs) == (
            plain.rows,
            plain.peak_rows,
            plain.peak_pairs,
        )
        now += step.tick
        final, rows = step.final and step is steps[-1], step.piece
        assert _pieces(ledger, now, final, rows) == plain.settle(now, final, rows)
        assert _pieces(twin, now, final, rows) == plain_twin.settle(now, final, rows)
        assert (ledger.rows, twin.rows) == (plain.rows, plain_twin.rows)
    assert _pieces(ledger, now, True, 7) == plain.settle(now, True, 7)
    assert ledger.rows == 0


def test_settled_rows_stay_until_the_pieces_are_taken() -> None:
    """A settlement not iterated to its end leaves the ledger as it was."""
    ledger = HeardPairs(N, forget=300.0)
    ledger.add(np.array([0, 1, 2]), np.array([1, 2, 3]), DAY + np.array([1.0, 2.0, 3.0]), np.zeros(3))
    pieces = ledger.settle_pieces(DAY + 1000.0, rows=1)
    next(pieces)
    assert ledger.rows == 3
    assert len(list(ledger.settle_pieces(DAY + 1000.0, rows=1))) == 3 and ledger.rows == 0


def test_a_pair_heard_again_after_it_settled_starts_afresh_in_old_segments() -> None:
    """Rows of a pair's earlier meeting stay in their segment (dead) until it is rewritten: they are
    never returned again, though the pair is heard again with times that overlap the segment."""
    ledger = HeardPairs(N, forget=100.0)
    ledger.add(
        np.array([0, 1, 1, 1]), np.array([1, 2, 2, 2]), DAY + np.array([0.0, 10.0, 500.0, 900.0]), np.zeros(4)
    )
    settled = _pieces(ledger, DAY + 120.0, False, 100)
    assert settled == [([0], [1], [DAY], [0.0])]
    ledger.add(
        np.array([0]), np.array([1]), DAY + np.array([5.0]), np.full(1, -50.0)
    )  # late, in the old span
    assert _pieces(ledger, DAY + 1200.0, False, 100) == [
        (
            [0, 1, 1, 1],
            [1, 2, 2, 2],
            [DAY + 5.0, DAY + 10.0, DAY + 500.0, DAY + 900.0],
            [-50.0, 0.0, 0.0, 0.0],
        )
    ]
    assert ledger.rows == 0


@settings(max_examples=100, deadline=None)
@given(
    forget=st.sampled_from([0.0, 600.0]),
    steps=st.lists(st.tuples(st.integers(0, 12), st.sampled_from([0.0, 60.0, 900.0, 90000.0])), max_size=10),
    seed=st.integers(0, 2**32 - 1),
)
def test_close_time_settles_what_a_plain_tally_settles(
    forget: float, steps: list[tuple[int, float]], seed: int
) -> None:
    """CloseTime's sums per pair and day against a dict of the same, settled at the same times."""
    rng = np.random.default_rng(seed)
    truth = CloseTime(N, threshold=100.0, forget=forget, record=True)
    tally: dict[int, list[float]] = {}  # key: seconds, distance-seconds, minimum, last
    now = DAY
    for k, tick in steps:
        day = int(now // 86400.0)
        keys = (day * N + rng.integers(0, N, k)) * N + rng.integers(0, N, k)
        seconds, distance, low = (
            rng.integers(1, 80, k).astype(np.float64),
            rng.uniform(0, 50, k),
            rng.uniform(0, 9, k),
        )
        truth.add(keys, seconds, now, distance, low)
        for key, s, d, m in zip(
            keys.tolist(), seconds.tolist(), distance.tolist(), low.tolist(), strict=True
        ):
            held = tally.setdefault(key, [0.0, 0.0, math.inf, -math.inf])
            held[0] += s
            held[1] += d
            held[2] = min(held[2], m)
            held[3] = now
        now += tick
        final = tick == 90000.0
        met = truth.settle(now, final)
        done = [
            key
            for key, held in sorted(tally.items())
            if final or (key // (N * N) + 1) * 86400.0 <= now or (forget > 0 and held[3] < now - forget)
        ]
        assert met == {((key % (N * N)) // N, key % N) for key in done if tally[key][0] >= 100.0 - 1e-9}
        if done:
            keys_out, secs, dist, low_out = truth.settled[-1]
            assert keys_out.tolist() == done
            assert secs.tolist() == [tally[key][0] for key in done]  # summed in the same order
            assert dist.tolist() == [tally[key][1] for key in done]
            assert low_out.tolist() == [tally[key][2] for key in done]
        for key in done:
            del tally[key]


def test_a_mirror_settles_on_its_own_after_it_parts() -> None:
    """A mirror shares the segments' rows but not what was settled from them: pair (0, 1) settled by
    the ledger stays whole in a twin that heard it again, though the twin rewrites the segment."""
    ledger = HeardPairs(N, forget=100.0)
    ledger.add(
        np.array([0, 1, 1, 1]), np.array([1, 2, 2, 2]), DAY + np.array([0.0, 0.0, 1.0, 2.0]), np.zeros(4)
    )
    twin = HeardPairs(N, forget=100.0)
    twin.mirror(ledger)
    twin.add(np.array([0]), np.array([1]), DAY + np.array([350.0]), np.ones(1))
    assert [(s[0], c[0]) for s, c, _, _ in ledger.settle_pieces(DAY + 400.0, rows=1)] == [(0, 1), (1, 2)]
    assert _pieces(twin, DAY + 400.0, False, 10) == [
        ([1, 1, 1], [2, 2, 2], [DAY, DAY + 1.0, DAY + 2.0], [0.0] * 3)
    ]
    assert _pieces(twin, DAY + 1000.0, False, 10) == [([0, 0], [1, 1], [DAY, DAY + 350.0], [0.0, 1.0])]


def test_heard_pairs_refuse_times_that_are_not_finite() -> None:
    ledger = HeardPairs(N, forget=0.0)
    with pytest.raises(ValueError, match="finite"):
        ledger.add(np.array([0, 1]), np.array([1, 0]), np.array([DAY, np.nan]), np.zeros(2))
    assert ledger.rows == 0


def test_settled_rows_leave_memory() -> None:
    """Rows settled are dropped with their segment once all of it is settled, and a segment more
    than half settled is rewritten to the rest (the ledger's memory follows the rows held)."""
    ledger = HeardPairs(N, forget=100.0)
    ledger.add(
        np.array([0, 0, 0, 1]), np.array([1, 1, 1, 2]), DAY + np.array([0.0, 1.0, 2.0, 150.0]), np.zeros(4)
    )
    ledger.add(np.array([2]), np.array([3]), DAY + np.array([160.0]), np.zeros(1))
    assert len(_pieces(ledger, DAY + 200.0, False, 10)) == 1  # (0, 1): 3 of the first segment's 4 rows
    assert [segment.size for segment in ledger._segments] == [1, 1]
    assert len(_pieces(ledger, DAY + 300.0, False, 10)) == 1 and ledger._segments == []


def test_a_segment_settled_in_turns_keeps_only_the_rest() -> None:
    """Settled twice, then rewritten: the rewrite keeps just the rows neither settlement took, in the
    ledger and in a twin that mirrored it between the two and then heard one of those pairs again."""
    ledger, twin = HeardPairs(N, forget=100.0), HeardPairs(N, forget=100.0)
    ledger.add(
        np.array([0, 1, 2, 3, 4]),
        np.array([1, 2, 3, 4, 0]),
        DAY + np.array([0.0, 50, 50, 50, 300]),
        np.zeros(5),
    )
    assert [s[0] for s, _, _, _ in ledger.settle_pieces(DAY + 120.0)] == [0]
    twin.mirror(ledger)
    twin.add(np.array([2]), np.array([3]), DAY + np.array([200.0]), np.ones(1))
    assert [s.tolist() for s, _, _, _ in ledger.settle_pieces(DAY + 160.0)] == [[1, 2, 3]]
    assert [segment.size for segment in ledger._segments] == [1]  # (4, 0) only
    assert [s.tolist() for s, _, _, _ in twin.settle_pieces(DAY + 160.0)] == [[1, 3]]
    assert _pieces(twin, DAY + 1000.0, True, 10) == [
        ([2, 2, 4], [3, 3, 0], [DAY + 50, DAY + 200, DAY + 300], [0.0, 1.0, 0.0])
    ]


@settings(max_examples=200, deadline=None)
@given(
    clock=st.sampled_from([DAY, -DAY, 0.0, 3.0, 2.0**31, 2.0**31 - 30.0]),
    span=st.sampled_from([0.0, 1e-6, 60.0, 512.0, 1100.0, 1e6]),
    grid=st.sampled_from([0.0, 2.0**-22, 0.5]),
    size=st.integers(1, 50),
    seed=st.integers(0, 2**32 - 1),
)
def test_times_are_packed_only_where_they_come_back_bit_for_bit(
    clock: float, span: float, grid: float, size: int, seed: int
) -> None:
    """Packed times (4 bytes) give back each time's bits (including -0.0); others stay as they are."""
    rng = np.random.default_rng(seed)
    times = clock + rng.uniform(0.0, span, size)
    if grid:
        times = clock + np.round((times - clock) / grid) * grid
    if seed % 7 == 0:
        times[0] = -0.0
    stored, base, quantum = ledger_module._packed_times(times)
    if quantum:
        assert stored.dtype == np.uint32
        back = ledger_module._unpacked(stored, base, quantum)
    else:
        assert stored is times
        back = stored
    assert back.view(np.int64).tolist() == times.view(np.int64).tolist()


def test_times_at_a_runs_clock_pack_into_four_bytes() -> None:
    """A minute (and a quarter hour) of packet times at the clock of ~1.6e9 s: 4 bytes each."""
    times = DAY + 43200.0 + np.random.default_rng(1).uniform(0.0, 900.0, 1000)
    stored, _, quantum = ledger_module._packed_times(times)
    assert stored.dtype == np.uint32 and quantum == 2.0**-22


@pytest.mark.parametrize(
    ("values", "small"),
    [
        ([-40.0, -100.0, -128.0, 127.0, 0.0], True),
        ([-40.5, -100.0], False),  # not whole
        ([-129.0, -40.0], False),  # out of int8's range
        ([-0.0, -40.0], False),  # -0.0 would come back as 0.0
        ([np.nan, -40.0], False),
        ([np.inf], False),
    ],
)
def test_rssi_is_one_byte_only_where_it_comes_back_bit_for_bit(values: list[float], small: bool) -> None:
    rssi = np.array(values, np.float32)
    packed = ledger_module._packed_rssi(rssi)
    assert (packed.dtype == np.int8) == small
    assert packed.astype(np.float32).view(np.int32).tolist() == rssi.view(np.int32).tolist()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), adds=st.integers(1, 6))
def test_pair_codes_across_32_bits_settle_what_a_plain_ledger_settles(seed: int, adds: int) -> None:
    """Pair codes on both sides of 2**32 and beyond (a segment keeps each pair's low 32 bits, in runs
    of one high part): the rows settled are the plain ledger's."""
    rng = np.random.default_rng(seed)
    n = 600_000  # codes up to n * (n + 1) ~ 3.6e11: high parts 0..83
    ledger, plain = HeardPairs(n, forget=300.0), _Plain(300.0, 0.0)
    now = DAY
    for _ in range(adds):
        k = int(rng.integers(1, 40))
        near = 2**32 // (n + 1) + rng.integers(-2, 3, k)  # scanners whose codes straddle 2**32
        scanner = np.where(rng.random(k) < 0.7, near, rng.integers(0, n, k))
        other = np.where(rng.random(k) < 0.2, -1, rng.integers(0, n, k))
        times, rssi = now + rng.uniform(-59.0, 0.0, k), np.round(rng.uniform(-100.0, -40.0, k))
        ledger.add(scanner, other, times, rssi)
        plain.add(scanner.tolist(), other.tolist(), times.tolist(), rssi.tolist())
        now += float(rng.choice([60.0, 400.0]))
        assert _pieces(ledger, now, False, 7) == plain.settle(now, False, 7)
    assert _pieces(ledger, now, True, 7) == plain.settle(now, True, 7)


@settings(max_examples=100, deadline=None)
@given(
    keys=st.lists(st.integers(0, 2**40), max_size=40, unique=True),
    probes=st.lists(st.integers(0, 2**40), max_size=40),
)
def test_a_segment_finds_its_pairs_by_code(keys: list[int], probes: list[int]) -> None:
    """find(): a code's index among the segment's pairs, -1 where it has none; keys come back whole."""
    codes = np.array(sorted(keys), np.int64)
    bounds = np.arange(codes.size + 1, dtype=np.int64)
    segment = ledger_module._Segment.packed(
        0, codes, bounds, np.full(codes.size, DAY), np.zeros(codes.size, np.float32)
    )
    asked = np.array(sorted(probes + keys[:3]), np.int64)
    assert segment.keys.tolist() == codes.tolist()
    assert segment.find(asked).tolist() == [
        sorted(keys).index(c) if c in keys else -1 for c in asked.tolist()
    ]
