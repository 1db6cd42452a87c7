"""A stand-in engine for server tests that need control over timing or failure.

It writes a real (still) MP4 of the portrait, ``frames`` frames, sleeping ``delay`` s
per frame; option ``extra``-free, so it is driven by environment variables in
subprocess tests: GENHUMAN_FAKE_DELAY (seconds per frame), GENHUMAN_FAKE_FRAMES.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from genhuman.engines.base import AnimateRequest, AnimateResult, EngineOptions
from genhuman.errors import InputError
from genhuman.progress import check_cancel, report


class FakeEngine:
    name = "fake"
    loads = 0  # how many instances were built (the worker must cache them)

    def __init__(self, options: EngineOptions):
        type(self).loads += 1
        self.options = options

    def animate(self, image, audio, output, request: AnimateRequest, progress=None, should_cancel=None):
        from genhuman.media import load_image, VideoWriter

        delay = float(os.environ.get("GENHUMAN_FAKE_DELAY", "0"))
        frames = int(os.environ.get("GENHUMAN_FAKE_FRAMES", "4"))
        if request.seed == 13:
            raise InputError("no face found in the image")
        picture = load_image(image)[:64, :64]
        with VideoWriter(output, fps=request.fps) as writer:
            for i in range(frames):
                check_cancel(should_cancel)
                time.sleep(delay)
                writer.write(picture)
                report(progress, (i + 1) / frames, f"frame {i + 1}/{frames}")
        return AnimateResult(output=Path(output), frames=frames, fps=request.fps, width=64, height=64,
                             seconds=frames / request.fps, timings={"render": 0.0})
