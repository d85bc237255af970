"""The ASGI app: the OTLP receiver, the JSON API under ``/api/v1``, and (later) the UI."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections.abc import AsyncIterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from hotwash.actions.service import OverdueReminders
from hotwash.detect.checks import EventChecker
from hotwash.detect.engine import MonitorEngine, Signal
from hotwash.detect.live import LiveDetector
from hotwash.detect.pool import ParallelChecker, decode_result
from hotwash.errors import (
    AuthError,
    Conflict,
    Forbidden,
    HotwashError,
    IllegalTransition,
    InputError,
    InvalidValue,
    NotFound,
    PayloadError,
    PayloadTooLarge,
    StoreError,
    UnsupportedMediaType,
)
from hotwash.incidents import service as incident_service
from hotwash.manifest import load_manifest
from hotwash.notify import open_dispatcher, with_ids
from hotwash.settings import Settings
from hotwash.store import Store, open_store
from hotwash.telemetry import otlp
from hotwash.telemetry.group import GroupCommitter
from hotwash.telemetry.model import Record, loads_exact, parse_record
from hotwash.telemetry.writer import EventWriter, Prepared, WriteResult, prepare
from hotwash.web.api import include_routers
from hotwash.web.auth import identify
from hotwash.web.body import read_body
from hotwash.web.metrics import mount_metrics
from hotwash.web.ui import mount_ui

log = logging.getLogger(__name__)


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]


class StatusOut(BaseModel):
    events: int
    changes: int
    features: dict[str, int]
    signals: int


def _prepare(app: FastAPI, records: list[Record]) -> Prepared:
    return prepare(records, app.state.writer.checker)


async def _commit(app: FastAPI, prepared: Prepared) -> WriteResult:
    """Make the batch durable (the committer groups it with other requests' batches); the live
    detector hears of the new data time from the committer, before this returns."""
    if not prepared.event_rows and not prepared.change_rows:
        return WriteResult(duplicates=prepared.duplicates)
    return await asyncio.wrap_future(app.state.committer.submit(prepared))


def _after_commit(app: FastAPI, batches: Sequence[Prepared], results: Sequence[WriteResult]) -> None:
    """Runs on the committer's thread once a group is durable, before its requests are answered."""
    metrics = app.state.metrics
    for result in results:
        metrics.observe_write(result.accepted, result.duplicates)
    latest = [ts for b in batches if (ts := b.latest_ts()) is not None]
    if latest:
        app.state.live.observe(max(latest))


# OTLP bodies from this size on are decoded, mapped and checked in a worker process (when the app
# has them). This process is the bottleneck (one GIL for the HTTP, the commits and live detection),
# so even a small export is better shipped: at ~25 KB (30 spans) a worker raised the rate by
# 10-15 % (bench/otlp_bench.py --spans-per-batch 30); only the tiniest ones (a GenAI span with its
# messages is ~1 KB) are cheaper done here than shipped.
_WORKER_BODY_BYTES = 4 * 1024


async def _ingest_otlp(app: FastAPI, body: bytes, content_type: str) -> otlp.OtlpBatch:
    pool: ParallelChecker | None = app.state.pool
    if pool is not None and len(body) >= _WORKER_BODY_BYTES:
        # The worker does everything but the transaction; the event loop only waits for it (no
        # thread of this process is held), then hands the rows to the committer. A PayloadError
        # raised there is raised here.
        try:
            # With a SQLite store the worker also binds the rows' values, so this process only inserts.
            done = await asyncio.wrap_future(
                pool.submit_otlp(body, content_type, sqlite=app.state.store.dialect == "sqlite"))
        except BrokenProcessPool:
            if app.state.pool is pool:
                log.exception("an ingest worker process died; checking in the server process from now on")
                app.state.pool = None
                app.state.writer.checker = EventChecker(app.state.manifest)
        else:
            wire, rejected, ignored = decode_result(done)
            batch = otlp.OtlpBatch(rejected=[(where, reason) for where, reason in rejected], ignored=ignored)
            app.state.metrics.observe_rejected(len(batch.rejected))
            await _commit(app, Prepared.from_wire(wire))
            return batch
    batch, prepared = await run_in_threadpool(_map_and_prepare, app, body, content_type)
    app.state.metrics.observe_rejected(len(batch.rejected))
    await _commit(app, prepared)
    return batch


def _map_and_prepare(app: FastAPI, body: bytes, content_type: str) -> tuple[otlp.OtlpBatch, Prepared]:
    batch = otlp.decode_and_map(body, content_type)
    return batch, _prepare(app, batch.records)


def _status_of(exc: HotwashError) -> tuple[int, dict[str, Any]]:
    """The HTTP status of a deliberate error, and the fields a client can act on."""
    if isinstance(exc, Forbidden):
        return 403, {}
    if isinstance(exc, AuthError):
        return 401, {}
    if isinstance(exc, NotFound):
        return 404, {}
    if isinstance(exc, IllegalTransition):
        return 409, {"state": exc.state, "event": exc.event, "allowed": exc.allowed}
    if isinstance(exc, Conflict):
        return 409, {}
    if isinstance(exc, InvalidValue):
        return 422, {"field": exc.field}
    return 400, {}


def create_app(settings: Settings, *, store: Store | None = None, check_workers: int | None = None) -> FastAPI:
    """Build the app. The store is opened (and checked to be migrated) at startup.

    ``check_workers``: None checks ingested events in the request's thread; a number starts that
    many worker processes (0: one per CPU) at startup that decode, map and check large OTLP
    exports in parallel (``hotwash serve`` passes ``settings.check_workers``).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manifest = load_manifest(settings.manifest)
        # Fork the workers first, before this process opens the store or starts any thread.
        pool = ParallelChecker(manifest, workers=check_workers).start() if check_workers is not None else None
        app.state.pool = pool if pool is not None and pool.parallel else None
        own = store is None
        try:
            st = store or open_store(settings.resolved_database_url)
            st.check_ready()
        except BaseException:
            if pool is not None:
                pool.close()
            raise
        app.state.store = st
        app.state.settings = settings
        app.state.manifest = manifest
        app.state.writer = EventWriter(st, app.state.pool or EventChecker(manifest))
        _, last = st.data_range()
        # Minutes before the newest stored one were judged by an earlier run (or `hotwash detect`).
        app.state.engine = MonitorEngine(st, manifest, start_at=last)
        dispatcher = open_dispatcher(st, manifest.notify, os.environ)
        app.state.dispatcher = dispatcher
        def on_signals(new: list[Signal]) -> None:
            app.state.metrics.observe_signals(new)
            if dispatcher is not None:
                dispatcher.submit(with_ids(st, new))
            # Signals become incidents by policy (and may auto-contain). A failure here is logged and
            # must not stop the live detector: the signals are stored, `hotwash detect --open` can redo it.
            try:
                incident_service.on_signals(st, manifest, new, dispatcher=dispatcher)
            except Exception:
                log.exception("could not open incidents for %d new signals; they are stored, "
                              "run `hotwash detect --open` to retry", len(new))

        app.state.live = LiveDetector(st, app.state.engine, on_signals=on_signals)
        app.state.committer = GroupCommitter(app.state.writer, max_rows=settings.batch_size,
                                             after_commit=lambda b, r: _after_commit(app, b, r))
        reminders = (OverdueReminders(st, dispatcher, base_url=str(manifest.notify.base_url or "") or None).start()
                     if dispatcher is not None else None)
        try:
            yield
        finally:
            if reminders is not None:
                reminders.close()
            app.state.committer.close(timeout=30)
            app.state.live.close(timeout=10)
            if dispatcher is not None:
                dispatcher.close(timeout=10)
            if own:
                st.dispose()
            if pool is not None:
                pool.close()

    app = FastAPI(title="hotwash", version="0.1.0", lifespan=lifespan,
                  openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", redoc_url=None)

    def require_ingest_token(request: Request) -> None:
        """Ingest takes HOTWASH_INGEST_TOKEN, or any credential with the responder role or above
        (an unconfigured local install is open, as everywhere)."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if (settings.ingest_token is not None and scheme.lower() == "bearer"
                and hmac.compare_digest(token.strip(), settings.ingest_token)):
            return
        try:
            principal = identify(request)
        except AuthError:
            principal = None
        # The open (unconfigured) principal does not stand in for an ingest token that was set.
        if (principal is not None and principal.allows("responder")
                and (principal.via != "open" or settings.ingest_token is None)):
            return
        raise HTTPException(401, "missing or wrong ingest token: send 'Authorization: Bearer <token>' with "
                                 "HOTWASH_INGEST_TOKEN or an API token of role responder or admin",
                            headers={"WWW-Authenticate": "Bearer"})

    auth = [Depends(require_ingest_token)]

    @app.exception_handler(PayloadTooLarge)
    async def _too_large(_: Request, exc: PayloadTooLarge) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    @app.exception_handler(UnsupportedMediaType)
    async def _media_type(_: Request, exc: UnsupportedMediaType) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=415)

    @app.exception_handler(PayloadError)
    async def _bad_payload(_: Request, exc: PayloadError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(StoreError)
    async def _store_down(_: Request, exc: StoreError) -> JSONResponse:
        # Nothing was acknowledged: the client should retry.
        return JSONResponse({"detail": f"store unavailable, retry later: {exc}"}, status_code=503)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/traces", tags=["ingest"], summary="OTLP/HTTP trace export (protobuf or JSON)",
              dependencies=auth)
    async def otlp_traces(request: Request) -> Response:
        body = await read_body(request, limit=settings.max_body_bytes)
        content_type = request.headers.get("content-type", "application/x-protobuf")
        batch = await _ingest_otlp(request.app, body, content_type)
        return Response(otlp.encode_response(batch, content_type), media_type=otlp.response_media_type(content_type))

    @app.post("/api/v1/events", tags=["ingest"], response_model=IngestResult,
              summary="Ingest a JSON batch of telemetry and change events", dependencies=auth)
    async def post_events(request: Request) -> IngestResult:
        body = await read_body(request, limit=settings.max_body_bytes)
        try:
            payload = loads_exact(body)
        except ValueError as exc:
            raise PayloadError(f"body is not valid JSON: {exc}") from None
        items = payload.get("events") if isinstance(payload, dict) else payload
        if not isinstance(items, list):
            raise PayloadError('expected a JSON array of events, or an object {"events": [...]}')
        records, rejected = [], []
        for i, obj in enumerate(items):
            try:
                records.append(parse_record(obj, where=f"events[{i}]"))
            except InputError as exc:
                rejected.append({"index": i, "id": obj.get("id") if isinstance(obj, dict) else None,
                                 "reason": exc.reason})
        request.app.state.metrics.observe_rejected(len(rejected))
        result = await _commit(request.app, await run_in_threadpool(_prepare, request.app, records))
        return IngestResult(accepted=result.accepted, duplicates=result.duplicates, rejected=rejected)

    @app.get("/api/v1/status", tags=["store"], response_model=StatusOut)
    def status(request: Request) -> StatusOut:
        return StatusOut(**request.app.state.store.status())

    @app.exception_handler(HotwashError)
    async def _hotwash_error(_: Request, exc: HotwashError) -> JSONResponse:
        status, extra = _status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": str(exc), **extra}, status_code=status, headers=headers)

    include_routers(app)
    mount_metrics(app)
    mount_ui(app)

    return app
