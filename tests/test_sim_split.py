"""One run split across shards and Dask workers gives byte-identical results to a one-process run."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from proximity.sim import CrowdParams, Scenario, World, run_simulation
from proximity.sim import run as run_module
from proximity.sim.report import write_results
from proximity.sim.run import PairCodes, RunResult, combine, run_shard, shard_owner
from proximity.sim.split import INLINE, dask_client, run_split
from proximity.sim.sweep import sweep

OUTPUTS = ("results.csv", "pair_scores.csv", "contacts.csv", "summary.csv")


def _scenario(scheme: str) -> Scenario:
    """Small but busy: seated and walking agents and a group, arrivals and departures, both estimators
    kinds (vectorised and one by one), a pair judged in pieces (hold) and pairs forgotten (forget)."""
    crowd = CrowdParams(
        agents=36, width=10, height=8, stationary=0.4, waypoint=0.4, group=0.2, pause=(0, 300),
        arrival_spread=600, dwell=1800,
    )  # fmt: skip
    return Scenario(
        name="split",
        crowd=crowd,
        duration=2400,
        chunk=600,
        scheme=scheme,
        estimators=("mean-attenuation", "cwa"),
        forget=600,
        hold=1800,
        contact_minutes=5.0,
    )


def _same(a: RunResult, b: RunResult) -> None:
    assert a.rows == b.rows
    assert a.scores.keys() == b.scores.keys()
    for name, (scores, labels) in a.scores.items():
        assert np.array_equal(scores, b.scores[name][0]) and np.array_equal(labels, b.scores[name][1])
    assert a.contacts.keys() == b.contacts.keys()
    for column, values in a.contacts.items():
        assert values.dtype == b.contacts[column].dtype
        assert np.array_equal(values, b.contacts[column], equal_nan=values.dtype.kind == "f"), column


@pytest.fixture(scope="module", params=["gaen", "bluezone"])
def unsplit(request: pytest.FixtureRequest) -> tuple[Scenario, RunResult]:
    scenario = _scenario(request.param)
    return scenario, run_simulation(scenario, 0.8, 4)


def test_the_scenario_exercises_what_splitting_must_keep(unsplit: tuple[Scenario, RunResult]) -> None:
    _, result = unsplit
    for row in result.rows:
        assert row.true_contacts > 3 and row.detected > 0 and row.flagged > row.detected
        assert row.notified > 0 and row.false_notifications > 0
    assert result.contacts["agent_a"].size > 10


@pytest.mark.parametrize("shards", [2, 3, 7])
def test_split_and_unsplit_runs_give_identical_results(
    unsplit: tuple[Scenario, RunResult], shards: int
) -> None:
    scenario, whole = unsplit
    _same(run_simulation(scenario, 0.8, 4, shards=shards), whole)


def test_shards_in_any_order_combine_to_the_same_result(unsplit: tuple[Scenario, RunResult]) -> None:
    scenario, whole = unsplit
    names = list(scenario.estimators)
    parts = [run_shard(scenario, 0.8, 4, names, shard, 3) for shard in (2, 0, 1)]
    _same(combine(scenario, 0.8, 4, names, parts), whole)
    with pytest.raises(ValueError, match="every shard"):
        combine(scenario, 0.8, 4, names, parts[:2])


def test_a_shard_hears_exactly_the_unsplit_sightings_of_its_own_scanners() -> None:
    scenario = _scenario("gaen")
    owner = shard_owner(scenario.crowd.agents, 2)
    whole = list(World(scenario, 0.8, 4).chunks())
    for shard in (0, 1):
        mine = list(World(scenario, 0.8, 4, owned=owner == shard).chunks())
        for a, b in zip(whole, mine, strict=True):
            rows = owner[a.scanner] == shard
            for column in ("times", "scanner", "advertiser", "rssi", "distance"):
                assert np.array_equal(getattr(a, column)[rows], getattr(b, column)), column
            n = np.int64(scenario.crowd.agents)
            lower = (a.close_keys // n) % n
            assert np.array_equal(a.close_keys[owner[lower] == shard], b.close_keys)
            assert np.array_equal(a.close_seconds[owner[lower] == shard], b.close_seconds)


def test_the_memory_log_gives_the_sqlite_logs_results(unsplit: tuple[Scenario, RunResult]) -> None:
    scenario, whole = unsplit
    _same(run_simulation(dataclasses.replace(scenario, log="sqlite"), 0.8, 4), whole)


def test_judging_settled_pairs_in_small_pieces_changes_nothing(
    unsplit: tuple[Scenario, RunResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario, whole = unsplit
    monkeypatch.setattr(run_module, "JUDGED_ROWS", 7)
    _same(run_simulation(scenario, 0.8, 4), whole)


@pytest.mark.parametrize("limit", [1, 3, 10, 1000])
def test_a_ledger_settles_in_pieces_what_it_settles_at_once(limit: int) -> None:
    from proximity.sim.ledger import HeardPairs

    rng = np.random.default_rng(limit)
    whole, pieces = HeardPairs(6, 300.0, 900.0), HeardPairs(6, 300.0, 900.0)
    now = 1.6e9
    for _ in range(8):
        k = int(rng.integers(0, 60))
        batch = (
            rng.integers(0, 6, k),
            rng.integers(-1, 6, k),
            (now + np.sort(rng.uniform(0, 300, k))).astype(np.float64),
            rng.integers(-100, -40, k).astype(np.float64),
        )
        whole.add(*batch)
        pieces.add(*batch)
        now += 300.0
        for final in (False, True) if now > 1.6e9 + 2000 else (False,):
            want = whole.settle_columns(now, final)
            got = list(pieces.settle_pieces(now, final, limit))
            assert whole.rows == pieces.rows
            if not want[0].size:
                assert not got
                continue
            for column, part in zip(want, zip(*got, strict=True), strict=True):
                assert np.array_equal(np.concatenate(part), column)  # all rows, in order
            held = [set(zip(p[0].tolist(), p[1].tolist(), strict=True)) for p in got]
            assert sum(map(len, held)) == len(set().union(*held))  # no pair in two pieces
            for piece in got:  # a piece runs past its limit only to finish the pair it is in
                last = (piece[0] == piece[0][-1]) & (piece[1] == piece[1][-1])
                assert int((~last).sum()) < limit
            assert len(got) == 1 if limit >= want[0].size else len(got) > 1


def _files(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in OUTPUTS}


def test_one_and_two_dask_workers_write_byte_identical_files(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    scenario = _scenario("gaen")
    runs = {
        "inline-unsplit": sweep(scenario, [0.8], list(scenario.estimators), 2, scheduler=INLINE),
        "one-worker": sweep(scenario, [0.8], list(scenario.estimators), 2, workers=1, shards=2),
        "two-workers": sweep(scenario, [0.8], list(scenario.estimators), 2, workers=2, shards=3),
    }
    files = {}
    for name, result in runs.items():
        assert not result.interrupted and result.missing == 0
        write_results(result, tmp_path / name)
        files[name] = _files(tmp_path / name)
    assert files["one-worker"] == files["inline-unsplit"]
    assert files["two-workers"] == files["inline-unsplit"]


def test_run_split_on_a_local_cluster_matches_the_unsplit_run(unsplit: tuple[Scenario, RunResult]) -> None:
    pytest.importorskip("dask.distributed")
    scenario, whole = unsplit
    result = run_split(scenario, 0.8, 4, shards=2, workers=2, memory_limit="2GB")
    _same(result, whole)
    assert result.stats["shards"] == 2
    assert result.stats["peak_rss_mb_shard0"] > 0 and result.stats["peak_rss_mb_shard1"] > 0


def _malloc_trim() -> str | None:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_cluster_workers_keep_glibcs_own_malloc_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask sets MALLOC_TRIM_THRESHOLD_ for the workers it spawns, which costs a shard ~30 % of CPU in
    page faults; our LocalCluster's workers run without it, unless the user's environment sets it."""
    pytest.importorskip("dask.distributed")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with dask_client(None, 1, 1) as client:
        assert client.submit(_malloc_trim, pure=False).result() is None
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    with dask_client(None, 1, 1) as client:
        assert client.submit(_malloc_trim, pure=False).result() == "131072"


