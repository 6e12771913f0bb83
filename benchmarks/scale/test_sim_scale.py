"""The simulator's long runs (`make bench-scale`, single rounds, JSON report; not in `make bench`).

- quang-ninh (its own scenario file at each commit, adoption 0.58, seed 0, no Dask) here and at a
  baseline checkout (``PROXIMITY_BASELINE=/path/to/checkout``, e.g. commit 99c02a7), alternately in
  the same run, each in a fresh process; the ratio is in extra_info.
- the 100,000-agent city (simulations/city.toml) for ``PROXIMITY_CITY_MINUTES`` simulated minutes
  (default 60, from noon: a busy hour) in a fresh process: wall time, peak RSS, the day extrapolated.
- the city's whole day (``PROXIMITY_CITY_DAY_SHARDS`` shards, default 2) on a LocalCluster of 2
  workers, the must-show run: wall time, the workers' CPU, each worker's and the client's peak RSS,
  and the RSS of all the run's processes together (the client, whose LocalCluster's nannies run in
  it, the workers and multiprocessing's resource tracker), sampled every 5 s.
- the 1,000,000-agent hour (simulations/city-1m.toml) for ``PROXIMITY_1M_MINUTES`` (default 60; two
  lengths, e.g. ``1,2``, tell set-up from the per-minute cost) on a Dask LocalCluster of 1 and of 2
  workers (``memory_limit`` 4 GB each): wall time, the workers' CPU and each worker process's peak
  RSS (``PROXIMITY_1M_WORKERS=2`` for the 2-worker cluster alone); ``PROXIMITY_SCHEDULER=tcp://host:8786``
  runs it on a real cluster instead.

Every figure is one round on whatever the machine is doing: compare runs made side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOON = 12 * 3600.0

QUANG_NINH_CHILD = """
import json, resource, sys, time
from proximity.sim.scenario import load_scenario
from proximity.sim.run import run_simulation
import proximity
scenario = load_scenario(sys.argv[1])
started, cpu = time.perf_counter(), time.process_time()
result = run_simulation(scenario, 0.58, 0)
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"elapsed": elapsed, "cpu": cpu, "package": proximity.__file__,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": [[r.estimator, r.sightings, r.logged, r.detected, r.false_positives]
                           for r in result.rows]}))
"""

WINDOW_CHILD = """
import dataclasses, json, resource, sys, threading, time
import psutil
from proximity.sim import load_scenario
# every SAMPLE_SECONDS the RSS of this process and all its descendants (a LocalCluster's workers and
# multiprocessing's resource tracker; its nannies run in this process) summed: the memory in use at
# once, which the per-process peaks only bound from above
sampled = {"all": 0.0, "count": 0}
def sample(stop, me=psutil.Process()):
    while not stop.wait(SAMPLE_SECONDS):
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:  # gone meanwhile
                pass
        sampled["all"] = max(sampled["all"], total / 2**20)
        sampled["count"] += 1
stop = threading.Event()
threading.Thread(target=sample, args=(stop,), daemon=True).start()
from proximity.sim.split import run_split
city = load_scenario(sys.argv[1])
minutes, offset, workers, scheduler = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
shards = int(sys.argv[6]) if len(sys.argv) > 6 else city.shards
scenario = dataclasses.replace(city, duration=60 * minutes, start=city.start + offset, shards=shards)
started, cpu = time.perf_counter(), time.process_time()
before = resource.getrusage(resource.RUSAGE_CHILDREN)
if workers == 0:
    from proximity.sim import run_simulation
    result = run_simulation(scenario, city.adoption[0], 0)
