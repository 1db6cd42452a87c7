"""The always-alive avatar: one video frame and one frame of audio per tick.

    live = LiveAvatar(avatar, request)     # a lite avatar (LiteEngine().prepare_avatar)
    live.say(speak("Hello there."))        # queued; from any thread
    tick = live.next_tick()                # every 1/fps s: Tick(index, image, audio, ...)
    live.cut()                             # barge-in: silence from the next tick, mouth closes

One :class:`~genhuman.engines.lite.motion.MotionStream` runs for the whole session, so
blinks, breathing and head motion carry on across turns and pauses; between utterances the
mouth rests (a silent frame's shape). Each utterance gets its own streaming mouth tracker,
fed a frame of audio at a time as its frames are needed: a tick costs about one lite render.
An utterance said before the first tick gives exactly the frames of ``LiteEngine().stream``
on its samples and phones (the tracker and the motion are the same computations, in order).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from genhuman.engines.avatar import Avatar
from genhuman.engines.lite.engine import LiteEngine, avatar_renderer, mouth_weights
from genhuman.engines.lite.motion import MotionStream
from genhuman.engines.lite.render import FrameWeights
from genhuman.errors import InputError
from genhuman.live.voice import Utterance, samples_per_frame
from genhuman.request import AnimateRequest
from genhuman.speech.streaming import MouthFrame, MouthTracker
from genhuman.speech.visemes import REST_LIP_PRESS

DEFAULT_CLOSE_S = 0.12


def silent_mouth(index: int = 0) -> MouthFrame:
    """The mouth of a frame without speech, as the tracker makes it: shut, lips at rest."""
    return MouthFrame(index, 0.0, 0.0, 0.0, REST_LIP_PRESS, 0.0, 0.0, loudness=0.0, voiced=False, viseme="X")


@dataclass(frozen=True, eq=False)
class Tick:
    """One frame of the session: ``image`` HxWx3 uint8 and ``audio`` (16 kHz float32, one
    frame long: zeros when silent). ``started``: the utterance whose first frame this is;
    ``interrupted``: the utterance :meth:`LiveAvatar.cut` stopped (on the first tick after the
    cut); ``finished``: the utterance whose last frame this is, else the interrupted one."""

    index: int
    image: np.ndarray
    audio: np.ndarray
    speaking: bool
    started: Optional[Utterance] = None
    finished: Optional[Utterance] = None
    interrupted: Optional[Utterance] = None


class _Playing:
    """An utterance being played: its samples are fed to its own tracker a frame at a time,
    as far ahead as the tracker's lookahead needs."""

    def __init__(self, utterance: Utterance, fps: float, frame_samples: int):
        self.utterance = utterance
        self.frame_samples = frame_samples
        self.n_frames = -(-len(utterance.samples) // frame_samples)
        self.next_frame = 0  # the next frame a tick takes
        self._tracker = MouthTracker(fps, utterance.phones)
        self._fed = 0  # samples pushed
        self._finished = False
        self._mouths: deque[MouthFrame] = deque()

    def audio(self, k: int) -> np.ndarray:
        out = np.zeros(self.frame_samples, np.float32)
        piece = self.utterance.samples[k * self.frame_samples:(k + 1) * self.frame_samples]
        out[:len(piece)] = piece
        return out

    def mouth(self, k: int) -> MouthFrame:
        """Frame ``k``'s mouth (frames are asked for in order)."""
        samples = self.utterance.samples
        while not self._mouths or self._mouths[-1].index < k:
            if self._fed < len(samples):
                piece = samples[self._fed:self._fed + self.frame_samples]
                self._fed += len(piece)
                self._mouths.extend(self._tracker.push(piece))
            elif not self._finished:
                self._finished = True
                self._mouths.extend(self._tracker.finish())
            else:
                raise RuntimeError(f"the mouth tracker has no frame {k} of {self.n_frames}")
        while self._mouths[0].index < k:
            self._mouths.popleft()
        return self._mouths.popleft()


class LiveAvatar:
    """See the module docstring. ``say`` / ``cut`` / ``speaking`` from any thread;
    ``next_tick`` from one (concurrent calls take turns)."""

    def __init__(self, avatar: Avatar, request: AnimateRequest, *, close_s: float = DEFAULT_CLOSE_S):
        if not isinstance(avatar, Avatar):
            raise InputError(f"LiveAvatar needs an Avatar from prepare_avatar, got {type(avatar).__name__}")
        if isinstance(close_s, bool) or not (isinstance(close_s, (int, float)) and 0.0 <= close_s <= 2.0):
            raise InputError(f"close_s must be between 0 and 2 seconds, not {close_s!r}")
        engine = LiteEngine()
        self.request = engine.validate(request)
        fps, seed = self.request.fps, self.request.seed
        assert fps is not None and seed is not None  # validate filled them in
        self.fps = float(fps)
        self.frame_samples = samples_per_frame(self.fps)
        self.close_frames = int(round(close_s * self.fps))
        self._renderer = avatar_renderer(avatar)
        self._motion = MotionStream(self.fps, seed, head_scale=self.request.head_motion,
                                    blink_rate=self.request.blink_rate)
        self._lock = threading.Lock()  # the queue and the current utterance (held briefly)
        self._tick_lock = threading.Lock()  # one tick at a time
        self._queue: deque[Utterance] = deque()
        self._current: Optional[_Playing] = None
        self._was_cut: Optional[Utterance] = None  # reported as finished on the next tick
        self._close_now = False
        self._closing: deque[MouthFrame] = deque()  # mouths of the ticks that close the mouth
        self._last_mouth = silent_mouth()
        self._last_weights: Optional[FrameWeights] = None
        self._index = 0

    # -- from any thread ------------------------------------------------------------------

    def say(self, utterance: Utterance) -> None:
        """Queue ``utterance`` after what is playing and queued."""
        if not isinstance(utterance, Utterance):
            raise InputError(f"say needs an Utterance (genhuman.live.voice.speak), got {type(utterance).__name__}")
        if utterance.samples.ndim != 1 or not len(utterance.samples):
            raise InputError("the utterance has no samples")
        with self._lock:
            self._queue.append(utterance)

    def cut(self) -> None:
        """Barge-in: the queue and the rest of the current utterance are dropped; the next
        tick is silent and the mouth closes over ``close_s``."""
        with self._lock:
            self._queue.clear()
            if self._current is not None:
                self._was_cut = self._current.utterance
                self._current = None
            self._close_now = True

    @property
    def speaking(self) -> bool:
        """An utterance is playing or queued."""
        with self._lock:
            return self._current is not None or bool(self._queue)

    @property
    def ticks(self) -> int:
        """Ticks made so far (the index of the next one)."""
        return self._index

    @property
    def last_weights(self) -> Optional[FrameWeights]:
        """The renderer weights of the last tick (mouth, blink, head); None before the first."""
        return self._last_weights

    # -- the clock ------------------------------------------------------------------------

    def next_tick(self) -> Tick:
        with self._tick_lock:
            started = finished = None
            with self._lock:
                was_cut, self._was_cut = self._was_cut, None
                close_now, self._close_now = self._close_now, False
                playing = self._current
                if playing is None and self._queue:
                    playing = self._current = _Playing(self._queue.popleft(), self.fps, self.frame_samples)
                    started = playing.utterance
                if playing is not None:
                    k = playing.next_frame
                    playing.next_frame += 1
                    if playing.next_frame >= playing.n_frames:
                        self._current = None
                        finished = playing.utterance
            if playing is not None:
                self._closing.clear()
                mouth, audio = playing.mouth(k), playing.audio(k)
            else:
                if close_now or not self._closing and self._last_mouth.opening > 0.0:
                    self._closing = self._closing_mouths(self._last_mouth)
                mouth = self._closing.popleft() if self._closing else silent_mouth(self._index)
                audio = np.zeros(self.frame_samples, np.float32)
            motion = self._motion.next(mouth.loudness)
            weights = mouth_weights(mouth.opening, mouth.width, mouth.roundness, mouth.lip_press, mouth.teeth,
                                    motion, self.request.mouth_scale, self._renderer.expression)
            image = self._renderer.render(weights)
            self._last_mouth, self._last_weights = mouth, weights
            tick = Tick(self._index, image, audio, speaking=playing is not None, started=started,
                        finished=finished if finished is not None else was_cut, interrupted=was_cut)
            self._index += 1
            return tick

    def _closing_mouths(self, mouth: MouthFrame) -> deque[MouthFrame]:
        """From ``mouth`` to the silent mouth over ``close_frames`` ticks (a cosine ease, the
        last one shut): every channel moves monotonically, nothing jumps."""
        steps = self.close_frames
        return deque(_between(mouth, silent_mouth(self._index + i), 0.5 * (1.0 + math.cos(math.pi * (i + 1) / steps)))
                     for i in range(steps))


_CHANNELS = ("opening", "width", "roundness", "lip_press", "teeth", "tongue", "loudness")


def _between(mouth: MouthFrame, rest: MouthFrame, keep: float) -> MouthFrame:
    """``rest`` with ``keep`` (0..1) of the way back to ``mouth`` in every channel."""
    return replace(rest, **{c: getattr(rest, c) + (getattr(mouth, c) - getattr(rest, c)) * keep for c in _CHANNELS})