def _loop_wakeups(dask_worker: Any) -> dict[str, float]:
    return {name: float(pc.callback_time) for name, pc in dask_worker.periodic_callbacks.items()}


def test_local_cluster_workers_run_a_quiet_event_loop() -> None:
    """Each wake-up of a worker's event loop takes the GIL from the shard's thread; ours has no
    dashboard, so no profiler, and ticks and monitors no more than once a second."""
    pytest.importorskip("dask.distributed")
    with dask_client(None, 1, 1) as client:
        (wakeups,) = client.run(_loop_wakeups).values()
    assert not any("profile" in name for name in wakeups)
    assert min(wakeups.values()) >= 1000.0  # ms
    assert {"heartbeat", "memory_monitor"} <= set(wakeups)  # the memory limit is still watched


@pytest.mark.parametrize("shards", [0, -1, 1.5, True])
def test_a_bad_number_of_shards_is_refused(shards: object) -> None:
    scenario = _scenario("gaen")
    with pytest.raises(ValueError, match="shards"):
        run_split(scenario, 0.8, 0, shards=shards, scheduler=INLINE)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shards"):
        sweep(scenario, [0.8], ["cwa"], 1, scheduler=INLINE, shards=shards)  # type: ignore[arg-type]


def test_the_five_second_rule_on_int_codes_keeps_what_the_id_keyed_rule_keeps() -> None:
    from proximity.sim.devices import AppDedup
    from proximity.sim.phones import Phones

    scenario = _scenario("bluezone")
    world = World(scenario, 0.8, 4)
    users = np.flatnonzero(world.app).astype(np.int64)
    end = scenario.start + scenario.duration
    phones = Phones(scenario.scheme, users, world.n, scenario.start, end, world.streams("keys"))
    by_id, by_code, by_ordered = AppDedup(5.0), AppDedup(5.0), AppDedup(5.0)
    kept = total = 0
    for chunk in world.chunks():
        ids, _ = phones.broadcast(chunk.advertiser, chunk.times)
        code = (chunk.scanner * world.n + chunk.advertiser) * phones.ids.shape[1] + phones.slot(chunk.times)
        want = by_id.keep(chunk.scanner, ids, chunk.times)
        assert np.array_equal(by_code.keep_keys(code, chunk.times), want)
        # the world's rows come in step order, so the one-key sort the run uses keeps the same rows
        assert np.array_equal(by_ordered.keep_keys(code, chunk.times, time_ordered=True), want)
        kept += int(want.sum())
        total += len(chunk)
    assert 0 < kept < total  # the rule drops rows, and keeps some


