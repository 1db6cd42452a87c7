"""``/v1/jobs``: create (multipart), list, get, video, cancel, delete. Every route sees only
the caller's own jobs (the admin token sees all); another owner's job answers 404.

(No ``from __future__ import annotations`` here: the form model is made per app, and
FastAPI must see it as an object, not as a name to look up.)"""


import logging
from pathlib import Path
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from genhuman.errors import InputError
from genhuman.server import admission, validation
from genhuman.server.auth import Caller
from genhuman.server.db import QUEUED, RUNNING, SUCCEEDED, Job
from genhuman.server.jobs import job_to_dict
from genhuman.server.models import Deleted, JobList, JobView, errors
from genhuman.server.services import Services, caller, services
from genhuman.server.storage import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, TooLarge, safe_extension

log = logging.getLogger(__name__)

Parts = Annotated[Services, Depends(services)]
Who = Annotated[Caller, Depends(caller)]


def view(parts: Services, job: Job, who: Caller) -> dict[str, Any]:
    shown = job_to_dict(job, show_text=job.owner == who.owner)
    if job.status == QUEUED:
        shown["queue_position"] = parts.store.position(job)
    return shown


def router(default_engine: str, body_limit: int) -> APIRouter:
    """The jobs router; its form model names the server's default engine."""
    jobs = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=errors(401, 403, 422))
    JobForm = validation.job_form(default_engine)

    @jobs.post("", status_code=202, response_model=JobView, summary="Create a job",
               responses=errors(400, 408, 413, 429, 503, 507), max_body_size=body_limit)
    async def create_job(form: Annotated[JobForm, Form(media_type="multipart/form-data")],  # type: ignore[valid-type]
                         parts: Parts, who: Who) -> JSONResponse:
        fields: dict[str, Any] = form.model_dump()  # type: ignore[attr-defined]
        image, audio = fields.pop("image"), fields.pop("audio")
        engine = parts.check_engine(fields.pop("engine"))
        settings = parts.settings
        text = validation.check_text(fields.pop("text"), settings.max_text_chars)
        request, accelerated = validation.parse_options(fields, text)
        request = admission.cap_size(request, settings.max_output_size)
        parts.check_with_engine(engine, request, accelerated)
        if image is None or (not image.filename and not image.size):
            raise InputError("send a portrait image in the 'image' field")
        sent_audio = audio if audio is not None and (audio.filename or audio.size) else None
        if sent_audio is None and not text:
            raise InputError("send speech in the 'audio' field, or text to speak in the 'text' field")
        saved: list[str] = []
        try:
            image_name = await run_in_threadpool(_save, parts, image, IMAGE_EXTENSIONS, ".img", "image")
            saved.append(image_name)
            audio_name = None
            if sent_audio is not None:
                audio_name = await run_in_threadpool(_save, parts, sent_audio, AUDIO_EXTENSIONS, ".audio", "audio")
                saved.append(audio_name)
            speech_name = audio_name or parts.storage.new_upload_name(".wav")
            saved.append(speech_name)
            await run_in_threadpool(admission.check_headers, parts.storage.upload_path(image_name),
                                    parts.storage.upload_path(audio_name) if audio_name else None,
                                    settings.max_image_pixels, settings.max_audio_seconds)
            admitted = await parts.validation.run(
                lambda: admission.check_media(
                    parts.storage, parts.handoff, image_file=image_name, audio_file=audio_name, speak=text
                    if audio_name is None else None, speech_file=speech_name, request=request,
                    engine=parts.light_engine(engine, accelerated), engine_name=engine, accelerated=accelerated,
                    max_pixels=settings.max_image_pixels, max_seconds=settings.max_audio_seconds))
            saved.append(admitted.image_file)
            job = await run_in_threadpool(
                parts.store.create, engine=engine, options=validation.stored_options(request, accelerated),
                text=text, image_file=admitted.image_file, audio_file=speech_name, owner=who.owner)
        except BaseException:
            parts.storage.remove(*saved)
            raise
        created = parts.store.get(job["id"])
        if created is None:  # only a delete between create() and here could do this
            raise HTTPException(404, f"job {job['id']} was deleted as it was created")
        job["queue_position"] = parts.store.position(created)  # the view as created: queued
        return JSONResponse(job, status_code=202, headers={"Location": f"/v1/jobs/{job['id']}"})

    @jobs.get("", response_model=JobList, summary="Your recent jobs")
    def list_jobs(parts: Parts, who: Who, limit: int = Query(20, ge=1, le=200),
                  status: Optional[str] = Query(None, pattern="^(queued|running|succeeded|failed|cancelled)$")
                  ) -> dict[str, Any]:
        listed = parts.store.list(limit, status, owner=None if who.admin else who.owner)
        return {"jobs": [job_to_dict(j, show_text=j.owner == who.owner) for j in listed]}

    @jobs.get("/{job_id}", response_model=JobView, responses=errors(404), summary="A job's status")
    def get_job(job_id: str, parts: Parts, who: Who) -> dict[str, Any]:
        return view(parts, parts.find(job_id, who), who)

    @jobs.get("/{job_id}/video", response_class=FileResponse, summary="The job's MP4",
              responses={200: {"content": {"video/mp4": {}}}, **errors(404, 409, 410, 416)})
    def get_video(job_id: str, request: Request, parts: Parts, who: Who, download: bool = False) -> Any:
        job = parts.find(job_id, who)
        path = parts.storage.result_path(job.id)
        if job.status != SUCCEEDED or not path.is_file():
            raise HTTPException(409 if job.status != SUCCEEDED else 410,
                                f"job {job.id} has no video (status: {job.status})")
        wanted = request.headers.get("range")
        if not _valid_byte_range(wanted):
            # RFC 9110: a Range the server cannot honour as written is ignored (a full 200
            # answer) rather than Starlette's plain-text 400.
            request.scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k.lower() != b"range"]
        elif wanted is not None and not _satisfiable(wanted, path.stat().st_size):
            size = path.stat().st_size  # Starlette would answer this 416 in plain text
            return JSONResponse({"error": f"the range is outside the video ({size} bytes)"}, status_code=416,
                                headers={"Content-Range": f"bytes */{size}"})
        return FileResponse(path, media_type="video/mp4", filename=f"genhuman-{job.id[:8]}.mp4",
                            content_disposition_type="attachment" if download else "inline")

    @jobs.post("/{job_id}/cancel", response_model=JobView, responses=errors(404, 409), summary="Cancel a job")
    def cancel_job(job_id: str, parts: Parts, who: Who) -> dict[str, Any]:
        job = parts.find(job_id, who)
        if job.status not in (QUEUED, RUNNING):
            raise HTTPException(409, f"job {job.id} already {job.status}")
        parts.store.cancel(job.id)
        return view(parts, parts.find(job.id, who), who)

    @jobs.delete("/{job_id}", response_model=Deleted, responses=errors(404, 409), summary="Delete a job")
    def delete_job(job_id: str, parts: Parts, who: Who) -> dict[str, str]:
        job = parts.store.delete(parts.find(job_id, who).id)
        if job is None:
            raise HTTPException(404, f"no job with id {job_id[:40]!r}")
        if job.status == RUNNING:
            raise HTTPException(409, f"job {job.id} is running; cancel it first")
        _forget_portrait(parts, parts.storage.upload_path(job.image_file))
        parts.storage.remove(job.image_file, job.audio_file)
        parts.storage.remove_result(job.id)
        return {"deleted": job.id}

    return jobs


