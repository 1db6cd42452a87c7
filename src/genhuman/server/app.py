"""The HTTP API and the web page: ``create_app(settings)`` builds the FastAPI app.

Endpoints (JSON; errors are ``{"error": "one sentence"}`` with a 4xx/5xx status):
  POST   /v1/jobs                 multipart: image, audio or text, engine, options -> 202 job
  GET    /v1/jobs                 recent jobs (?limit=, ?status=)
  GET    /v1/jobs/{id}            status, progress 0-1, timings, error
  GET    /v1/jobs/{id}/video      the MP4 (?download=1 for an attachment)
  POST   /v1/jobs/{id}/cancel     cancel a queued or running job
  DELETE /v1/jobs/{id}            delete a finished or queued job and its files
  GET    /v1/engines              engine names and whether each is available
  GET    /healthz                 liveness and queue figures (no token needed)
"""

from __future__ import annotations

import hmac
import inspect
import logging
import math
import threading
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any, Optional

from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from genhuman import __version__
from genhuman.errors import InputError
from genhuman.request import AnimateRequest, EngineOptions
from genhuman.server import validation
from genhuman.server.avatars import LRU, DiskAvatars, merged_stats
from genhuman.server.db import QUEUED, RUNNING, SUCCEEDED
from genhuman.server.jobs import JobStore, QueueFull, job_to_dict
from genhuman.server.settings import ServerSettings
from genhuman.server.storage import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, Storage, TooLarge, safe_extension
from genhuman.server.worker import WorkerPool

log = logging.getLogger(__name__)

