"""The persistent job queue: every state change is one short transaction on the job table.

Claims are atomic (``UPDATE ... WHERE id=? AND status='queued'`` then check the row
count), so two workers never claim the same job. Start-up recovery re-queues every
'running' job, so one server process per database is the supported set-up (see docs).
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session, sessionmaker

from genhuman.server.db import (CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, SUCCEEDED, Job,
                                make_db_engine, utcnow)


class QueueFull(Exception):
    """The queue already holds ``max_queue`` jobs."""


def _seconds(a: Optional[datetime], b: Optional[datetime]) -> Optional[float]:
    if a is None or b is None:
        return None
    # SQLite hands datetimes back naive; they were written in UTC.
    a, b = (d if d.tzinfo else d.replace(tzinfo=timezone.utc) for d in (a, b))
    return round((b - a).total_seconds(), 3)


def _rowcount(result: Result[Any]) -> int:
    """The number of rows an UPDATE or DELETE matched (its result is a cursor result)."""
    assert isinstance(result, CursorResult), type(result)
    return result.rowcount


def _iso(d: Optional[datetime]) -> Optional[str]:
    if d is None:
        return None
    return (d if d.tzinfo else d.replace(tzinfo=timezone.utc)).isoformat()


def job_to_dict(job: Job, show_text: bool = True) -> dict[str, Any]:
    """The public view of a job (what the API returns): no file names, no owner; the
    transcript only for its owner (``show_text``)."""
    timings = dict(job.timings or {})
    queued = _seconds(job.created_at, job.started_at or (job.finished_at if job.status in FINISHED else None))
    if queued is not None:
        timings["queued"] = queued
    run = _seconds(job.started_at, job.finished_at)
    if run is not None and job.started_at is not None:
        timings["run"] = run
    return {
        "id": job.id,
        "status": job.status,
        "engine": job.engine,
        "options": job.options or {},
        "text": job.text if show_text else None,
        "progress": round(job.progress, 4),
        "message": job.message,
        "error": job.error,
        "attempts": job.attempts,
        "timings": timings,
        "result": job.result or {},
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "video_url": f"/v1/jobs/{job.id}/video" if job.status == SUCCEEDED else None,
    }


class JobStore:
    def __init__(self, url: str, max_queue: int, max_attempts: int):
        self.engine = make_db_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.max_queue = max_queue
        self.max_attempts = max_attempts
        self._create_lock = threading.Lock()  # count-then-insert must not interleave
        self.changed = threading.Condition()  # notified on new jobs (wakes idle workers)

    def _session(self) -> Session:
        return self.sessions()

    # -- submission ---------------------------------------------------------------------

    def count(self, *statuses: str) -> int:
        with self._session() as s:
            return s.scalar(select(func.count()).select_from(Job).where(Job.status.in_(statuses))) or 0

    def check_room(self) -> None:
        if self.count(QUEUED) >= self.max_queue:
            raise QueueFull()

    def create(self, *, engine: str, options: dict[str, Any], text: Optional[str],
               image_file: str, audio_file: str, owner: Optional[str] = None) -> dict[str, Any]:
        job_id = uuid.uuid4().hex
        with self._create_lock:
            self.check_room()
            with self._session() as s, s.begin():
                job = Job(id=job_id, status=QUEUED, engine=engine, options=options, text=text,
                          image_file=image_file, audio_file=audio_file, progress=0.0, message="queued",
                          attempts=0, cancel_requested=False, timings={}, result={}, created_at=utcnow(),
                          owner=owner)
                s.add(job)
            view = job_to_dict(job)
        with self.changed:
            self.changed.notify_all()
        return view

    # -- reading ------------------------------------------------------------------------

    def get(self, job_id: str) -> Optional[Job]:
        with self._session() as s:
            return s.get(Job, job_id)

    def list(self, limit: int = 50, status: Optional[str] = None, owner: Optional[str] = None) -> list[Job]:
        """The most recent jobs; only ``owner``'s when given (None: everyone's)."""
        with self._session() as s:
            q = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)
            if status:
                q = q.where(Job.status == status)
            if owner is not None:
                q = q.where(Job.owner == owner)
            return list(s.scalars(q))

    def referenced_files(self) -> set[str]:
        """Every upload name some job still refers to (start-up removes the others)."""
        with self._session() as s:
            rows = s.execute(select(Job.image_file, Job.audio_file)).all()
        return {name for row in rows for name in row if name}

    def position(self, job: Job) -> int:
        """How many queued jobs are ahead of this one."""
        with self._session() as s:
            return s.scalar(select(func.count()).select_from(Job).where(
                Job.status == QUEUED, Job.created_at < job.created_at)) or 0

    # -- the worker side ------------------------------------------------------------------

    def claim_next(self, worker: str) -> Optional[Job]:
        """Take the oldest queued job, or None when there is none."""
        while True:
            with self._session() as s:
                candidate = s.scalar(select(Job.id).where(Job.status == QUEUED)
                                     .order_by(Job.created_at, Job.id).limit(1))
            if candidate is None:
                return None
            with self._session() as s, s.begin():
                claimed = _rowcount(s.execute(
                    update(Job).where(Job.id == candidate, Job.status == QUEUED)
                    .values(status=RUNNING, attempts=Job.attempts + 1, worker=worker, started_at=utcnow(),
                            progress=0.0, message="starting")))
            if claimed == 1:
                return self.get(candidate)
            # another worker won this one (or it was cancelled meanwhile): try the next

    def set_progress(self, job_id: str, fraction: float, message: str) -> bool:
        """Record progress; returns True when a cancel was requested."""
        with self._session() as s, s.begin():
            s.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING)
                      .values(progress=fraction, message=message[:200]))
            return bool(s.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    def cancel_requested(self, job_id: str) -> bool:
        with self._session() as s:
            return bool(s.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    def finish(self, job_id: str, status: str, *, error: Optional[str] = None,
               output_file: Optional[str] = None, timings: Optional[dict[str, float]] = None,
               result: Optional[dict[str, Any]] = None) -> None:
        values: dict[str, Any] = dict(status=status, error=error, finished_at=utcnow(),
                                      message={SUCCEEDED: "done", FAILED: "failed", CANCELLED: "cancelled"}[status])
        if status == SUCCEEDED:
            values.update(progress=1.0, output_file=output_file, timings=timings or {}, result=result or {})
        with self._session() as s, s.begin():
            s.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING).values(**values))

    def release(self, job_id: str) -> None:
        """Put a job interrupted by a clean shutdown back in the queue; that try does not count."""
        with self._session() as s, s.begin():
            s.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING)
                      .values(status=QUEUED, attempts=Job.attempts - 1, progress=0.0, started_at=None,
                              worker=None, message="re-queued after a server shutdown"))

    def mean_run_seconds(self, default: float = 10.0) -> float:
        """Average run time of the last few successful jobs (for Retry-After)."""
        with self._session() as s:
            rows = s.execute(select(Job.started_at, Job.finished_at).where(Job.status == SUCCEEDED)
                             .order_by(Job.finished_at.desc()).limit(20)).all()
        runs = [t for t in (_seconds(a, b) for a, b in rows) if t is not None]
        return sum(runs) / len(runs) if runs else default

    def recover(self) -> tuple[int, int]:
        """On start-up: jobs left 'running' by a killed server are re-queued, or failed once
        they have been tried ``max_attempts`` times. Returns (requeued, failed)."""
        with self._session() as s, s.begin():
            failed = _rowcount(s.execute(
                update(Job).where(Job.status == RUNNING, Job.attempts >= self.max_attempts)
                .values(status=FAILED, finished_at=utcnow(), message="failed",
                        error=f"the server stopped while this job was running, {self.max_attempts} "
                              f"time(s); giving up")))
            requeued = _rowcount(s.execute(
                update(Job).where(Job.status == RUNNING)
                .values(status=QUEUED, progress=0.0, message="re-queued after a server restart",
                        started_at=None, worker=None)))
        return requeued, failed

    # -- the client side ------------------------------------------------------------------

    def cancel(self, job_id: str) -> Optional[str]:
        """Cancel a job: queued ones at once, running ones at the worker's next check.
        Returns the status after the call, or None for an unknown id."""
        with self._session() as s, s.begin():
            s.execute(update(Job).where(Job.id == job_id, Job.status == QUEUED)
                      .values(status=CANCELLED, finished_at=utcnow(), message="cancelled"))
            s.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING)
                      .values(cancel_requested=True, message="cancelling"))
            return s.scalar(select(Job.status).where(Job.id == job_id))

    def delete(self, job_id: str) -> Optional[Job]:
        """Delete a job that is not running; returns the deleted row (for its files)."""
        with self._session() as s, s.begin():
            job = s.get(Job, job_id)
            if job is None or job.status == RUNNING:
                return job
            # Conditional delete: a worker may claim the job between the read and here.
            deleted = _rowcount(s.execute(delete(Job).where(Job.id == job_id, Job.status != RUNNING)
                                .execution_options(synchronize_session=False)))
            if deleted == 0:  # now running (the API answers 409) or gone: re-read it
                return s.execute(select(Job).where(Job.id == job_id)
                                 .execution_options(populate_existing=True)).scalar_one_or_none()
            return job
