"""Writing a converted weights folder so that a failure leaves nothing behind."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genhuman.errors import InputError


def check_destination(destination: Path) -> None:
    """A conversion writes into a new or empty folder only."""
    if destination.exists() and any(destination.iterdir()):
        raise InputError(f"destination {str(destination)!r} exists and is not empty")


@contextmanager
def staged_folder(destination: Path) -> Iterator[Path]:
    """A hidden sibling folder to write into, renamed to ``destination`` when the block ends, and
    removed if the block raises."""
    work = destination.parent / f".{destination.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
        if destination.exists():
            destination.rmdir()
        work.rename(destination)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