STATIC = Path(str(files("genhuman.server") / "static"))
MULTIPART_OVERHEAD = 256 * 1024  # form fields and part headers on top of the files


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: Optional[dict[str, str]] = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def create_app(settings: ServerSettings, *, start_workers: bool = True) -> FastAPI:
    """Build the app. ``start_workers=False`` gives an API that only queues (tests)."""
    settings.resolve()
    storage = Storage(settings.data_dir)
    store = JobStore(settings.database_url, settings.max_queue, settings.max_attempts)
    disk = DiskAvatars(Path(settings.data_dir) / "avatars", settings.avatar_cache_disk) \
        if settings.avatar_cache_disk else None
    pool = WorkerPool(store, storage, settings.workers, settings.weights, settings.avatar_cache, disk)
    faces_found: LRU[bool] = LRU(settings.avatar_cache * 16)  # portraits whose face check passed

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        requeued, failed = store.recover()
        stray = storage.remove_partial_results()
        if requeued or failed or stray:
            log.warning("recovered interrupted jobs: %d re-queued, %d failed, %d half-written videos removed",
                        requeued, failed, stray)
        if start_workers:
            pool.start()
        yield
        if start_workers:
            pool.stop()

    # docs_url/redoc_url off: FastAPI's defaults load their viewers from a CDN; /docs is
    # served below from the swagger-ui-bundle-v2 package so that it works offline.
    app = FastAPI(title="GenHuman", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Portrait + speech -> lip-synced talking MP4. Jobs are queued and persisted.")
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization"])
    body_limit = settings.max_upload_bytes * 2 + MULTIPART_OVERHEAD  # image + audio + form fields
    _add_error_handlers(app, body_limit)

    def token_ok(request: Request) -> bool:
        if not settings.token:
            return True
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else None
        if given is None and request.url.path.endswith("/video"):
            given = request.query_params.get("token")  # a <video src> cannot send headers
        return given is not None and hmac.compare_digest(given.encode(), settings.token.encode())

    def require_token(request: Request) -> None:
        if not token_ok(request):
            raise ApiError(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})

    @app.middleware("http")
    async def refuse_foreign(request: Request, call_next):
        # DNS rebinding: a page on attacker.example re-pointed at 127.0.0.1 still sends
        # "Host: attacker.example". CSRF: a cross-origin form post sends its Origin. Both are
        # refused before anything else happens (a token, when set, protects the rest).
        problem = foreign_request(request, settings)
        if problem:
            return JSONResponse({"error": problem}, status_code=403)
        return await call_next(request)

    @app.middleware("http")
    async def refuse_early(request: Request, call_next):
        # Refuse before any byte of the body is read: bodies that say they are too big,
        # and new jobs while the queue is full (cheap 429s under load).
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > body_limit:
            return JSONResponse({"error": _too_large(body_limit)}, status_code=413,
                                headers={"Connection": "close"})
        if request.method == "POST" and request.url.path == "/v1/jobs" and token_ok(request):
            try:
                await run_in_threadpool(_check_room, store, len(pool.workers))
            except ApiError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status,
                                    headers={**(exc.headers or {}), "Connection": "close"})
        return await call_next(request)

    def find(job_id: str):
        job = store.get(job_id) if len(job_id) == 32 else None
        if job is None:
            raise ApiError(404, f"no job with id {job_id[:40]!r}")
        return job

    def check_engine(name: str) -> str:
        from genhuman.engines import ENGINES, get_engine_class

        allowed = settings.engines or list(ENGINES)
        if name not in allowed or name not in ENGINES:
            raise InputError(f"unknown engine {name[:40]!r}; choose one of: {', '.join(allowed)}")
        from genhuman.engines.diffusion import DiffusionEngine

        engine_class = get_engine_class(name)  # InputError when it is not part of this build
        if issubclass(engine_class, DiffusionEngine) and name not in settings.weights:
            raise InputError(f"engine {name!r} has no weights on this server (start it with --weights {name}=DIR)")
        return name

    auth = [Depends(require_token)]

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict:
        return {"status": "ok", "version": __version__, "queued": store.count(QUEUED),
                "running": store.count(RUNNING), "workers": len(pool.workers),
                "max_queue": settings.max_queue, "disk_free_mb": storage.free_bytes() // (1 << 20),
                "avatar_cache": merged_stats([w.avatars for w in pool.workers]),
                **({"avatar_cache_disk": disk.stats()} if disk is not None else {})}

    @app.get("/v1/engines", tags=["jobs"], dependencies=auth)
    def engines() -> dict:
        from genhuman.engines import ENGINES

        out = []
        for name in settings.engines or list(ENGINES):
            try:
                check_engine(name)
                out.append({"name": name, "available": True})
            except InputError as exc:
                out.append({"name": name, "available": False, "reason": str(exc)})
        return {"engines": out, "default": settings.default_engine}

    validators: dict[tuple[str, bool], Any] = {}
    validators_lock = threading.Lock()

    def check_with_engine(name: str, request: AnimateRequest, accelerated: bool) -> None:
        """The engine's own refusals (e.g. a size it cannot generate) as a 400 now, where that
        is cheap: engines without weights (built here once), and diffusion engines a worker
        has already loaded. Otherwise the diffusion engines need their weights loaded to know,
        and the worker fails such a job with the same one line."""
        from genhuman.engines import get_engine_class
        from genhuman.engines.diffusion import DiffusionEngine

        engine_class = get_engine_class(name)
        if not hasattr(engine_class, "validate"):
            return
        try:
            if issubclass(engine_class, DiffusionEngine):
                engine = pool.ready_engine(name, accelerated)
                if engine is None:
                    return
            else:
                with validators_lock:
                    key = (name, accelerated)
                    if key not in validators:
                        validators[key] = engine_class(EngineOptions(accelerated=accelerated))
                    engine = validators[key]
            engine.validate(request)
        except InputError:
            raise
        except Exception:  # a broken validator must not refuse the job: the worker decides
            log.exception("engine %s: validating a request failed", name)

    # max_body_size: FastAPI counts a streamed body as it arrives and stops it past the cap.
    def create_job(**form: Any) -> JSONResponse:
        image: Optional[UploadFile] = form.pop("image")
        audio: Optional[UploadFile] = form.pop("audio")
        engine: str = form.pop("engine")
        check_engine(engine)
        text = validation.check_text(form.pop("text"), settings.max_text_chars)
        request, accelerated = validation.parse_options(form, text)
        check_with_engine(engine, request, accelerated)
        if image is None or (not image.filename and not image.size):
            raise InputError("send a portrait image in the 'image' field")
        sent_audio = audio if audio is not None and (audio.filename or audio.size) else None
        if sent_audio is None and not text:
            raise InputError("send speech in the 'audio' field, or text to speak in the 'text' field")
        saved: list[str] = []
        try:
            image_name = _save(storage, image, IMAGE_EXTENSIONS, ".img", settings.max_upload_bytes, "image")
            saved.append(image_name)
            validation.check_image(storage.upload_path(image_name), request.face_index, faces_found)
            if sent_audio is not None:
                audio_name = _save(storage, sent_audio, AUDIO_EXTENSIONS, ".audio", settings.max_upload_bytes, "audio")
                saved.append(audio_name)
                validation.check_audio(storage.upload_path(audio_name), settings.max_audio_seconds)
            else:
                assert text, "no audio and no text was refused above"
                audio_name = storage.new_upload_name(".wav")
                saved.append(audio_name)
                validation.speak_to_file(text, storage.upload_path(audio_name))
            job = store.create(engine=engine, options=validation.stored_options(request, accelerated), text=text,
                               image_file=image_name, audio_file=audio_name)
        except BaseException:
            storage.remove(*saved)
            raise
        created = store.get(job["id"])
        if created is None:  # only a delete between create() and here could do this
            raise RuntimeError(f"job {job['id']} vanished just after it was created")
        job["queue_position"] = store.position(created)
        return JSONResponse(job, status_code=202, headers={"Location": f"/v1/jobs/{job['id']}"})

    create_job.__signature__ = _job_form(settings.default_engine)  # type: ignore[attr-defined]
    app.post("/v1/jobs", status_code=202, tags=["jobs"], dependencies=auth, max_body_size=body_limit,
             summary="Create a job", response_class=JSONResponse)(create_job)

    @app.get("/v1/jobs", tags=["jobs"], dependencies=auth)
    def list_jobs(limit: int = Query(20, ge=1, le=200),
                  status: Optional[str] = Query(None, pattern="^(queued|running|succeeded|failed|cancelled)$")) -> dict:
        return {"jobs": [job_to_dict(j) for j in store.list(limit, status)]}

    @app.get("/v1/jobs/{job_id}", tags=["jobs"], dependencies=auth)
    def get_job(job_id: str) -> dict:
        job = find(job_id)
        view = job_to_dict(job)
        if job.status == QUEUED:
            view["queue_position"] = store.position(job)
        return view

    @app.get("/v1/jobs/{job_id}/video", tags=["jobs"], dependencies=auth,
             response_class=FileResponse, responses={200: {"content": {"video/mp4": {}}}})
    def get_video(job_id: str, request: Request, download: bool = False) -> FileResponse:
        job = find(job_id)
        if not _valid_byte_range(request.headers.get("range")):
            # RFC 9110: a Range the server cannot honour as written is ignored (a full 200
            # answer) rather than Starlette's plain-text 400.
            request.scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k.lower() != b"range"]
        path = storage.result_path(job.id)
        if job.status != SUCCEEDED or not path.is_file():
            raise ApiError(409 if job.status != SUCCEEDED else 410,
                           f"job {job.id} has no video (status: {job.status})")
        return FileResponse(path, media_type="video/mp4", filename=f"genhuman-{job.id[:8]}.mp4",
                            content_disposition_type="attachment" if download else "inline")

    @app.post("/v1/jobs/{job_id}/cancel", tags=["jobs"], dependencies=auth)
    def cancel_job(job_id: str) -> dict:
        job = find(job_id)
        if job.status not in (QUEUED, RUNNING):
            raise ApiError(409, f"job {job.id} already {job.status}")
        store.cancel(job.id)
        return job_to_dict(find(job.id))

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"], dependencies=auth)
    def delete_job(job_id: str) -> dict:
        job = store.delete(find(job_id).id)
        if job is None:
            raise ApiError(404, f"no job with id {job_id[:40]!r}")
        if job.status == RUNNING:
            raise ApiError(409, f"job {job.id} is running; cancel it first")
        _forget_portrait(pool, storage.upload_path(job.image_file))
        storage.remove(job.image_file, job.audio_file)
        storage.remove_result(job.id)
        return {"deleted": job.id}

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _mount_offline_docs(app)
    return app


