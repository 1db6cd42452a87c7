"""Worker threads: each claims queued jobs one at a time and runs them on its device.

Engines are heavy to load, so each worker keeps one instance per engine name, and a small
cache of prepared avatars (:mod:`genhuman.server.avatars`): a job whose portrait was
already prepared with the same engine and geometry options goes straight to
``engine.animate(avatar, ...)``. Progress goes to the job row (throttled); the same write
tells the worker whether the client asked to cancel.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import threading
import time
from pathlib import Path
from typing import Any, Optional, Union

from genhuman.engines.avatar import Avatar, image_digest
from genhuman.engines.base import AnimateRequest, EngineOptions
from genhuman.errors import Cancelled, InputError
from genhuman.server.admission import Handoff
from genhuman.server.avatars import LRU, AvatarCache, DiskAvatars, avatar_key, portrait_prefix
from genhuman.server.db import CANCELLED, FAILED, SUCCEEDED, Job
from genhuman.server.jobs import JobStore
from genhuman.server.storage import Storage, is_disk_full
from genhuman.server.validation import hide_path, request_from_job

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # seconds between progress writes
IDLE_WAIT = 2.0  # seconds between queue polls when idle (new jobs also wake workers)
MAX_BACKOFF = 60.0  # longest pause between tries while the database refuses
FINISH_TRIES = 3


def default_devices(count: Optional[int], accelerators: bool = True) -> list[Optional[str]]:
    """One worker per accelerator by default (one on CPU); ``count`` overrides.
    ``accelerators=False`` (no engine on this server uses one: no diffusion weights) skips
    asking torch, whose import alone costs seconds of start-up."""
    gpus = 0
    if accelerators:
        try:
            import torch

            gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        except ImportError:
            pass
    if count is None:
        count = max(1, gpus)
    if gpus == 0:
        return [None] * count
    return [f"cuda:{i % gpus}" for i in range(count)]


class Worker(threading.Thread):
    def __init__(self, name: str, store: JobStore, storage: Storage, device: Optional[str],
                 stop: threading.Event, weights: Optional[dict[str, Path]] = None, avatar_cache: int = 16,
                 disk: Optional[DiskAvatars] = None, handoff: Optional[Handoff] = None):
        super().__init__(name=name, daemon=True)
        self.store, self.storage, self.device, self.stop_event = store, storage, device, stop
        self.weights = weights or {}
        self.engines: dict[tuple[str, bool], Any] = {}
        self.avatars = AvatarCache(avatar_cache)
        self.disk = disk  # shared by the pool's workers, or None
        self.validated: set[tuple[str, bool]] = set()  # engines whose validate ran (weights loaded)
        self.digests: LRU[str] = LRU(avatar_cache * 4)  # upload bytes' sha256 -> image_digest
        self.handoff = handoff  # what admission decoded and prepared (shared by the pool)
        self.unrecorded: list[tuple[str, str, dict[str, Any]]] = []  # outcomes the database refused

    def run(self) -> None:
        failures = 0  # consecutive database failures: logged once, retried with a growing pause
        while not self.stop_event.is_set():
            try:
                self.record_pending()
                job = self.store.claim_next(self.name)
                if failures:
                    log.warning("%s: the database answers again after %d failed tries", self.name, failures)
                failures = 0
            except Exception:  # a database hiccup (or a full disk) must not kill the worker
                if failures == 0:
                    log.exception("%s: claiming a job failed; retrying quietly", self.name)
                failures += 1
                self.stop_event.wait(min(MAX_BACKOFF, IDLE_WAIT * 2 ** min(failures, 5)))
                continue
            if job is None:
                with self.store.changed:
                    self.store.changed.wait(IDLE_WAIT)
                continue
            try:
                self.run_job(job)
            except Exception:  # e.g. the database went away while recording the result
                log.exception("job %s: could not record its outcome", job.id)

    def finish(self, job_id: str, status: str, **values: Any) -> None:
        """Record a job's outcome, retrying; when the database still refuses, the outcome
        waits in ``unrecorded`` (tried again before each claim), so no job stays 'running'
        while the server runs."""
        for attempt in range(FINISH_TRIES):
            try:
                self.store.finish(job_id, status, **values)
                return
            except Exception:
                if attempt == FINISH_TRIES - 1:
                    log.exception("job %s: recording its outcome failed %d times; will retry", job_id, FINISH_TRIES)
                else:
                    time.sleep(0.2 * (attempt + 1))
        self.unrecorded.append((job_id, status, values))

    def record_pending(self) -> None:
        while self.unrecorded:
            job_id, status, values = self.unrecorded[0]
            self.store.finish(job_id, status, **values)  # raises while the database refuses
            self.unrecorded.pop(0)

    def engine(self, name: str, accelerated: bool):
        key = (name, accelerated)
        if key not in self.engines:
            from genhuman.engines import load_engine

            options = EngineOptions(weights=self.weights.get(name), device=self.device, accelerated=accelerated)
            self.engines[key] = load_engine(name, options)
        return self.engines[key]

    def avatar(self, engine: Any, job: Job, request: AnimateRequest, checked: Optional[AnimateRequest],
               accelerated: bool, fresh: bool = False) -> tuple[Union[Path, Avatar], Optional[str], str]:
        """What to animate: a prepared avatar (from memory, from disk, from admission, or
        prepared now and kept), or the portrait's path when the caches are off and admission
        prepared none, or the engine cannot prepare avatars. ``checked`` is
        ``engine.validate(request)`` (its defaults filled in: an unset size is the default
        size); ``fresh``: prepare it again whatever the caches hold. Returns (it, "hit" /
        "disk" / "admission" / "miss", or None when no cache was used, the key)."""
        path = self.storage.upload_path(job.image_file)
        caching = self.avatars.capacity > 0 or self.disk is not None
        if checked is None or not hasattr(engine, "prepare_avatar"):
            return path, None, ""
        from genhuman.media import load_image

        # The key hashes the decoded portrait: admission left its digest; else the same
        # upload bytes seen before skip the decode.
        digest, picture = self.handoff.digests.get(job.image_file) if self.handoff else None, None
        if digest is None and not caching:
            return path, None, ""
        if digest is None:
            try:
                file_hash = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                raise InputError("the uploaded image is no longer on the server; submit the job again") from None
            digest = self.digests.get(file_hash)
            if digest is None:
                try:
                    picture = load_image(path)
                except InputError as exc:
                    raise hide_path(exc, path, "the uploaded image") from None
                digest = image_digest(picture)
                self.digests.put(file_hash, digest)
        weights = self.weights.get(job.engine)
        key = avatar_key(getattr(engine, "name", job.engine), digest, checked,
                         accelerated=accelerated, weights=str(weights) if weights else None)
        if not fresh:
            avatar = self.avatars.get(key)
            if avatar is not None:
                return avatar, "hit", key
            avatar = self.disk.load(key) if self.disk is not None else None
            if avatar is not None:
                self.avatars.put(key, avatar)
                return avatar, "disk", key
            avatar = self.handoff.take_avatar(key) if self.handoff else None
            if avatar is not None:  # admission prepared it (its face check): no second detection
                self._keep(key, avatar)
                return avatar, "admission", key
        if not caching:
            return path, None, ""
        if picture is None:
            try:
                picture = load_image(path)
            except InputError as exc:
                raise hide_path(exc, path, "the uploaded image") from None
        kwargs: dict[str, Any] = {}
        if "request" in inspect.signature(engine.prepare_avatar).parameters:
            kwargs["request"] = request  # diffusion engines take the generation size from it
        try:
            avatar = engine.prepare_avatar(picture, request.face_index, request.max_size, **kwargs)
        except InputError as exc:
            raise hide_path(exc, path, "the uploaded image") from None
        self._keep(key, avatar)
        return avatar, "miss", key

    def _keep(self, key: str, avatar: Avatar) -> None:
        self.avatars.put(key, avatar)
        if self.disk is not None:
            self.disk.save(key, avatar)

    def forget(self, key: str) -> None:
        self.avatars.discard(key)
        if self.disk is not None:
            self.disk.discard(key)

    def run_job(self, job: Job) -> None:
        log.info("job %s: running on %s (attempt %d)", job.id, self.name, job.attempts)
        output = self.storage.result_path(job.id)
        last_write = [0.0]
        cancel = [False]

        def progress(fraction: float, message: str) -> None:
            now = time.monotonic()
            if now - last_write[0] >= PROGRESS_INTERVAL:
                last_write[0] = now
                cancel[0] = self.store.set_progress(job.id, fraction, message)

        def should_cancel() -> bool:
            return cancel[0] or self.stop_event.is_set()

        started = time.perf_counter()
        try:
            if self.store.cancel_requested(job.id):
                raise Cancelled("cancelled")
            request, accelerated = request_from_job(job.options or {}, job.text)
            engine = self.engine(job.engine, accelerated)
            # the engine's own refusals (e.g. a size these weights cannot generate) end the job
            # here with one line; for the diffusion engines this loads the weights (once)
            checked = engine.validate(request) if hasattr(engine, "validate") else None
            if checked is not None:
                self.validated.add((job.engine, accelerated))
            loaded = time.perf_counter()
            source, cache, key = self.avatar(engine, job, request, checked, accelerated)
            prepared = time.perf_counter()
            if should_cancel():
                raise Cancelled("cancelled")
            audio = self.storage.upload_path(job.audio_file)
            try:
                result = engine.animate(source, audio, output, request, progress=progress,
                                        should_cancel=should_cancel)
            except InputError:
                if cache != "disk":
                    raise
                # a saved avatar the engine refuses (e.g. made with other weights): prepare it again
                log.warning("job %s: the saved avatar was refused; preparing it again", job.id)
                self.forget(key)
                source, cache, key = self.avatar(engine, job, request, checked, accelerated, fresh=True)
                prepared = time.perf_counter()
                result = engine.animate(source, audio, output, request, progress=progress,
                                        should_cancel=should_cancel)
        except Cancelled:
            output.unlink(missing_ok=True)
            if self.stop_event.is_set() and not self.store.cancel_requested(job.id):
                self.store.release(job.id)  # server shutting down: run it again next start
                return
            self.finish(job.id, CANCELLED, error="cancelled by the client")
            return
        except InputError as exc:
            output.unlink(missing_ok=True)
            exc = hide_path(exc, self.storage.upload_path(job.image_file), "the uploaded image")
            exc = hide_path(exc, self.storage.upload_path(job.audio_file), "the uploaded audio")
            self.finish(job.id, FAILED, error=str(exc))
            return
        except Exception as exc:  # a bug or an environment problem: fail this job, keep serving
            log.exception("job %s failed", job.id)
            output.unlink(missing_ok=True)
            # only the type: an exception's text can carry server paths
            reason = "the server ran out of disk space" if is_disk_full(exc) \
                else f"internal error: {type(exc).__name__}"
            self.finish(job.id, FAILED, error=reason)
            return
        done = time.perf_counter()
        timings = {"engine_load": round(loaded - started, 3), "prepare_avatar": round(prepared - loaded, 3),
                   "animate": round(done - prepared, 3)}
        timings.update({k: round(v, 3) for k, v in (result.timings or {}).items()})
        outcome = {"frames": result.frames, "fps": result.fps, "width": result.width, "height": result.height,
                   "seconds": round(result.seconds, 3)}
        if cache is not None:
            outcome["avatar_cache"] = cache
        self.finish(job.id, SUCCEEDED, output_file=output.name, timings=timings, result=outcome)
        log.info("job %s: done in %.1f s (avatar: %s)", job.id, done - started, cache or "not cached")


class WorkerPool:
    def __init__(self, store: JobStore, storage: Storage, count: Optional[int],
                 weights: Optional[dict[str, Path]] = None, avatar_cache: int = 16,
                 disk: Optional[DiskAvatars] = None, handoff: Optional[Handoff] = None):
        self.stop_event = threading.Event()
        self.disk = disk
        self.workers = [Worker(f"worker-{i}", store, storage, device, self.stop_event, weights, avatar_cache, disk,
                               handoff)
                        for i, device in enumerate(default_devices(count, accelerators=bool(weights)))]
        self.store = store

    def forget_portrait(self, digest: str) -> int:
        """Drop every cached avatar (memory and disk) made from the portrait with this
        ``image_digest`` (its job was deleted); returns how many."""
        prefix = portrait_prefix(digest)
        removed = sum(w.avatars.discard_prefix(prefix) for w in self.workers)
        if self.disk is not None:
            removed += self.disk.discard_prefix(prefix)
        return removed

    def ready_engine(self, name: str, accelerated: bool) -> Optional[Any]:
        """An engine instance of a worker that has already validated a request with it (so
        its weights are loaded and validating another is cheap), or None."""
        for worker in self.workers:
            if (name, accelerated) in worker.validated:
                return worker.engines.get((name, accelerated))
        return None

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        with self.store.changed:
            self.store.changed.notify_all()
        for w in self.workers:
            w.join(timeout)
