"""The server's parts, built once per app, and the FastAPI dependencies that hand them to
the routes: ``services`` (everything), ``caller`` (who is asking; 401 without a right token)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from fastapi import Depends, HTTPException, Request

from genhuman.errors import InputError
from genhuman.request import AnimateRequest, EngineOptions
from genhuman.server.admission import Handoff, ValidationPool
from genhuman.server.auth import Caller, identify
from genhuman.server.avatars import DiskAvatars
from genhuman.server.db import Job
from genhuman.server.jobs import JobStore
from genhuman.server.ratelimit import RateLimiter
from genhuman.server.settings import ServerSettings
from genhuman.server.storage import Storage
from genhuman.server.worker import WorkerPool

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: ServerSettings
    storage: Storage
    store: JobStore
    pool: WorkerPool
    validation: ValidationPool
    handoff: Handoff
    limiter: RateLimiter
    disk: Optional[DiskAvatars]
    _validators: dict[tuple[str, bool], Any] = field(default_factory=dict)
    _validators_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: ServerSettings) -> "Services":
        storage = Storage(settings.data_dir)
        store = JobStore(settings.database_url, settings.max_queue, settings.max_attempts)
        disk = DiskAvatars(Path(settings.data_dir) / "avatars", settings.avatar_cache_disk) \
            if settings.avatar_cache_disk else None
        handoff = Handoff(min(settings.max_queue, 16) + (settings.workers or 1),
                          remember_faces=bool(settings.avatar_cache or disk))
        pool = WorkerPool(store, storage, settings.workers, settings.weights, settings.avatar_cache, disk, handoff)
        handoff.known = lambda key: any(key in w.avatars for w in pool.workers) or (disk is not None
                                                                                    and disk.has(key))
        return cls(settings, storage, store, pool, ValidationPool(settings.validation_threads,
                                                                  settings.validation_backlog),
                   handoff, RateLimiter(settings.rate_limit, settings.rate_burst), disk)

    # -- engines --------------------------------------------------------------------------

    def check_engine(self, name: str) -> str:
        from genhuman.engines import ENGINES, get_engine_class
        from genhuman.engines.diffusion import DiffusionEngine

        allowed = self.settings.engines or list(ENGINES)
        if name not in allowed or name not in ENGINES:
            raise InputError(f"unknown engine {name[:40]!r}; choose one of: {', '.join(allowed)}")
        engine_class = get_engine_class(name)  # InputError when it is not part of this build
        if issubclass(engine_class, DiffusionEngine) and name not in self.settings.weights:
            raise InputError(f"engine {name!r} has no weights on this server (start it with --weights {name}=DIR)")
        return name

    def light_engine(self, name: str, accelerated: bool) -> Optional[Any]:
        """An instance of an engine without weights (built here once, cheap), for validating
        requests and preparing avatars at admission; None for diffusion engines."""
        from genhuman.engines import get_engine_class
        from genhuman.engines.diffusion import DiffusionEngine

        engine_class = get_engine_class(name)
        if issubclass(engine_class, DiffusionEngine):
            return None
        with self._validators_lock:
            key = (name, accelerated)
            if key not in self._validators:
                self._validators[key] = engine_class(EngineOptions(accelerated=accelerated))
            return self._validators[key]

    def check_with_engine(self, name: str, request: AnimateRequest, accelerated: bool) -> None:
        """The engine's own refusals (e.g. a size it cannot generate) as a 400 now, where that
        is cheap: engines without weights, and diffusion engines a worker has already loaded.
        Otherwise the worker fails such a job with the same one line."""
        try:
            engine = self.light_engine(name, accelerated) or self.pool.ready_engine(name, accelerated)
            if engine is not None and hasattr(engine, "validate"):
                engine.validate(request)
        except InputError:
            raise
        except Exception:  # a broken validator must not refuse the job: the worker decides
            log.exception("engine %s: validating a request failed", name)

    # -- jobs -----------------------------------------------------------------------------

    def find(self, job_id: str, caller: Caller) -> Job:
        """The caller's job (any job for the admin), else 404: others' jobs do not exist."""
        job = self.store.get(job_id) if len(job_id) == 32 else None
        if job is None or not caller.sees(job.owner):
            raise HTTPException(404, f"no job with id {job_id[:40]!r}")
        return job


# async: they do not block, so they need no trip through the thread pool
async def services(request: Request) -> Services:
    return request.app.state.services


async def caller(request: Request, parts: Services = Depends(services)) -> Caller:
    found = identify(request, parts.settings)
    if found is None:
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
    return found