else:
    result = run_split(scenario, city.adoption[0], 0, shards=scenario.shards, workers=workers,
                       scheduler=scheduler or None, memory_limit="4GB")
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
stop.set()
# a LocalCluster's workers are this process's children, joined when the cluster closes: their CPU
after = resource.getrusage(resource.RUSAGE_CHILDREN)
workers_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
row = result.rows[0]
print(json.dumps({"elapsed": elapsed, "cpu": cpu, "workers_cpu": workers_cpu,
                  "stats": result.stats, "sightings": row.sightings,
                  "app_users": row.app_users, "true_contacts": row.true_contacts,
                  "hearing_radius_m": row.hearing_radius_m,
                  "client_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "sampled_rss_mb_all_processes": sampled["all"], "rss_samples": sampled["count"]}))
""".replace("SAMPLE_SECONDS", "5.0")


def _child(code: str, *args: str, cwd: Path = ROOT, pythonpath: str | None = None) -> dict[str, Any]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    command = [sys.executable, "-c", code, *args]
    out = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env)
    if out.returncode != 0:  # a long run's failure must say why (its workers' logs are in stderr)
        raise AssertionError(f"the run exited with {out.returncode}:\n{out.stderr[-20000:]}")
    found: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def test_quang_ninh_against_the_baseline(benchmark: Any) -> None:
    baseline = os.environ.get("PROXIMITY_BASELINE")
    here = ROOT / "simulations" / "quang-ninh.toml"

    def both() -> dict[str, Any]:
        got: dict[str, Any] = {"now": _child(QUANG_NINH_CHILD, str(here))}
        if baseline:  # its own code and its own scenario file
            base = Path(baseline)
            got["base"] = _child(
                QUANG_NINH_CHILD, str(base / "simulations" / "quang-ninh.toml"), cwd=base,
                pythonpath=str(base / "src"),
            )  # fmt: skip
            assert got["base"]["package"].startswith(str(base)), "the baseline imported this checkout"
        return got

    got = benchmark.pedantic(both, rounds=1, iterations=1)
    benchmark.extra_info["seconds"] = round(got["now"]["elapsed"], 2)
    benchmark.extra_info["cpu_seconds"] = round(got["now"]["cpu"], 2)
    benchmark.extra_info["rows"] = got["now"]["rows"]
    if "base" in got:
        benchmark.extra_info["baseline_seconds"] = round(got["base"]["elapsed"], 2)
        benchmark.extra_info["baseline_cpu_seconds"] = round(got["base"]["cpu"], 2)
        benchmark.extra_info["baseline_rows"] = got["base"]["rows"]
        benchmark.extra_info["speedup"] = round(got["base"]["elapsed"] / got["now"]["elapsed"], 2)
        # on a shared machine the CPU ratio is the steadier one (the process's own time)
        benchmark.extra_info["cpu_speedup"] = round(got["base"]["cpu"] / got["now"]["cpu"], 2)


def _minutes(name: str) -> float:
    value = float(os.environ.get(name, "60"))
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of minutes, got {value}")
    return value


def test_city_window(benchmark: Any) -> None:
    """The 100,000-agent city for a window (default: the hour from noon), one process, no Dask."""
    minutes = _minutes("PROXIMITY_CITY_MINUTES")
    city = ROOT / "simulations" / "city.toml"
    info = benchmark.pedantic(
        _child, args=(WINDOW_CHILD, str(city), str(minutes), str(NOON), "0", ""), rounds=1, iterations=1
    )
    benchmark.extra_info["simulated_minutes"] = minutes
    benchmark.extra_info["wall_seconds"] = round(info["elapsed"], 1)
    benchmark.extra_info["cpu_seconds_per_simulated_minute"] = round(info["cpu"] / minutes, 2)
    benchmark.extra_info["peak_rss_mb"] = round(info["client_peak_rss_mb"], 1)
    benchmark.extra_info["day_minutes_extrapolated"] = round(info["elapsed"] * 1440 / minutes / 60, 1)
    benchmark.extra_info.update({k: info[k] for k in ("sightings", "app_users", "hearing_radius_m")})
    assert info["sightings"] > 0


def test_city_day_on_dask(benchmark: Any) -> None:
    """The 100,000-agent city's whole day (simulations/city.toml as it is) split into shards on a
    LocalCluster of 2 workers, one per core: the ≤ 30 minute, ≤ 2 GB run of issue 17."""
    shards = int(os.environ.get("PROXIMITY_CITY_DAY_SHARDS", "2"))
    city = ROOT / "simulations" / "city.toml"
    info = benchmark.pedantic(
        _child, args=(WINDOW_CHILD, str(city), "1440", "0", "2", "", str(shards)), rounds=1, iterations=1
    )
    extra = benchmark.extra_info
    extra["shards"] = shards
    extra["wall_minutes"] = round(info["elapsed"] / 60, 1)
    extra["workers_cpu_minutes"] = round(info["workers_cpu"] / 60, 1)
    peaks = [v for k, v in sorted(info["stats"].items()) if k.startswith("peak_rss")]
    extra["worker_peak_rss_mb"] = peaks
    extra["client_peak_rss_mb"] = round(info["client_peak_rss_mb"], 1)
    if shards <= 2:  # one shard per worker: the sum is every process's peak at once, at most
        extra["peak_rss_mb_all_processes"] = round(sum(peaks) + info["client_peak_rss_mb"], 1)
    # what was in use at once, sampled every 5 s: the client, the workers and the resource tracker
    extra["sampled_rss_mb_all_processes"] = round(info["sampled_rss_mb_all_processes"], 1)
    extra.update({k: info[k] for k in ("sightings", "app_users", "true_contacts", "hearing_radius_m")})
    extra["held"] = {k: v for k, v in info["stats"].items() if k.startswith(("peak_close", "peak_heard"))}
    assert info["sightings"] > 0 and info["true_contacts"] > 0


def _window_lengths(name: str) -> list[float]:
    """One window length in minutes, or two ("1,2"): then the per-minute cost is their difference and
    the set-up (keys, crowd, Dask) what is left of the shorter window."""
    raw = os.environ.get(name, "60")
    problem = f"{name} must be one or two different positive numbers of minutes (60, 1,2), got {raw!r}"
    try:
        values = sorted(float(v) for v in raw.split(","))
    except ValueError:
        raise ValueError(problem) from None
    if not 1 <= len(values) <= 2 or len(set(values)) != len(values) or not all(v > 0 for v in values):
        raise ValueError(problem)
    return values


def _worker_counts() -> list[int]:
    """``PROXIMITY_1M_WORKERS`` (default "1,2"): the LocalCluster sizes to run the 1M window on."""
    raw = os.environ.get("PROXIMITY_1M_WORKERS", "1,2")
    try:
        counts = [int(v) for v in raw.split(",")]
    except ValueError:
        raise ValueError(f"PROXIMITY_1M_WORKERS must be worker counts like 1,2, got {raw!r}") from None
    if not counts or any(c < 1 for c in counts):
        raise ValueError(f"PROXIMITY_1M_WORKERS must be worker counts like 1,2, got {raw!r}")
    return counts


@pytest.mark.parametrize("workers", _worker_counts())
def test_million_agent_window_on_dask(benchmark: Any, workers: int) -> None:
    """The 1,000,000-agent city (default: an hour) split into its scenario's shards on a LocalCluster
    of ``workers`` (or on PROXIMITY_SCHEDULER); each worker's peak RSS is in extra_info. With two
    window lengths (PROXIMITY_1M_MINUTES=1,2) the set-up and the per-minute cost are told apart and
    the hour is extrapolated from them (one length alone scales its set-up with the window)."""
    lengths = _window_lengths("PROXIMITY_1M_MINUTES")
    scheduler = os.environ.get("PROXIMITY_SCHEDULER", "")
    city = ROOT / "simulations" / "city-1m.toml"

    def windows() -> list[dict[str, Any]]:
        return [_child(WINDOW_CHILD, str(city), str(m), "0", str(workers), scheduler) for m in lengths]

    infos = benchmark.pedantic(windows, rounds=1, iterations=1)
    extra = benchmark.extra_info
    extra["workers"] = workers
    extra["simulated_minutes"] = lengths
    extra["wall_seconds"] = [round(i["elapsed"], 1) for i in infos]
    # the workers' CPU (a LocalCluster's; 0 on a remote scheduler) and the client's own
    extra["workers_cpu_seconds"] = [round(i["workers_cpu"], 1) for i in infos]
    extra["client_cpu_seconds"] = [round(i["cpu"], 1) for i in infos]
    extra["worker_peak_rss_mb"] = [
        [v for k, v in sorted(i["stats"].items()) if k.startswith("peak_rss")] for i in infos
    ]
    extra["client_peak_rss_mb"] = [round(i["client_peak_rss_mb"], 1) for i in infos]
    extra["sightings"] = [i["sightings"] for i in infos]
    extra.update({k: infos[0][k] for k in ("app_users", "hearing_radius_m")})
    # what the shards held at their peak (summed over shards): how memory would grow over a longer window
    held = ("peak_close", "peak_heard", "chunks")
    extra["held"] = [{k: v for k, v in i["stats"].items() if k.startswith(held)} for i in infos]
    if len(lengths) == 2:
        span = lengths[1] - lengths[0]
        for name, key in (("wall", "elapsed"), ("workers_cpu", "workers_cpu")):
            per_minute = (infos[1][key] - infos[0][key]) / span
            setup = infos[0][key] - lengths[0] * per_minute
            extra[f"{name}_seconds_per_minute"] = round(per_minute, 1)
            extra[f"{name}_setup_seconds"] = round(setup, 1)
            extra[f"{name}_hour_minutes_extrapolated"] = round((setup + 60 * per_minute) / 60, 1)
    else:  # the set-up is counted once per minute of the window: an overestimate for short windows
        extra["hour_minutes_extrapolated"] = round(infos[0]["elapsed"] * 60 / lengths[0] / 60, 1)
    assert all(i["sightings"] > 0 for i in infos)
