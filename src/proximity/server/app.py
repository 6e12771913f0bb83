"""The ASGI app (Starlette): publish, index.txt, export files, daily-key records, health.

Handlers stay thin: read the body within the cap, check the content type, hand the JSON to the
publish services (sync code run in the thread pool, one database transaction each) and return their
status and body. ``X-Chaff`` requests get an ordinary-looking 200 and touch nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from proximity.server.config import ServerConfig
from proximity.server.daily_keys import DAILY_KEY_SCHEMES, DailyKeyService
from proximity.server.db import Database
from proximity.server.exporter import EXPORT_NAME, Exporter, export_data, export_index
from proximity.server.publish import PublishResult, PublishService, padding
from proximity.server.tokens import SECRET_LENGTH, RevisionTokens

__all__ = ["create_app", "load_token_secret"]

log = logging.getLogger("proximity.server")


class _RefusalError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[type[_RefusalError], tuple[int, str]]:
        return type(self), (self.status, str(self.args[0]))  # pickles with its status (issue 16)


def load_token_secret(database: Database) -> bytes:
    """The revision-token secret, made once and kept in the database (shared by every server process)."""
    with database.transaction() as tx:
        tx.execute(
            "INSERT INTO secrets (name, value) VALUES ('revision_token', ?) ON CONFLICT (name) DO NOTHING",
            (os.urandom(SECRET_LENGTH),),
        )
        row = tx.fetchone("SELECT value FROM secrets WHERE name = 'revision_token'")
    assert row is not None
    return bytes(row[0])


async def _json_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _RefusalError(413, f"the request is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _RefusalError(413, f"the request is larger than {limit} bytes")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise _RefusalError(415, f"content type {media or '(none)'!r} is not application/json")
    return bytes(body)


def _respond(result: PublishResult) -> JSONResponse:
    return JSONResponse(result.body, status_code=result.status)


def _refused(status: int, message: str) -> JSONResponse:
    code = "internal_error" if status >= 500 else "bad_request"
    return JSONResponse({"error": message, "code": code, "padding": padding()}, status_code=status)


def _chaff() -> JSONResponse:
    fake_token = base64.b64encode(os.urandom(12 + 16 + 1 + 22 * (1 + os.urandom(1)[0] % 14))).decode()
    return JSONResponse({"revisionToken": fake_token, "insertedExposures": 0, "padding": padding()})


def create_app(
    config: ServerConfig,
    database: Database,
    *,
    clock: Callable[[], float] = time.time,
    export_every_seconds: float | None = None,
) -> Starlette:
    """The server for one region; with ``export_every_seconds`` it also runs export passes on a timer."""
    tokens = RevisionTokens(load_token_secret(database))
    gaen = PublishService(config, database, tokens)
    daily = {name: DailyKeyService(scheme, config, database) for name, scheme in DAILY_KEY_SCHEMES.items()}

    async def handle_publish(request: Request, publish: Callable[[object, float], PublishResult]) -> Response:
        try:
            body = await _json_body(request, config.max_body_bytes)
            if "x-chaff" in request.headers:
                return _chaff()
            try:
                document: Any = json.loads(body)
            except (ValueError, UnicodeDecodeError) as error:
                return _refused(400, f"the body is not JSON ({error})")
            return _respond(await run_in_threadpool(publish, document, clock()))
        except _RefusalError as refusal:
            return _refused(refusal.status, str(refusal))
        except Exception:
            log.exception("publish failed")
            return _refused(500, "internal error; nothing was stored")

    async def publish_gaen(request: Request) -> Response:
        return await handle_publish(request, gaen.publish)

    async def publish_daily(request: Request) -> Response:
        service = daily[request.url.path.split("/")[1]]
        return await handle_publish(request, service.publish)

    async def records(request: Request) -> Response:
        service = daily[request.url.path.split("/")[1]]
        return Response(await run_in_threadpool(service.records), media_type="application/json")

    async def index(request: Request) -> Response:
        names = await run_in_threadpool(export_index, database)
        return PlainTextResponse("".join(name + "\n" for name in names))

    async def export_file(request: Request) -> Response:
        name = request.path_params["name"]
        data = await run_in_threadpool(export_data, database, name) if EXPORT_NAME.match(name) else None
        if data is None:
            return PlainTextResponse("no such export file\n", status_code=404)
        return Response(data, media_type="application/zip")

    async def healthz(request: Request) -> Response:
        await run_in_threadpool(export_index, database)  # the database answers
        return JSONResponse({"status": "ok", "region": config.region})

    routes = [
        Route("/v1/publish", publish_gaen, methods=["POST"]),
        Route("/v1/index.txt", index, methods=["GET"]),
        Route("/v1/exports/{name}", export_file, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    for name in daily:
        routes.append(Route(f"/{name}/v1/publish", publish_daily, methods=["POST"]))
        routes.append(Route(f"/{name}/v1/records.json", records, methods=["GET"]))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = None
        if export_every_seconds is not None:
            task = asyncio.create_task(_export_timer(Exporter(config, database), export_every_seconds, clock))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return Starlette(routes=routes, lifespan=lifespan)


async def _export_timer(exporter: Exporter, every: float, clock: Callable[[], float]) -> None:
    while True:
        try:
            report = await run_in_threadpool(exporter.run_once, clock())
            if report.files:
                log.info("exported %d keys into %s", report.keys, ", ".join(report.files))
        except Exception:
            log.exception("export pass failed; trying again at the next tick")
        await asyncio.sleep(every)
