"""The lite engine: face mesh + speech analysis + a warp per frame. No generative weights.

``validate`` -> ``prepare_avatar`` (portrait only: face mesh, lip sealing, deformation bases)
-> ``stream`` (frames while the audio arrives: the streaming mouth tracker, streamed blinks
and head motion, one render per frame) -> ``animate`` (the three in a row, writing the MP4;
phones are decided on the whole audio first, then the audio is streamed in 1 s chunks).
Audio from a file is decoded once into an AudioClip and read piece by piece by every step
(phones, frames, mux), so memory does not grow with its length.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional, Union

import numpy as np

from genhuman.engines.avatar import Avatar
from genhuman.engines.base import (
    AnimateRequest, AnimateResult, AudioChunks, AudioInput, EngineOptions, Frame, ImageInput,
)
from genhuman.engines.lite.motion import FrameMotion, HeadMotion, MotionStream
from genhuman.engines.lite.render import FrameWeights, Renderer
from genhuman.errors import InputError
from genhuman.progress import CancelFn, ProgressFn, Stage, check_cancel, report
from genhuman.request import EXPRESSIONS, warn_unused
from genhuman.speech.visemes import REST_LIP_PRESS

if TYPE_CHECKING:
    from genhuman.media import Samples
    from genhuman.speech import MouthTrack
    from genhuman.speech.streaming import MouthFrame, PhonesInput

log = logging.getLogger(__name__)

NAME = "lite"
DEFAULT_FPS = 25
DEFAULT_SEED = 0
CHUNK_S = 1.0  # animate streams the audio in pieces of this length
# Small openings are lifted: a gap of a pixel or two reads as closed lips on screen.
OPENING_GAMMA = 0.65
ROUND_SHARE = 0.7  # roundness adds to the inward pull of a negative width; keep the sum natural
# Lips that were parted in the photo and sealed by the warp still read as slightly apart;
# a little press while the mouth is shut makes them read as closed.
CLOSED_PRESS = 0.6
KEEP_SEAL = 0.5  # how far m / b / p close lips that are parted in the photo ("keep")


def labiodental(teeth: float, lip_press: float) -> float:
    """How much a frame is f / v (viseme G): the upper teeth fully shown while the lips touch.
    No other viseme shows teeth above 0.8, and the ones near it (B, the ee) press nothing."""
    def smooth(x: float) -> float:
        x = min(max(x, 0.0), 1.0)
        return x * x * (3.0 - 2.0 * x)

    return smooth((teeth - 0.8) / 0.15) * smooth(lip_press / 0.2)


def mouth_weights(opening: float, width: float, roundness: float, lip_press: float, teeth: float,
                  motion: FrameMotion, mouth_scale: float = 1.0, expression: str = "neutral") -> FrameWeights:
    """One frame's renderer weights from its mouth values and its motion; ``mouth_scale``
    multiplies the renderer's opening (capped at fully open). ``expression`` is the renderer's:
    "keep" shows the photo's own mouth at rest, so the rest press is taken off and lip
    closures (m, b, p) seal the photo's parted lips."""
    opening = float(np.clip(opening, 0.0, 1.0)) ** OPENING_GAMMA
    if mouth_scale != 1.0:  # the default takes exactly the old arithmetic
        opening = min(opening * mouth_scale, 1.0)
    press = float(np.clip(lip_press, 0.0, 1.0))
    roundness = float(np.clip(roundness, 0.0, 1.0))
    teeth = float(np.clip(teeth, 0.0, 1.0))
    if expression == "keep":
        press = float(np.clip((press - REST_LIP_PRESS) / (1.0 - REST_LIP_PRESS), 0.0, 1.0))
        # Closures bring the photo's parted lips together (not quite: a full seal reads, to the
        # face mesh, as more closed than the smile at rest, and would make the rest look open).
        seal = KEEP_SEAL * press * (1.0 - opening)
    else:
        press = press + (1.0 - press) * CLOSED_PRESS * (1.0 - opening)
        seal = 0.0
    fv = labiodental(teeth, float(np.clip(lip_press, 0.0, 1.0)))
    if expression == "keep":
        seal = max(seal, 0.5 * fv)  # the lower lip rises over the photo's lower teeth
    return FrameWeights(
        open=opening * (1.0 - 0.7 * fv),  # teeth on the lip: the jaw hardly opens
        widen=float(np.clip(width, -1.0, 1.0)),
        round=ROUND_SHARE * roundness,
        press=press,
        teeth=teeth,
        blink=float(motion.blink), roll=float(motion.roll), shift_x=float(motion.shift_x),
        shift_y=float(motion.shift_y), seal=seal, lift=fv, pout=roundness,
    )