@pytest.mark.parametrize("seed", range(8))
def test_the_five_second_rule_in_c_keeps_what_the_numpy_reference_keeps(seed: int) -> None:
    """Keys seen across chunks, rows exactly 5 s apart, ties in time, keys that fall silent."""
    from proximity.sim.devices import AppDedup
    from proximity.sim.native import native_kernel

    if not native_kernel():
        pytest.skip("the C kernel was not built (no compiler)")
    rng = np.random.default_rng(seed)
    native, ordered, reference = AppDedup(5.0), AppDedup(5.0), AppDedup(5.0, native=False)
    start, kept = 1.6e9 + rng.uniform(0, 1e4), 0
    for _ in range(6):
        n = int(rng.integers(0, 400))
        steps = np.sort(rng.integers(0, 60, n))  # one chunk of a minute, in step order
        times = (start + steps + (rng.uniform(0, 1, n) if seed % 2 else 0.0)).astype(np.float64)
        keys = rng.integers(0, 12, n).astype(np.int64)
        want = reference.keep_keys(keys, times)
        assert np.array_equal(native.keep_keys(keys, times), want)
        if seed % 2 == 0:  # times in step order per key: also the one-key sort the run uses
            assert np.array_equal(ordered.keep_keys(keys, times, time_ordered=True), want)
        kept += int(want.sum())
        start += 60.0
    assert kept > 0


def test_pair_codes_hold_the_set_of_pairs_added(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shard's pairs are kept as distinct int64 codes, made distinct now and then (here often): the
    same pairs as a Python set of them, ascending, whatever the order and repeats they came in."""
    monkeypatch.setattr(run_module, "PAIRS_WAITING", 7)
    rng = np.random.default_rng(3)
    kept, expected = PairCodes(30), set()
    for size in rng.integers(0, 25, 40).tolist():
        a, b = rng.integers(0, 30, size), rng.integers(0, 30, size)
        kept.add(a, b)
        expected |= set(zip(a.tolist(), b.tolist(), strict=True))
    kept.update({(29, 0), (1, 2)})
    expected |= {(29, 0), (1, 2)}
    codes = kept.codes()
    assert codes.dtype == np.int64 and bool(np.all(np.diff(codes) > 0))
    assert set(zip(*(c.tolist() for c in np.divmod(codes, 30)), strict=True)) == expected
    assert np.array_equal(kept.codes(), codes)  # asked again: the same
