"""Admitting a job: cheap checks first, expensive ones on a small bounded pool.

In the request thread: the form values, the engine's own refusals, the upload copied to
disk, and the header checks (image format and declared size, audio container and
duration) that cost a few bytes of reading. Then the expensive part (decoding, the face
check or the avatar, TTS) runs on ``validation_threads`` threads with a bounded backlog:
when it is full the submission is refused at once (503), so a burst costs the server at
most that many decodes at a time, whatever the number of request threads.

What admission decoded and checked is handed to the worker (:class:`Handoff`): the
portrait's content digest, so the worker does not decode and hash it again, and for
engines without weights the prepared avatar itself (made from the portrait shrunk to the
job's ``max_size``; its face found), so the worker does not detect the face again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from genhuman.errors import InputError
from genhuman.request import AnimateRequest
from genhuman.server import validation
from genhuman.server.avatars import LRU, avatar_key

log = logging.getLogger(__name__)


class Busy(Exception):
    """Every validation thread is busy and the backlog is full."""


@dataclass
class Admitted:
    image_file: str  # the portrait's upload name
    digest: str  # image_digest of its decoded pixels


class ValidationPool:
    """``threads`` threads, at most ``threads + backlog`` submissions at once (a slot is
    taken by :meth:`submit`; the server also looks at :meth:`full` before reading a body,
    so that most refusals cost nothing)."""

    def __init__(self, threads: int, backlog: int):
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="validate")
        self.capacity = threads + backlog
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._lock = threading.Lock()
        self.pending = 0

    def reserve(self) -> bool:
        """Take a slot for one submission (False when none is free); :meth:`release` it."""
        if not self._slots.acquire(blocking=False):
            return False
        with self._lock:
            self.pending += 1
        return True

    def release(self, _future: Optional[Future] = None) -> None:
        with self._lock:
            self.pending -= 1
        self._slots.release()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run ``fn`` in a slot of its own; Busy when none is free."""
        if not self.reserve():
            raise Busy()
        try:
            future = self.executor.submit(fn, *args)
        except BaseException:
            self.release()
            raise
        future.add_done_callback(self.release)
        return future

    def full(self) -> bool:
        return self.pending >= self.capacity

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.wrap_future(self.submit(fn, *args))

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class Handoff:
    """What admission worked out, for the worker: digests by upload name, prepared avatars
    by avatar key. Bounded LRUs: an entry that fell out only means the worker does the work."""

    def __init__(self, capacity: int, remember_faces: bool = True):
        self.digests: LRU[str] = LRU(max(1, capacity * 4))
        self.avatars: LRU[Any] = LRU(capacity)
        # (digest, face index, max size) whose face was found; off with the avatar caches
        # (a remembered face would then only move the detection to the worker)
        self.faces: LRU[bool] = LRU(capacity * 16 if remember_faces else 0)
        self.known: Callable[[str], bool] = lambda key: False  # an avatar the workers hold (set by the app)

    def take_avatar(self, key: str) -> Optional[Any]:
        avatar = self.avatars.get(key)
        if avatar is not None:
            self.avatars.discard(key)
        return avatar


def cap_size(request: AnimateRequest, max_output_size: int) -> AnimateRequest:
    """The server's output cap: an unset max_size is the cap; a larger one is refused."""
    if request.max_size is None:
        return request.replace(max_size=max_output_size)
    if request.max_size > max_output_size:
        raise InputError(f"max size must be at most {max_output_size} on this server, got {request.max_size}")
    return request


def check_headers(image: Path, audio: Optional[Path], max_pixels: int, max_seconds: float) -> None:
    """The cheap checks: format and declared size from the headers, nothing decoded."""
    from genhuman.media import probe_audio, probe_image

    try:
        probe_image(image, max_pixels=max_pixels)
    except InputError as exc:
        raise validation.hide_path(exc, image, "the uploaded image") from None
    if audio is not None:
        try:
            probe_audio(audio, max_seconds)
        except InputError as exc:
            raise validation.hide_path(exc, audio, "the uploaded audio") from None


def needs_face(engine_name: str) -> bool:
    """Whether the engine animates a detected face (EchoMimicV3 Flash takes the whole picture)."""
    from genhuman.engines import get_engine_class

    try:
        return bool(getattr(get_engine_class(engine_name), "needs_face", True))
    except InputError:  # an unknown name is refused elsewhere, with its own message
        return True


def check_media(storage: Any, handoff: Handoff, *, image_file: str, audio_file: Optional[str], speak: Optional[str],
                speech_file: str, request: AnimateRequest, engine: Optional[Any], engine_name: str,
                accelerated: bool, max_pixels: int, max_seconds: float) -> Admitted:
    """The expensive checks (on the validation pool). ``engine``: an instance without weights
    whose ``prepare_avatar`` is the face check, or None (then the face is only detected)."""
    from genhuman.engines.avatar import image_digest
    from genhuman.face import face_landmarks
    from genhuman.media import load_image, resize_max

    path = storage.upload_path(image_file)
    try:
        picture = load_image(path, max_pixels=max_pixels)
    except InputError as exc:
        raise validation.hide_path(exc, path, "the uploaded image") from None
    digest = image_digest(picture)  # of the upload's pixels, as the worker's avatar keys
    capped = resize_max(picture, request.max_size)
    del picture
    face_key = (digest, request.face_index, request.max_size)
    # a face found in the same pixels before is not looked for again
    if needs_face(engine_name) and handoff.faces.get(face_key) is None:
        try:
            if engine is not None and hasattr(engine, "prepare_avatar"):
                checked = engine.validate(request) if hasattr(engine, "validate") else request
                key = avatar_key(getattr(engine, "name", engine_name), digest, checked,
                                 accelerated=accelerated, weights=None)
                if not handoff.known(key):  # a worker's avatar of these pixels: its face was found
                    handoff.avatars.put(key, engine.prepare_avatar(capped, request.face_index, request.max_size))
            else:
                face_landmarks(capped, request.face_index, name="the uploaded image")
        except InputError as exc:
            raise _uploaded(validation.hide_path(exc, path, "the uploaded image")) from None
        handoff.faces.put(face_key, True)
    handoff.digests.put(image_file, digest)
    if audio_file is not None:
        validation.check_audio(storage.upload_path(audio_file), max_seconds)
    elif speak:
        validation.speak_to_file(speak, storage.upload_path(speech_file))
    return Admitted(image_file, digest)



def _uploaded(exc: InputError) -> InputError:
    """Face messages about an array say "the image"; here it is the upload."""
    message = str(exc)
    return InputError(message[: -len("the image")] + "the uploaded image") if message.endswith(" the image") else exc
