"""What the API returns, as pydantic models: the OpenAPI schema is built from these, so
the documented bodies are the real ones, errors included (``{"error": "..."}``)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, Field

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class ErrorBody(BaseModel):
    error: str = Field(description="one sentence saying what was wrong; never a server path")


class JobView(BaseModel):
    id: str
    status: Status
    engine: str
    options: dict[str, Any] = Field(description="the options the job was made with (request model names)")
    text: Optional[str] = Field(description="text spoken or transcript; null for other owners' jobs")
    progress: float = Field(ge=0, le=1)
    message: str
    error: Optional[str]
    attempts: int
    timings: dict[str, float] = Field(description="seconds: queued, run, and the engine's stages")
    result: dict[str, Any] = Field(description="frames, fps, width, height, seconds, avatar_cache")
    created_at: Optional[str]
    started_at: Optional[str]
    finished_at: Optional[str]
    video_url: Optional[str]
    queue_position: Optional[int] = Field(None, description="queued jobs ahead of this one (queued jobs only)")


class JobList(BaseModel):
    jobs: list[JobView]


class Deleted(BaseModel):
    deleted: str


class EngineInfo(BaseModel):
    name: str
    available: bool
    reason: Optional[str] = None
    options: list[str] = []  # the job form fields this engine reads (the request model's, by name)


class EngineList(BaseModel):
    engines: list[EngineInfo]
    default: str


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    queued: int
    running: int
    workers: int
    max_queue: int
    disk_free_mb: int
    validation_backlog: int = Field(description="submissions being checked or waiting for a check")
    avatar_cache: dict[str, int]
    avatar_cache_disk: Optional[dict[str, int]] = None


_WHY = {400: "bad input (one sentence, the CLI's wording)", 401: "missing or wrong bearer token",
        403: "a foreign Host or a cross-origin request", 404: "no such job (or not yours)",
        408: "the request body came too slowly", 409: "the job is not in a state that allows this",
        410: "the video is gone", 413: "the request or one file is too large",
        416: "the range is outside the video", 422: "a malformed query or form",
        429: "the queue is full or this client sent too many jobs (see Retry-After)",
        503: "the upload checks are saturated (see Retry-After)", 507: "the server is out of disk space"}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """An OpenAPI ``responses`` entry for each status: the error body and why."""
    return {code: {"model": ErrorBody, "description": _WHY[code]} for code in codes}