def _save(parts: Services, upload: Any, allowed: set[str], default: str, what: str) -> str:
    limit = parts.settings.max_upload_bytes
    try:
        return parts.storage.save_upload(upload.file, safe_extension(upload.filename, allowed, default), limit)
    except TooLarge:
        raise HTTPException(413, f"the {what} file is too large; the limit is {limit / (1 << 20):.3g} MB",
                            headers={"Connection": "close"}) from None
    except InputError:
        raise InputError(f"the uploaded {what} file is empty") from None


def _forget_portrait(parts: Services, path: Path) -> None:
    """A deleted job's portrait leaves no prepared avatar behind (in memory, on disk, or
    waiting in the admission hand-off), since an avatar holds the portrait's pixels."""
    from genhuman.server.avatars import portrait_prefix

    pool, handoff = parts.pool, parts.handoff
    digest = handoff.digests.get(path.name)
    handoff.digests.discard(path.name)
    caches = pool.disk is not None or any(w.avatars.capacity for w in pool.workers)
    if digest is None and caches and path.is_file():
        from genhuman.engines.avatar import image_digest
        from genhuman.media import load_image

        try:
            digest = image_digest(load_image(path, max_pixels=parts.settings.max_image_pixels))
        except Exception:  # an unreadable upload made no avatar
            return
    if digest is None:
        return
    removed = handoff.avatars.discard_prefix(portrait_prefix(digest)) + (pool.forget_portrait(digest) if caches else 0)
    if removed:
        log.info("removed %d cached avatar(s) of a deleted job's portrait", removed)


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


def _satisfiable(header: str, size: int) -> bool:
    """Every part of a well-formed range starts inside a file of ``size`` bytes (suffix
    ranges ``-n`` always do, for a non-empty file), as Starlette requires."""
    for spec in header.strip().partition("=")[2].split(","):
        first = spec.strip().partition("-")[0]
        if first and int(first) >= size:
            return False
    return size > 0
