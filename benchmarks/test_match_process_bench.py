"""`proximity match` as a whole process (100,000 GAEN keys in signed export files x 100,000 observed
RPIs in an encounter log, one worker), as a ratio to the `openssl speed` ceiling measured in the same run.

The ceiling is what libcrypto alone needs per key: two HMAC-SHA256 (HKDF extract and expand of the
RPIK; openssl's 32-byte HMAC rate) plus 144 AES-128-ECB blocks (openssl's 8 KiB-buffer rate, i.e.
AES-NI throughput). It is ONE core's figure: openssl speed runs one thread.

``whole_process_ratio`` divides 100,000 by the wall time of the whole command, interpreter start-up and
all, as installed: Python's bytecode cache written (a warm-up run writes it to a scratch directory, as
pip's install does for site-packages) and the C backend on its default threads (every CPU the process
may use). Beside it, same run: ``whole_process_ratio_1thread`` (PROXIMITY_CRYPTO_THREADS=1: compare
with the single-core ceiling like for like) and ``whole_process_ratio_no_bytecode`` (every module
compiled at each start, as under PYTHONDONTWRITEBYTECODE=1). ``marginal_ratio`` takes the cost of
100,000 more keys (a 200,000-key run minus the 100,000-key run), which is what the command's own
per-key work costs. Goal (issue 16): >= 0.3.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_matching_bench import DAY, START, _write_files

KEYS = 100_000
OBSERVED = 100_000


def _openssl_rate(args: list[str], size: int) -> float:
    """Bytes per second openssl reports for ``args`` at buffer ``size``."""
    out = subprocess.run(
        ["openssl", "speed", "-seconds", "2", "-bytes", str(size), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    last = out.strip().splitlines()[-1]
    value = re.findall(r"([\d.]+)k\s*$", last)
    assert value, out
    return float(value[0]) * 1000


def ceiling_keys_per_s() -> tuple[float, dict[str, float]]:
    aes_bytes = _openssl_rate(["-evp", "aes-128-ecb"], 8192)
    hmac_ops = _openssl_rate(["-hmac", "sha256"], 32) / 32
    per_key = 2 / hmac_ops + 144 * 16 / aes_bytes
    return 1 / per_key, {"aes128_ecb_bytes_per_s": aes_bytes, "hmac_sha256_32b_per_s": hmac_ops}


def _observed(path: Path, n: int) -> None:
    """An encounter log of ``n`` GAEN sightings over the keys' 14 days (what a node writes)."""
    from proximity.log import EncounterLog

    rng = np.random.default_rng(4)
    ids = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    times = rng.uniform(START * 600 - 13 * 86400, START * 600 + 86400, n)
    with EncounterLog(path) as log:
        log.add_columns("gaen", ids, times, np.full(n, -60.0))


def _environment(pycache: Path | None, threads: int | None = None) -> dict[str, str]:
    """The command's environment: bytecode cached under ``pycache`` (None: never written), and the
    C backend's thread count (None: its default)."""
    env = dict(os.environ)
    env.pop("PROXIMITY_CRYPTO_THREADS", None)
    if threads is not None:
        env["PROXIMITY_CRYPTO_THREADS"] = str(threads)
    if pycache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def _run(pem: Path, paths: list[Path], observed: Path, env: dict[str, str]) -> float:
    argv = [sys.executable, "-m", "proximity", "match", "--keys", *map(str, paths), "--pubkey"]
    argv += [f"bench:v1={pem}", "--log", str(observed), "--workers", "1", "--json"]
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True, env=env)
    return time.perf_counter() - started


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_match_command_vs_openssl_ceiling(benchmark: Any, tmp_path: Path) -> None:
    assert DAY  # the shared fixtures' epoch
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir()
    large.mkdir()
    pem, paths = _write_files(small, 10, KEYS // 10)
    pem2, paths2 = _write_files(large, 20, KEYS // 10)
    observed = tmp_path / "observed.db"
    _observed(observed, OBSERVED)
    installed = _environment(tmp_path / "pycache")
    _run(pem, paths, observed, installed)  # writes the bytecode cache
    seconds = benchmark.pedantic(_run, args=(pem, paths, observed, installed), rounds=3, iterations=1)
    assert seconds > 0
    whole = min(benchmark.stats.stats.min, seconds)
    one_thread = min(_run(pem, paths, observed, _environment(tmp_path / "pycache", 1)) for _ in range(3))
    compiling = min(_run(pem, paths, observed, _environment(None)) for _ in range(3))
    double = min(_run(pem2, paths2, observed, installed) for _ in range(3))
    ceiling, rates = ceiling_keys_per_s()
    whole_rate = KEYS / whole
    marginal_rate = KEYS / max(double - whole, 1e-9)
    benchmark.extra_info.update(
        keys=KEYS,
        observed=OBSERVED,
        crypto_threads=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        whole_process_keys_per_s=round(whole_rate),
        marginal_keys_per_s=round(marginal_rate),
        openssl_ceiling_keys_per_s=round(ceiling),
        whole_process_ratio=round(whole_rate / ceiling, 3),
        whole_process_ratio_1thread=round(KEYS / one_thread / ceiling, 3),
        whole_process_ratio_no_bytecode=round(KEYS / compiling / ceiling, 3),
        marginal_ratio=round(marginal_rate / ceiling, 3),
        target_ratio=0.3,
        **{k: round(v) for k, v in rates.items()},
    )
