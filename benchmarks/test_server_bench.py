"""Key server: publish requests per second at 1, 10 and 50 concurrent clients (SQLite, and PostgreSQL
when ``make bench`` could start a throwaway cluster), over real HTTP on 127.0.0.1; and one export pass
over 1,000,000 keys (time and peak memory of the `serve-export` process).

Numbers go into ``extra_info`` (.benchmarks/report.json) and are printed; every request must succeed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from keyserver_harness import (
    ISSUER,
    backends,
    make_keys,
    new_database,
    running_server,
    storage_args,
)
from proximity.schemes.gaen import TemporaryExposureKey
from proximity.server.client import gaen_publish_request, gaen_segments
from proximity.server.db import open_database
from proximity.times import SECONDS_PER_DAY, now

KEYS_PER_UPLOAD = 14  # two weeks of keys, as a typical app uploads
REQUESTS_PER_CLIENT = {1: 200, 10: 60, 50: 16}
EXPORT_KEYS = 1_000_000
# `proximity` printing its own peak RSS on exit (the worker's alone, not the test's other children's)
_REPORT_PEAK = (
    "import resource, sys; from proximity.cli.main import main; code = main(sys.argv[1:]); "
    "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(code)"
)


def _documents(keys: Any, count: int) -> list[dict[str, Any]]:
    today = TemporaryExposureKey.generate(now()).rolling_start_interval_number
    out = []
    for _ in range(count):
        teks = [TemporaryExposureKey(os.urandom(16), today - 144 * (d + 1)) for d in range(KEYS_PER_UPLOAD)]
        certificate, hmac_key = keys.certificate(gaen_segments(teks))
        out.append(gaen_publish_request(teks, certificate=certificate, hmac_key=hmac_key, authority=ISSUER))
    return out


async def _load(url: str, documents: list[list[dict[str, Any]]]) -> tuple[int, int, float]:
    """Each simulated phone has its own HTTP client and connection, as real phones do. (One shared
    httpx client for all of them made the client's connection pool the bottleneck at 50.)"""
    ok = errors = 0

    async def one_client(batch: list[dict[str, Any]]) -> None:
        nonlocal ok, errors
        async with httpx.AsyncClient(timeout=120) as client:
            for document in batch:
                response = await client.post(url, json=document)
                if (
                    response.status_code == 200
                    and response.json().get("insertedExposures") == KEYS_PER_UPLOAD
                ):
                    ok += 1
                else:
                    errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(one_client(batch) for batch in documents))
    return ok, errors, time.perf_counter() - start


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("clients", [1, 10, 50])
def test_publish_throughput(benchmark: Any, backend: str, clients: int, tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    db = new_database(backend, tmp_path)
    per_client = REQUESTS_PER_CLIENT[clients]
    documents = [_documents(keys, per_client) for _ in range(clients)]
    with running_server(db, keys) as server:
        result: dict[str, Any] = {}

        def run() -> None:
            result["ok"], result["errors"], result["seconds"] = asyncio.run(
                _load(server.url + "/v1/publish", documents)
            )

        benchmark.pedantic(run, rounds=1, iterations=1)
    rate = result["ok"] / result["seconds"]
    benchmark.extra_info.update(
        backend=backend, clients=clients, requests=result["ok"], errors=result["errors"], requests_per_s=rate
    )
    print(
        f"\npublish {backend} {clients} clients: {rate:.0f} req/s "
        f"({result['ok']} ok, {result['errors']} errors)"
    )
    assert result["errors"] == 0 and result["ok"] == clients * per_client


@pytest.mark.parametrize("backend", backends())
def test_export_pass_one_million_keys(benchmark: Any, backend: str, tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    db = new_database(backend, tmp_path)
    database = open_database(db)
    at = int(now())
    day = TemporaryExposureKey.generate(at - 2 * SECONDS_PER_DAY).rolling_start_interval_number
    with database.transaction() as tx:
        for _ in range(EXPORT_KEYS // 100_000):
            tx.executemany(
                "INSERT INTO exposures (key, rolling_start, rolling_period, transmission_risk, report_type, "
                "traveler, health_authority, created_at, available_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (os.urandom(16), day - 144 * (i % 13), 144, 2, 1, 0, ISSUER, at, at)
                    for i in range(100_000)
                ],
            )
    database.close()
    result: dict[str, Any] = {}

    def run() -> None:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _REPORT_PEAK, "serve-export", *storage_args(db, keys), "--json"],
            capture_output=True,
            check=True,
        )
        result["seconds"] = time.perf_counter() - start
        result["stdout"] = done.stdout
        result["peak_kib"] = int(done.stderr.split(b"PEAK_KIB ")[1].split()[0])

    benchmark.pedantic(run, rounds=1, iterations=1)
    peak_mib = result["peak_kib"] / 1024
    benchmark.extra_info.update(
        backend=backend, keys=EXPORT_KEYS, seconds=result["seconds"], peak_rss_mib=peak_mib
    )
    print(
        f"\nexport pass ({backend}) over {EXPORT_KEYS:,} keys: {result['seconds']:.1f} s, "
        f"peak RSS {peak_mib:.0f} MiB"
    )
    assert b'"keys": 1000000' in result["stdout"]
