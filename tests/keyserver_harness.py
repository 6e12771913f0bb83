"""Helpers for the key-server tests and benchmarks: keys, fresh databases, a real server process.

Databases: SQLite always; PostgreSQL too when ``PROXIMITY_TEST_POSTGRES`` holds an admin URL (``make
test-postgres`` starts a throwaway cluster and sets it); each test gets a database of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from proximity.keyfiles.gaen_export import generate_signing_key, signing_key_pem
from proximity.server.certificates import mint_certificate
from proximity.server.db import open_database
from proximity.server.mac import tek_mac

POSTGRES_ENV = "PROXIMITY_TEST_POSTGRES"
ISSUER = "health.example"
AUDIENCE = "proximity-test"


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get(POSTGRES_ENV) else ["sqlite"]


def new_database(backend: str, directory: Path) -> str:
    """A fresh, empty database: a SQLite path or the URL of a new PostgreSQL database."""
    if backend == "sqlite":
        return str(directory / f"keys-{uuid.uuid4().hex[:8]}.sqlite")
    import psycopg

    admin = os.environ[POSTGRES_ENV]
    name = f"proximity_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return admin.rsplit("/", 1)[0] + "/" + name


@dataclass(frozen=True)
class Keys:
    authority: ec.EllipticCurvePrivateKey
    authority_pem: Path
    authority_public: Path
    signing_pem: Path
    signing_public: Path

    def certificate(
        self,
        segments: Sequence[str],
        *,
        hmac_key: bytes | None = None,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        report_type: str = "confirmed",
        **extra: Any,
    ) -> tuple[str, str]:
        """(certificate, hmacKey base64) vouching for ``segments``."""
        import base64

        key = hmac_key or os.urandom(32)
        token = mint_certificate(
            self.authority,
            issuer=issuer,
            audience=audience,
            tekmac=tek_mac(key, segments),
            report_type=report_type,
            **extra,
        )
        return token, base64.b64encode(key).decode()


def make_keys(directory: Path) -> Keys:
    directory.mkdir(parents=True, exist_ok=True)
    authority = generate_signing_key()
    paths = []
    for name, key in (("authority", authority), ("signing", generate_signing_key())):
        private, public = signing_key_pem(key)
        (directory / f"{name}.pem").write_bytes(private)
        (directory / f"{name}.pub.pem").write_bytes(public)
        paths += [directory / f"{name}.pem", directory / f"{name}.pub.pem"]
    return Keys(authority, *paths)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "proximity.cli.main", *argv]


def storage_args(db: str, keys: Keys, min_keys: int = 20) -> list[str]:
    return ["--db", db, "--signing-key", str(keys.signing_pem), "--region", "TE", "--min-keys", str(min_keys)]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)


@contextlib.contextmanager
def running_server(db: str, keys: Keys, *extra: str, log: Path | None = None) -> Iterator[Server]:
    """``proximity serve`` in its own process on a free port, healthy before this yields."""
    port = free_port()
    argv = cli(
        "serve",
        *storage_args(db, keys),
        "--authority",
        f"{ISSUER}={keys.authority_public}",
        "--audience",
        AUDIENCE,
        "--port",
        str(port),
        "--batch-minutes",
        "100000",
        *extra,
    )
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}")
    try:
        wait_healthy(server)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        if log:
            out.close()  # type: ignore[union-attr]


def wait_healthy(server: Server, timeout: float = 120.0) -> None:
    """Poll /healthz until it answers (the timeout is only a safety net)."""
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with {server.process.returncode}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not become healthy")
        time.sleep(0.1)


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return bytes(response.read())


def post_raw(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, data = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, data = error.code, error.read()
    return status, json.loads(data)


def count_rows(db: str, table: str = "exposures") -> int:
    database = open_database(db, pool_size=1)
    try:
        with database.transaction(write=False) as tx:
            row = tx.fetchone(f"SELECT COUNT(*) FROM {table}")
    finally:
        database.close()
    assert row is not None
    return int(row[0])
