"""``/healthz``: liveness and queue figures (no token needed)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from genhuman import __version__
from genhuman.server.avatars import merged_stats
from genhuman.server.db import QUEUED, RUNNING
from genhuman.server.models import Health
from genhuman.server.services import Services, services

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=Health, response_model_exclude_none=True, summary="Liveness and load")
def healthz(parts: Annotated[Services, Depends(services)]) -> dict[str, Any]:
    store, pool = parts.store, parts.pool
    return {"status": "ok", "version": __version__, "queued": store.count(QUEUED), "running": store.count(RUNNING),
            "workers": len(pool.workers), "max_queue": parts.settings.max_queue,
            "disk_free_mb": parts.storage.free_bytes() // (1 << 20), "validation_backlog": parts.validation.pending,
            "avatar_cache": merged_stats([w.avatars for w in pool.workers]),
            "avatar_cache_disk": parts.disk.stats() if parts.disk is not None else None}
