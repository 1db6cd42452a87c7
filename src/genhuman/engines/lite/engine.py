"""The lite engine: face mesh + speech analysis + a warp per frame. No generative weights."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from genhuman.engines.base import AnimateRequest, AnimateResult, AudioInput, EngineOptions, ImageInput
from genhuman.engines.lite.motion import HeadMotion, blink_weights, head_motion
from genhuman.engines.lite.render import FrameWeights, Renderer
from genhuman.errors import InputError
from genhuman.progress import CancelFn, ProgressFn, Stage, check_cancel, report

if TYPE_CHECKING:
    from genhuman.speech import MouthTrack

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
MAX_FPS = 120
# Small openings are lifted: a gap of a pixel or two reads as closed lips on screen.
OPENING_GAMMA = 0.65
ROUND_SHARE = 0.7  # roundness adds to the inward pull of a negative width; keep the sum natural
# Lips that were parted in the photo and sealed by the warp still read as slightly apart;
# a little press while the mouth is shut makes them read as closed.
CLOSED_PRESS = 0.6


def frame_weights(track: "MouthTrack", blinks: np.ndarray, head: HeadMotion, k: int) -> FrameWeights:
    """Frame ``k``'s weights from the mouth track and the planned motion."""
    opening = float(np.clip(track.opening[k], 0.0, 1.0)) ** OPENING_GAMMA
    press = float(np.clip(track.lip_press[k], 0.0, 1.0))
    return FrameWeights(
        open=opening,
        widen=float(np.clip(track.width[k], -1.0, 1.0)),
        round=ROUND_SHARE * float(np.clip(track.roundness[k], 0.0, 1.0)),
        press=press + (1.0 - press) * CLOSED_PRESS * (1.0 - opening),
        teeth=float(np.clip(track.teeth[k], 0.0, 1.0)),
        blink=float(blinks[k]),
        roll=float(head.roll[k]), shift_x=float(head.shift_x[k]), shift_y=float(head.shift_y[k]),
    )


class LiteEngine:
    """``LiteEngine(EngineOptions()).animate(image, audio, "out.mp4", AnimateRequest())``."""

    name = "lite"

    def __init__(self, options: Optional[EngineOptions] = None) -> None:
        self.options = options or EngineOptions()

    def animate(
        self,
        image: ImageInput,
        audio: AudioInput,
        output: Union[str, Path],
        request: AnimateRequest,
        progress: Optional[ProgressFn] = None,
        should_cancel: Optional[CancelFn] = None,
    ) -> AnimateResult:
        # Imported here: the engine registry imports this module to list engines.
        from genhuman.face import face_landmarks
        from genhuman.media import VideoWriter, load_audio, load_image, resize_max
        from genhuman.speech import mouth_track

        output = Path(output)
        if output.suffix.lower() != ".mp4":
            raise InputError(f"output must be an .mp4 file, got {str(output)!r}")
        fps = request.fps
        if not isinstance(fps, (int, float)) or not 1 <= fps <= MAX_FPS:
            raise InputError(f"fps must be between 1 and {MAX_FPS}, got {fps!r}")
        timings: dict[str, float] = {}

        def lap(stage: str, started: float) -> float:
            now = time.perf_counter()
            timings[stage] = now - started
            return now

        started = time.perf_counter()
        report(progress, 0.0, "reading inputs")
        picture = resize_max(load_image(image), request.max_size)
        wave = load_audio(audio, SAMPLE_RATE)
        started = lap("load", started)
        report(progress, 0.02, "finding the face")
        face = face_landmarks(picture, request.face_index)
        started = lap("face", started)
        check_cancel(should_cancel)
        track = mouth_track(wave, fps, text=request.text, progress=Stage(progress, 0.05, 0.3),
                            should_cancel=should_cancel)
        started = lap("speech", started)
        renderer = Renderer(picture, face.landmarks)
        frames = track.n_frames
        rng = np.random.default_rng(0 if request.seed is None else request.seed)
        blinks = blink_weights(frames, fps, rng)
        head = head_motion(track.loudness, fps, rng)
        started = lap("setup", started)
        render_s = 0.0
        height, width = picture.shape[:2]
        with VideoWriter(output, fps, width, height, audio=wave, sample_rate=SAMPLE_RATE) as writer:
            for k in range(frames):
                check_cancel(should_cancel)
                t0 = time.perf_counter()
                frame = renderer.render(frame_weights(track, blinks, head, k))
                render_s += time.perf_counter() - t0
                writer.write(frame)
                if k % 10 == 0:
                    report(progress, 0.3 + 0.7 * k / frames, f"frame {k + 1}/{frames}")
        timings["render"] = render_s
        timings["encode"] = time.perf_counter() - started - render_s
        report(progress, 1.0, "done")
        log.info("lite: %d frames %dx%d, timings %s", frames, width, height,
                 {k: round(v, 3) for k, v in timings.items()})
        return AnimateResult(output=output, frames=frames, fps=float(fps), width=width, height=height,
                             seconds=frames / fps, timings=timings)
