"""The C packet kernel against its numpy reference, and the heard-first draw against drawing fading first."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from proximity.sim import CrowdParams, Scenario, World
from proximity.sim.channel import ChannelParams, heard_chance, heard_fading
from proximity.sim.native import kernel as kernel_module
from proximity.sim.streams import normal_quantile
from proximity.sim.world import native_kernel
from proximity.times import LATEST_TIME


def _busy() -> Scenario:
    """A small busy room (bodies on the line of sight, everyone within reach) and Bluezone's cycle."""
    crowd = CrowdParams(
        agents=60, width=12, height=9, stationary=0.4, waypoint=0.4, group=0.2, pause=(0, 300),
        arrival_spread=300, dwell=1200,
    )  # fmt: skip
    return Scenario(name="busy", crowd=crowd, duration=600, chunk=300, scheme="bluezone")


def _spread() -> Scenario:
    """A sparse square where most pairs are out of each other's radius (the city's case), GAEN's cycle."""
    crowd = CrowdParams(agents=1500, width=1200, height=900, stationary=0.6, waypoint=0.3, group=0.1)
    return Scenario(name="spread", crowd=crowd, duration=8, chunk=4, scheme="gaen", duty="continuous")


def _odd_channel() -> Scenario:
    """The sparse square with a channel unlike the default: encounters of a few seconds (so a step often
    spans two: the kernel's cheap rejection must stand aside), no flat loss, fading that deepens with
    distance, a sharp waterfall: the kernel's bounds are computed from the channel, not assumed."""
    channel = dataclasses.replace(
        ChannelParams(), encounter_seconds=2.5, packet_loss=0.0, fading_slope=0.3, sensitivity_width=0.5,
        far_fading_sigma=2.0, min_distance=1.0,
    )  # fmt: skip
    return dataclasses.replace(_spread(), channel=channel)


@pytest.mark.skipif(not native_kernel(), reason="the C kernel was not built (no compiler)")
@pytest.mark.parametrize(
    ("make", "adoption"),
    [(_busy, 0.9), (_spread, 0.6), (lambda: _no_bodies(_busy()), 0.9), (_odd_channel, 0.6)],
)
@pytest.mark.parametrize("wide", [True, False], ids=["wide", "narrow"])
def test_the_c_kernel_gives_the_numpy_references_packets(make: object, adoption: float, wide: bool) -> None:
    """Both of the kernel's screen loops (AVX-512 where the CPU has it, and the portable one): the wide
    case runs the portable loop too on a CPU without AVX-512."""
    scenario = make()  # type: ignore[operator]
    chunks = {}
    assert kernel_module is not None
    try:
        kernel_module.wide(wide)
        for kernel in ("native", "numpy"):
            world = World(scenario, adoption, 3)
            world.kernel = kernel
            chunks[kernel] = list(world.chunks())
    finally:
        kernel_module.wide(True)
    total = 0
    for a, b in zip(chunks["native"], chunks["numpy"], strict=True):
        total += len(a)
        for column in ("times", "scanner", "advertiser", "distance"):
            assert np.array_equal(getattr(a, column), getattr(b, column)), column
        # libm's log10/exp/sqrt against numpy's own: the same formulas, equal to the last bits
        assert np.allclose(a.rssi, b.rssi, rtol=0, atol=1e-9)
    assert total > 100


@pytest.mark.skipif(not native_kernel(), reason="the C kernel was not built (no compiler)")
def test_both_screen_loops_give_the_same_packets_byte_for_byte() -> None:
    """A city-like square (sparse, most pairs out of reach, a few minutes): the portable walk and the
    AVX-512 screen (where the CPU has it) give every column identical, the RSSI's last bits too."""
    scenario = dataclasses.replace(_spread(), duration=60, chunk=30)
    assert kernel_module is not None
    chunks = {}
    try:
        for wide in (False, True):
            kernel_module.wide(wide)
            chunks[wide] = list(World(scenario, 0.6, 5).chunks())
    finally:
        kernel_module.wide(True)
    assert sum(len(c) for c in chunks[False]) > 1000
    for a, b in zip(chunks[False], chunks[True], strict=True):
        for column in ("times", "scanner", "advertiser", "distance", "rssi"):
            assert np.array_equal(getattr(a, column), getattr(b, column)), column


@pytest.mark.skipif(not native_kernel(), reason="the C kernel was not built (no compiler)")
def test_threads_running_the_kernel_at_once_get_the_packets_of_one_run_alone() -> None:
    """The kernel keeps its work buffers from call to call and runs without the GIL: a call made while
    another thread's call holds them works in buffers of its own. Four runs at once, each as one alone."""
    scenario = dataclasses.replace(_spread(), duration=40, chunk=20)
    alone = list(World(scenario, 0.6, 5).chunks())
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: list(World(scenario, 0.6, 5).chunks()), range(4)))
    assert sum(len(c) for c in alone) > 1000
    for chunks in runs:
        for a, b in zip(alone, chunks, strict=True):
            for column in ("times", "scanner", "advertiser", "distance", "rssi"):
                assert np.array_equal(getattr(a, column), getattr(b, column)), column