def _forget_portrait(pool: WorkerPool, path: Path) -> None:
    """A deleted job's portrait leaves no prepared avatar behind (in memory or on disk)."""
    if not path.is_file() or (pool.disk is None and not any(w.avatars.capacity for w in pool.workers)):
        return
    from genhuman.engines.avatar import image_digest
    from genhuman.media import load_image

    try:
        removed = pool.forget_portrait(image_digest(load_image(path)))
    except Exception:  # an unreadable upload made no avatar
        return
    if removed:
        log.info("removed %d cached avatar(s) of a deleted job's portrait", removed)


def _job_form(default_engine: str) -> inspect.Signature:
    """The multipart fields of ``POST /v1/jobs``: the files, text and engine, then one field
    per server-offered option spec (genhuman.request), declared as optional strings (the
    server parses them, with the CLI's messages) but documented with their real type,
    range and help."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter("image", keyword, annotation=Optional[UploadFile],
                          default=File(None, description="portrait (PNG/JPEG/WebP/BMP)")),
        inspect.Parameter("audio", keyword, annotation=Optional[UploadFile],
                          default=File(None, description="speech (wav/flac/mp3/m4a/ogg/webm)")),
        inspect.Parameter("text", keyword, annotation=Optional[str], default=Form(
            None, description="text to speak (bundled Piper voice) when no audio is sent; with audio, "
                              "the transcript of the speech (lite: forced alignment for better lip sync)")),
        inspect.Parameter("engine", keyword, annotation=str,
                          default=Form(default_engine, description="engine name (see GET /v1/engines)")),
    ]
    for name, spec in validation.FORM_FIELDS:
        params.append(inspect.Parameter(name, keyword, annotation=Optional[str], default=Form(
            None, description=spec.help, json_schema_extra=validation.schema_writer(name, spec))))
    return inspect.Signature(params)


def _valid_byte_range(header: Optional[str]) -> bool:
    """True for no header or a well-formed ``bytes=a-b[, ...]`` with a <= b in every part."""
    if header is None:
        return True
    unit, _, specs = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or not specs:
        return False
    for spec in specs.split(","):
        first, dash, last = spec.strip().partition("-")
        if not dash or not (first.isdigit() or last.isdigit()) or (first and not first.isdigit()) \
                or (last and not last.isdigit()) or (first and last and int(first) > int(last)):
            return False
    return True


def _mount_offline_docs(app: FastAPI) -> None:
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ValueError("the offline /docs page needs the app's OpenAPI schema (openapi_url)")
    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title="GenHuman API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def _check_room(store: JobStore, workers: int) -> None:
    queued = store.count(QUEUED)
    if queued >= store.max_queue:
        wait = max(1, min(3600, math.ceil(queued * store.mean_run_seconds() / max(1, workers))))
        raise ApiError(429, f"the queue is full ({queued} jobs waiting); retry in {wait} s",
                       {"Retry-After": str(wait)})


def _save(storage: Storage, upload: UploadFile, allowed: set[str], default: str, max_bytes: int, what: str) -> str:
    try:
        return storage.save_upload(upload.file, safe_extension(upload.filename, allowed, default), max_bytes)
    except TooLarge:
        raise ApiError(413, f"the {what} file is too large; the limit is {max_bytes / (1 << 20):.3g} MB") from None
    except InputError:
        raise InputError(f"the uploaded {what} file is empty") from None


def _too_large(limit: int) -> str:
    return f"the request is too large; the limit is {limit / (1 << 20):.1f} MB"


def _add_error_handlers(app: FastAPI, body_limit: int) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(QueueFull)
    async def queue_full(_request: Request, _exc: QueueFull) -> JSONResponse:
        return JSONResponse({"error": "the queue is full; retry later"}, status_code=429,
                            headers={"Retry-After": "10"})

    @app.exception_handler(InputError)
    async def input_error(_request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid value')}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 413:  # a streamed body went past FastAPI's max_body_size
            return JSONResponse({"error": _too_large(body_limit)}, status_code=413)
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def foreign_request(request: Request, settings: ServerSettings) -> Optional[str]:
    """Why a request that a browser sent on behalf of another site is refused, or None."""
    from urllib.parse import urlsplit

    from genhuman.server.settings import is_loopback

    host_header = request.headers.get("host", "")
    hostname = (urlsplit(f"//{host_header}").hostname or "").lower()
    if not settings.token:
        known = {settings.host.lower().strip("[]"), "localhost", *(h.lower() for h in settings.allowed_hosts)}
        if hostname not in known and not _loopback_name(hostname, is_loopback):
            return f"refusing a request for host {hostname[:60]!r}: this server answers only to its own address"
    if request.method in SAFE_METHODS:
        return None
    origin = request.headers.get("origin")
    if origin is not None:
        same = origin.lower() in {f"http://{host_header}".lower(), f"https://{host_header}".lower()}
        if not same and origin not in settings.cors_origins:
            return "refusing a cross-origin request; allow the origin with --cors-origin"
    elif request.headers.get("sec-fetch-site") == "cross-site":
        return "refusing a cross-origin request; allow the origin with --cors-origin"
    return None


def _loopback_name(hostname: str, is_loopback) -> bool:
    return bool(hostname) and bool(is_loopback(hostname))