def frame_weights(track: "MouthTrack", blinks: np.ndarray, head: HeadMotion, k: int,
                  expression: str = "keep") -> FrameWeights:
    """Frame ``k``'s weights from a whole-clip mouth track and planned motion (benchmarks)."""
    motion = FrameMotion(float(blinks[k]), float(head.roll[k]), float(head.shift_x[k]), float(head.shift_y[k]))
    return mouth_weights(track.opening[k], track.width[k], track.roundness[k], track.lip_press[k],
                         track.teeth[k], motion, expression=expression)


def _fps_and_seed(request: AnimateRequest) -> tuple[int, int]:
    """The frame rate and seed of a request that ``LiteEngine.validate`` has filled in."""
    if request.fps is None or request.seed is None:
        raise ValueError("the lite engine needs a validated request (fps and seed set)")
    return request.fps, request.seed


def _frame_weights(mouth: "MouthFrame", motion: FrameMotion, mouth_scale: float, expression: str) -> FrameWeights:
    return mouth_weights(mouth.opening, mouth.width, mouth.roundness, mouth.lip_press, mouth.teeth, motion,
                         mouth_scale, expression)


class LiteEngine:
    """``LiteEngine().animate(image, audio, "out.mp4", AnimateRequest())``; or
    ``avatar = engine.prepare_avatar(image)`` once, then ``engine.stream(avatar, chunks, request)``."""

    name = NAME

    def __init__(self, options: Optional[EngineOptions] = None) -> None:
        self.options = options or EngineOptions()

    # -- the protocol -------------------------------------------------------------------

    def validate(self, request: AnimateRequest) -> AnimateRequest:
        """Defaults filled (fps 25, seed 0); one warning line for options lite does not use."""
        if not isinstance(request, AnimateRequest):
            raise InputError(f"request must be an AnimateRequest, got {type(request).__name__}")
        warn_unused(request, NAME)
        changes = {}
        if request.fps is None:
            changes["fps"] = DEFAULT_FPS
        if request.seed is None:
            changes["seed"] = DEFAULT_SEED
        return request.replace(resolved_by=NAME, **changes)

    def prepare_avatar(self, image: ImageInput, face_index: int = 0, max_size: Optional[int] = None,
                       expression: str = "keep") -> Avatar:
        """The portrait, its face mesh, its person mask and the renderer's precomputed state
        (a few ms + the mesh + the segmentation). ``expression``: "keep" or "neutral"."""
        from genhuman.face import face_landmarks, person_mask
        from genhuman.media import load_image, resize_max

        if expression not in EXPRESSIONS:
            raise InputError(f"expression must be one of: {', '.join(EXPRESSIONS)}, got {expression!r}")
        picture = resize_max(load_image(image), max_size)
        face = face_landmarks(picture, face_index)
        landmarks = np.asarray(face.landmarks)
        renderer = Renderer(picture, landmarks, expression=expression, person=person_mask(picture, landmarks))
        arrays = {f"renderer.{k}": v for k, v in renderer.state().items()}
        arrays["landmarks"] = np.ascontiguousarray(landmarks)
        height, width = picture.shape[:2]
        meta = {"width": int(width), "height": int(height), "face_index": int(face_index),
                "max_size": None if max_size is None else int(max_size), "expression": expression}
        return Avatar(engine=NAME, weights_id="", arrays=arrays, meta=meta, cache={"renderer": renderer})

    def stream(self, avatar: Avatar, audio_chunks: AudioChunks, request: AnimateRequest,
               progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
               *, phones: "PhonesInput" = None) -> Iterator[Frame]:
        """Frames while the audio (16 kHz mono float32 chunks of any length) arrives.

        Frame ``k`` comes as soon as the audio up to ``(k + 1 + lookahead) / fps`` is in
        (``genhuman.speech.streaming.lookahead_frames``: 4 frames at 25 fps), the rest after the last
        chunk. ``phones``: timings known in advance (a PhonePlan from ``plan_phones``, or a
        list of Phone / (phone, start_s, end_s), e.g. from a TTS); None: acoustic mouth
        shapes. The frames do not depend on how the audio is chunked. There is no total to
        report ``progress`` against while streaming; ``should_cancel`` is checked per frame.
        """
        request = self.validate(request)
        if not isinstance(avatar, Avatar):
            raise InputError(f"stream needs an Avatar from prepare_avatar, got {type(avatar).__name__}")
        avatar.check(NAME, "")
        renderer = self._renderer(avatar)
        return self._frames(renderer, audio_chunks, request, progress, should_cancel, phones, None)

    def animate(
        self,
        image: Union[ImageInput, Avatar],
        audio: AudioInput,
        output: Union[str, Path],
        request: AnimateRequest,
        progress: Optional[ProgressFn] = None,
        should_cancel: Optional[CancelFn] = None,
    ) -> AnimateResult:
        """validate + prepare_avatar (unless given one) + phones on the whole audio + stream + MP4."""
        from genhuman.engines.output import check_output, close_samples, open_samples

        output = check_output(output, image, audio)
        request = self.validate(request)
        started = time.perf_counter()
        report(progress, 0.0, "reading inputs")
        if isinstance(image, Avatar):
            image.check(NAME, "")
        wave = open_samples(audio)
        try:
            return self._animate(image, wave, output, request, progress, should_cancel, started)
        finally:
            close_samples(wave)

    def _animate(self, image: Union[ImageInput, Avatar], wave: "Samples", output: Path, request: AnimateRequest,
                 progress: Optional[ProgressFn], should_cancel: Optional[CancelFn], started: float) -> AnimateResult:
        from genhuman.engines.output import audio_chunks, write_video
        from genhuman.speech import frame_count
        from genhuman.speech.track import plan_phones

        timings: dict[str, float] = {}
        clock = started

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = timings.get(stage, 0.0) + now - clock
            clock = now

        if isinstance(image, Avatar):
            if request.max_size is not None or request.face_index or request.expression != image.meta.get("expression"):
                log.info("lite: the avatar was prepared already; max size / face index / expression of the request "
                         "ignored")
        lap("load")
        if isinstance(image, Avatar):
            avatar = image
        else:
            report(progress, 0.02, "finding the face")
            avatar = self.prepare_avatar(image, request.face_index, request.max_size, request.expression)
        renderer = self._renderer(avatar)
        lap("face")
        check_cancel(should_cancel)
        plan = plan_phones(wave, request.text, progress=Stage(progress, 0.05, 0.3), should_cancel=should_cancel)
        lap("speech")
        fps, _ = _fps_and_seed(request)
        frames = self._frames(renderer, audio_chunks(wave, CHUNK_S), request, None, should_cancel, plan, timings)
        result = write_video(frames, output, fps, wave, expected_frames=frame_count(len(wave), fps),
                             progress=Stage(progress, 0.3, 1.0), should_cancel=should_cancel,
                             timings=timings, started=started)
        spent = sum(v for k, v in result.timings.items() if k != "total")
        result.timings["encode"] = max(result.timings["total"] - spent, 0.0)
        log.info("lite: %d frames %dx%d, timings %s", result.frames, result.width, result.height,
                 {k: round(v, 3) for k, v in result.timings.items()})
        return result

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def _renderer(avatar: Avatar) -> Renderer:
        renderer = avatar.cache.get("renderer")
        if renderer is None:
            prefix = "renderer."
            state = {k[len(prefix):]: v for k, v in avatar.arrays.items() if k.startswith(prefix)}
            try:
                renderer = Renderer.from_state(state)
            except (KeyError, ValueError, TypeError) as exc:
                raise InputError(f"this lite avatar is incomplete ({exc}); prepare it again") from None
            avatar.cache["renderer"] = renderer
        return renderer

    def _frames(self, renderer: Renderer, chunks: AudioChunks, request: AnimateRequest,
                progress: Optional[ProgressFn], should_cancel: Optional[CancelFn], phones: "PhonesInput",
                timings: Optional[dict[str, float]]) -> Iterator[Frame]:
        from genhuman.speech.streaming import MouthTracker

        fps, seed = _fps_and_seed(request)
        tracker = MouthTracker(fps, phones)
        motion = MotionStream(fps, seed, head_scale=request.head_motion, blink_rate=request.blink_rate)
        render_s = 0.0

        track_s = 0.0

        def frames_of(mouths: list["MouthFrame"]) -> Iterator[Frame]:
            nonlocal render_s
            for mouth in mouths:
                check_cancel(should_cancel)
                t0 = time.perf_counter()
                image = renderer.render(_frame_weights(mouth, motion.next(mouth.loudness), request.mouth_scale,
                                                       renderer.expression))
                render_s += time.perf_counter() - t0
                if timings is not None:
                    timings["render"] = render_s
                yield Frame(mouth.index, image, float(fps))

        def track(step, *args) -> list["MouthFrame"]:
            nonlocal track_s
            t0 = time.perf_counter()
            mouths = step(*args)
            track_s += time.perf_counter() - t0
            if timings is not None:
                timings["track"] = track_s
            return mouths

        for chunk in chunks:
            check_cancel(should_cancel)
            yield from frames_of(track(tracker.push, chunk))
        yield from frames_of(track(tracker.finish))


def avatar_renderer(avatar: Avatar) -> Renderer:
    """A lite avatar's renderer (made from its arrays once if need be), for callers that
    drive the frames themselves (the live avatar's clock, genhuman.live.avatar)."""
    if not isinstance(avatar, Avatar):
        raise InputError(f"this needs an Avatar from prepare_avatar, got {type(avatar).__name__}")
    avatar.check(NAME, "")
    return LiteEngine._renderer(avatar)