def _no_bodies(scenario: Scenario) -> Scenario:
    return dataclasses.replace(scenario, channel=dataclasses.replace(scenario.channel, body_loss=0.0))


def test_drawing_reception_first_gives_the_distribution_of_drawing_fading_first() -> None:
    """heard_chance + heard_fading (fading drawn only for heard packets, given that they were heard) against
    the direct draw (fading first, then the waterfall), at levels from certain to rare reception."""
    channel = ChannelParams()
    rng = np.random.default_rng(5)
    n = 400_000
    for level, depth in ((-80.0, 3.0), (-100.0, 4.0), (-112.0, 5.57)):
        lv, dp = np.full(n, level), np.full(n, depth)
        z = rng.standard_normal(n)
        direct = level + depth * z
        p = (1 - channel.packet_loss) * _phi((direct - channel.sensitivity_dbm) / channel.sensitivity_width)
        heard_direct = rng.random(n) < p
        u = rng.random(n)
        heard = u < heard_chance(channel, lv, dp)
        rssi = lv[heard] + heard_fading(channel, dp[heard], u[heard], rng.random(int(heard.sum())))
        a, b = heard_direct.mean(), heard.mean()
        assert abs(a - b) < 5 * np.sqrt(a * (1 - a) / n) + 1e-6
        if heard.sum() > 1000:
            want = direct[heard_direct]
            assert abs(rssi.mean() - want.mean()) < 5 * want.std() / np.sqrt(want.size)
            assert rssi.std() == pytest.approx(want.std(), rel=0.05)


def _phi(z: np.ndarray) -> np.ndarray:
    from math import erf, sqrt

    out: np.ndarray = 0.5 * (1 + np.vectorize(erf)(z / sqrt(2)))
    return out


def test_the_normal_quantile_matches_scipy() -> None:
    special = pytest.importorskip("scipy.special")
    p = np.concatenate([np.linspace(1e-12, 1 - 1e-12, 100_001), [5.5e-17, 1e-300, 0.5]])
    want = special.ndtri(p)
    got = normal_quantile(p)
    # Acklam's approximation: 6.4e-6 of the value at worst (at its tails' joins), far below any dB
    assert np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))) < 1e-5
    assert np.all(np.diff(normal_quantile(np.linspace(0.001, 0.999, 9999))) > 0)


def test_pair_radii_follow_the_hours_carriage_and_both_paths_agree_across_an_hour() -> None:
    """A batch searches each phone at its loudest carriage of the hours it spans (not of the whole run),
    and the C kernel and the numpy reference give the same packets on steps either side of an hour."""
    scenario = dataclasses.replace(_spread(), duration=7200.0)
    world = World(scenario, 0.6, 3)
    loss = np.asarray(scenario.channel.carriage_loss)[world.carriage_hours]
    first, second, across = world._reach_at(0, 1), world._reach_at(3600, 3601), world._reach_at(3598, 3602)
    assert np.array_equal(first.tx, world.device_tx - loss[:, 0])
    assert np.array_equal(second.rx, world.device_rx - loss[:, 1])
    assert np.array_equal(across.tx, world.device_tx - loss.min(axis=1))
    assert np.array_equal(across.tx, world.reach.tx)  # two hours: the run's loudest
    assert (first.tx != second.tx).any()
    if not native_kernel():
        pytest.skip("the C kernel was not built (no compiler)")
    heard = {}
    for kernel in ("native", "numpy"):
        w = World(scenario, 0.6, 3)
        w.kernel = kernel
        heard[kernel] = [w._batch(k, k + 1)[0] for k in range(3597, 3603)]
    for a, b in zip(heard["native"], heard["numpy"], strict=True):
        for column in (0, 1, 2, 4):  # times, scanner, advertiser, distance
            assert np.array_equal(a[column], b[column])
        assert np.allclose(a[3], b[3], rtol=0, atol=1e-9)
    assert sum(len(a[0]) for a in heard["native"]) > 100


@pytest.mark.parametrize("kernel", ["native", "numpy"])
def test_every_packet_stays_inside_its_step_where_times_round_coarsely(kernel: str) -> None:
    """Near year 9998 a float's spacing is 3e-5 s, so t0 + u dt rounds up to the next step's start for
    u within 1.5e-5 of 1 (at 2020's 1.6e9 s, 1.2e-7: a city day has ~1 billion packets). Such a packet is
    kept just inside its step; at a chunk's last step it was outside the chunk, and writing it to the
    log failed ("sightings must lie in [since, until)"). One-step chunks: every step is a chunk's last."""
    if kernel == "native" and not native_kernel():
        pytest.skip("the C kernel was not built (no compiler)")
    scenario = _spread()
    start = float(LATEST_TIME - scenario.duration - 1)
    scenario = dataclasses.replace(scenario, start=start, chunk=scenario.step)
    world = World(scenario, 0.6, 1)
    world.kernel = kernel
    kept = total = 0
    for chunk in world.chunks():
        assert chunk.end == chunk.start + scenario.step
        assert chunk.times.min() >= chunk.start and chunk.times.max() < chunk.end
        kept += int((chunk.times == np.nextafter(chunk.end, -np.inf)).sum())
        total += chunk.times.size
    assert total > 10_000 and kept >= 1  # the case occurred (with this seed: 4 packets)
