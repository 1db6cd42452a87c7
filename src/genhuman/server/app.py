"""The HTTP API and the web page: ``create_app(settings)`` builds the FastAPI app.

Endpoints (JSON; errors are ``{"error": "one sentence"}`` with a 4xx/5xx status, the
:class:`~genhuman.server.models.ErrorBody` of the OpenAPI schema):
  POST   /v1/jobs                 multipart: image, audio or text, engine, options -> 202 job
  GET    /v1/jobs                 your recent jobs (?limit=, ?status=)
  GET    /v1/jobs/{id}            status, progress 0-1, timings, error
  GET    /v1/jobs/{id}/video      the MP4 (?download=1 for an attachment)
  POST   /v1/jobs/{id}/cancel     cancel a queued or running job
  DELETE /v1/jobs/{id}            delete a finished or queued job and its files
  GET    /v1/engines              engine names and whether each is available
  GET    /healthz                 liveness and queue figures (no token needed)

The parts are in :mod:`~genhuman.server.services` (built once, handed to the routes as
dependencies), the routes in :mod:`~genhuman.server.routes`, the checks that run before a
route in :mod:`~genhuman.server.guards`, and job admission in :mod:`~genhuman.server.admission`.
"""

from __future__ import annotations

import errno
import logging
from contextlib import asynccontextmanager
from typing import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from genhuman import __version__
from genhuman.errors import InputError
from genhuman.server import guards
from genhuman.server.admission import Busy
from genhuman.server.jobs import QueueFull
from genhuman.server.routes import engines, jobs, live, page, service
from genhuman.server.services import Services
from genhuman.server.settings import ServerSettings
from genhuman.server.storage import DiskFull

log = logging.getLogger(__name__)

MULTIPART_OVERHEAD = 256 * 1024  # form fields and part headers on top of the files
DISK_FULL = "the server is out of disk space; retry later"


def create_app(settings: ServerSettings, *, start_workers: bool = True) -> FastAPI:
    """Build the app. ``start_workers=False`` gives an API that only queues (tests)."""
    settings.resolve()
    parts = Services.build(settings)
    live_sessions = _live_sessions(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        requeued, failed = parts.store.recover()
        stray = parts.storage.remove_partial_results()
        orphans = parts.storage.remove_orphan_uploads(parts.store.referenced_files())
        if requeued or failed or stray or orphans:
            log.warning("recovered interrupted jobs: %d re-queued, %d failed, %d half-written videos and "
                        "%d orphan uploads removed", requeued, failed, stray, orphans)
        if start_workers:
            parts.pool.start()
        if live_sessions is not None and settings.live_warm_up:
            import threading

            live_sessions.ready = False
            threading.Thread(target=live_sessions.warm_up, name="live-warm-up", daemon=True).start()
        yield
        if live_sessions is not None:
            await live_sessions.close_all()
            live_sessions.shutdown()
        if start_workers:
            parts.pool.stop()
        parts.validation.close()

    # docs_url/redoc_url off: FastAPI's defaults load their viewers from a CDN; /docs is
    # served from the swagger-ui-bundle-v2 package so that it works offline.
    app = FastAPI(title="GenHuman", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Portrait + speech -> lip-synced talking MP4. Jobs are queued and persisted; "
                              "each caller sees only its own jobs.")
    app.state.services = parts
    app.state.live = live_sessions
    body_limit = settings.max_upload_bytes * 2 + MULTIPART_OVERHEAD  # image + audio + form fields
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization"])
    guards.install(app, settings, parts, body_limit, _too_large)
    app.add_middleware(guards.BodyDeadline, seconds=settings.body_timeout)
    _add_error_handlers(app, body_limit, settings)
    app.include_router(service.router)
    app.include_router(engines.router)
    app.include_router(jobs.router(settings.default_engine, body_limit))
    app.include_router(live.router)
    page.mount(app)
    docs_policy = guards.docs_csp(bytes(page.docs_page(app.openapi_url or "/openapi.json").body).decode())
    outer = app.build_middleware_stack

    def with_headers():  # the headers go on every answer, the error handlers' ones included
        return guards.security_headers(outer(), docs_policy)

    app.build_middleware_stack = with_headers  # type: ignore[method-assign]
    return app


def _live_sessions(settings: ServerSettings):
    """The live sessions manager when the server has portraits for /live, else None."""
    if not settings.live_portraits:
        return None
    from genhuman.live.sessions import LiveSessions, find_portraits

    return LiveSessions(settings.live, find_portraits(settings.live_portraits), settings.ice_servers,
                        settings.ice_username, settings.ice_credential)


def _too_large(limit: int) -> str:
    return f"the request is too large; the limit is {limit / (1 << 20):.1f} MB"


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers) if headers else None)


def _timed_out(settings: ServerSettings) -> JSONResponse:
    exc = guards.BodyTimeout(settings.body_timeout)
    return _error(exc.status_code, str(exc.detail), exc.headers)


def _add_error_handlers(app: FastAPI, body_limit: int, settings: ServerSettings) -> None:
    @app.exception_handler(QueueFull)
    async def queue_full(_request: Request, _exc: QueueFull) -> JSONResponse:
        return _error(429, "the queue is full; retry later", {"Retry-After": "10"})

    @app.exception_handler(Busy)
    async def busy(_request: Request, _exc: Busy) -> JSONResponse:
        return _error(503, guards.BUSY, {"Retry-After": "5"})

    @app.exception_handler(InputError)
    async def input_error(_request: Request, exc: InputError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(DiskFull)
    async def disk_full(_request: Request, _exc: DiskFull) -> JSONResponse:
        return _error(507, DISK_FULL)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return _error(422, f"{where}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if request.scope.get(guards.TIMED_OUT):
            return _timed_out(settings)
        if exc.status_code == 413:  # a streamed body went past FastAPI's max_body_size: stop reading it
            return _error(413, str(exc.detail) if "file is too large" in str(exc.detail) else _too_large(body_limit),
                          {"Connection": "close"})
        return _error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        if request.scope.get(guards.TIMED_OUT):
            return _timed_out(settings)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return _error(507, DISK_FULL)
        log.exception("unhandled error")
        return _error(500, f"internal error: {type(exc).__name__}")
