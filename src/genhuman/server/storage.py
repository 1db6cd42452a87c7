"""Files on disk under server-made names: ``uploads/<uuid><ext>`` and ``results/<job>.mp4``.

No name or path from a request ever reaches the filesystem: the client's file name
is only used to pick an extension from a fixed allow-list.
"""

from __future__ import annotations

import errno
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO, Optional

from genhuman.errors import InputError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
AUDIO_EXTENSIONS = {".wav", ".flac", ".mp3", ".m4a", ".ogg", ".oga", ".opus", ".webm", ".mp4", ".aac", ".mov"}
CHUNK = 1 << 20


class TooLarge(Exception):
    """An upload went past its size cap."""


class DiskFull(Exception):
    """The disk filled up while an upload was written (the partial file is gone)."""


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def safe_extension(client_name: Optional[str], allowed: set[str], default: str) -> str:
    suffix = Path(client_name or "").suffix.lower()
    return suffix if suffix in allowed else default


class Storage:
    def __init__(self, data_dir: Path):
        self.uploads = Path(data_dir) / "uploads"
        self.results = Path(data_dir) / "results"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.results.mkdir(parents=True, exist_ok=True)

    def save_upload(self, source: BinaryIO, extension: str, max_bytes: int) -> str:
        """Copy ``source`` to a new upload file, at most ``max_bytes``; returns its name."""
        name = uuid.uuid4().hex + extension
        path = self.uploads / name
        written = 0
        try:
            with open(path, "wb") as out:
                while chunk := source.read(CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise TooLarge()
                    out.write(chunk)
        except BaseException as exc:
            path.unlink(missing_ok=True)
            if is_disk_full(exc):
                raise DiskFull() from None
            raise
        if written == 0:
            path.unlink(missing_ok=True)
            raise InputError("the uploaded file is empty")
        return name

    def new_upload_name(self, extension: str) -> str:
        return uuid.uuid4().hex + extension

    def upload_path(self, name: str) -> Path:
        return self.uploads / Path(name).name

    def result_path(self, job_id: str) -> Path:
        return self.results / f"{Path(job_id).name}.mp4"

    def remove(self, *names: Optional[str]) -> None:
        for name in names:
            if name:
                self.upload_path(name).unlink(missing_ok=True)

    def remove_result(self, job_id: str) -> None:
        self.result_path(job_id).unlink(missing_ok=True)

    def remove_partial_results(self) -> int:
        """Delete half-written videos (the writer's hidden ``.*.partial.mp4`` files) left by a
        killed server; called at start-up, before any worker runs. Returns how many."""
        stray = list(self.results.glob(".*.partial.mp4"))
        for path in stray:
            path.unlink(missing_ok=True)
        return len(stray)

    def remove_orphan_uploads(self, referenced: set[str]) -> int:
        """Delete uploads no job refers to (left by a server killed while it checked an
        upload); called at start-up, before any request. Returns how many."""
        stray = [p for p in self.uploads.iterdir() if p.is_file() and p.name not in referenced]
        for path in stray:
            path.unlink(missing_ok=True)
        return len(stray)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.uploads).free
