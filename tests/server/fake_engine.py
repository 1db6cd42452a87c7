"""A stand-in engine for server tests that need control over timing or failure.

It implements the engine protocol (validate, prepare_avatar, stream, animate; prepare_avatar
finds the face, as the real engines do) and writes a
real (still) MP4 of the portrait, ``frames`` frames, sleeping ``delay`` s per frame. It is
driven by environment variables so that subprocess tests can use it too:
GENHUMAN_FAKE_DELAY (seconds per frame), GENHUMAN_FAKE_FRAMES, GENHUMAN_FAKE_PREPARE
(seconds prepare_avatar sleeps, standing in for face detection / reference encoding).

Its own refusals, for the tests: ``validate`` wants width and height multiples of 8 (like
a diffusion model's size multiple); seed 13 fails at run time ("no face found"); seed 14
raises a RuntimeError whose text names a server path (it must not reach the client).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from genhuman.engines.avatar import Avatar
from genhuman.engines.base import AnimateRequest, AnimateResult, EngineOptions, Frame
from genhuman.errors import InputError
from genhuman.progress import check_cancel, report
from genhuman.request import warn_unused

SIZE_MULTIPLE = 8


class FakeEngine:
    name = "fake"
    loads = 0  # how many instances were built (the worker must cache them)
    prepares = 0  # how many times prepare_avatar ran (the server caches avatars)
    _count_lock = threading.Lock()

    def __init__(self, options: EngineOptions):
        with self._count_lock:
            type(self).loads += 1
        self.options = options

    def validate(self, request: AnimateRequest) -> AnimateRequest:
        warn_unused(request, self.name)
        for side in (request.width, request.height):
            if side is not None and side % SIZE_MULTIPLE:
                raise InputError(f"width and height must be multiples of {SIZE_MULTIPLE} for the fake engine, "
                                 f"got {request.width or '-'}x{request.height or '-'}")
        return request.replace(fps=request.fps or 25, seed=0 if request.seed is None else request.seed)

    def prepare_avatar(self, image, face_index: int = 0, max_size: Optional[int] = None) -> Avatar:
        from genhuman.media import load_image

        with self._count_lock:
            type(self).prepares += 1
        from genhuman.face import face_landmarks

        time.sleep(float(os.environ.get("GENHUMAN_FAKE_PREPARE", "0")))
        picture = load_image(image)
        face_landmarks(picture, face_index)  # like a real engine: the avatar is the face found
        picture = picture[:64, :64]
        return Avatar(self.name, "", {"picture": np.ascontiguousarray(picture)},
                      {"face_index": face_index, "max_size": max_size})

    def stream(self, avatar: Avatar, audio_chunks, request: AnimateRequest, progress=None,
               should_cancel=None) -> Iterator[Frame]:
        request = self.validate(request)
        avatar.check(self.name, "")
        delay = float(os.environ.get("GENHUMAN_FAKE_DELAY", "0"))
        frames = int(os.environ.get("GENHUMAN_FAKE_FRAMES", "4"))
        for _ in audio_chunks:
            pass
        for i in range(frames):
            check_cancel(should_cancel)
            time.sleep(delay)
            report(progress, (i + 1) / frames, f"frame {i + 1}/{frames}")
            yield Frame(i, avatar.arrays["picture"], float(request.fps))

    def animate(self, image, audio, output, request: AnimateRequest, progress=None, should_cancel=None):
        from genhuman.media import VideoWriter

        request = self.validate(request)
        if request.seed == 13:
            raise InputError("no face found in the image")
        if request.seed == 14:
            raise RuntimeError(f"could not write {Path(output).resolve()}")
        avatar = image if isinstance(image, Avatar) else self.prepare_avatar(image, request.face_index,
                                                                              request.max_size)
        frames = 0
        with VideoWriter(output, fps=request.fps) as writer:
            for frame in self.stream(avatar, [], request, progress, should_cancel):
                writer.write(frame.image)
                frames += 1
        return AnimateResult(output=Path(output), frames=frames, fps=request.fps, width=64, height=64,
                             seconds=frames / request.fps, timings={"render": 0.0})
