"""The job table (SQLAlchemy, portable SQL: SQLite by default, PostgreSQL works the same)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, Text, create_engine, event
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex, made by the server
    status: Mapped[str] = mapped_column(String(16), index=True, default=QUEUED)
    engine: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # AnimateRequest fields
    text: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    image_file: Mapped[str] = mapped_column(String(64))  # names inside the storage folders
    audio_file: Mapped[str] = mapped_column(String(64))
    output_file: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(String(200), default="")
    error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    timings: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # frames, fps, size, seconds
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    # Who made the job: "token:<hash>", "session:<hash>" or "local" (genhuman.server.auth).
    # NULL for jobs made before owners existed: only the admin token sees those.
    owner: Mapped[Optional[str]] = mapped_column(String(64), nullable=True, index=True)


def make_db_engine(url: str) -> SqlEngine:
    """Create the tables if needed. SQLite gets WAL + a busy timeout so the request
    threads and the worker threads can write concurrently without 'database is locked'."""
    is_sqlite = url.startswith("sqlite")
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30} if is_sqlite else {},
                           pool_pre_ping=not is_sqlite)
    if is_sqlite:
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    Base.metadata.create_all(engine)
    _add_missing_columns(engine)
    return engine


def _add_missing_columns(engine: SqlEngine) -> None:
    """A database made by an older server lacks the columns added since (create_all makes
    missing tables, never missing columns): add them, empty."""
    from sqlalchemy import inspect, text

    present = {c["name"] for c in inspect(engine).get_columns(Job.__tablename__)}
    for column in Job.__table__.columns:
        if column.name not in present:
            kind = column.type.compile(dialect=engine.dialect)
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {Job.__tablename__} ADD COLUMN {column.name} {kind}"))
