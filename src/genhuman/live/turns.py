"""Turn taking: when the user starts and stops talking, from the microphone's samples.

    detector = TurnDetector(silence_s=0.5)
    for chunk in microphone:                    # 16 kHz mono float32, any length
        for event in detector.push(chunk):      # TurnEvent("start" | "end", time_s)
            ...
    detector.utterance()                        # the current/last turn's audio, with preroll

silero-vad (:class:`genhuman.speech.streaming.StreamingVad`, one 512-sample frame per ONNX
call, its state carried over) judges each 32 ms frame. The frames sit on a grid fixed in
absolute sample positions, so the events do not depend on how the audio is cut into chunks.

- "start": the speech run has reached ``min_speech_s``, counted in whole VAD frames rounded
  down (silero flags a frame once it holds some voice, so the sound began during the frame
  before: 4 frames, 128 ms, for 0.15 s, and the event comes ~130-150 ms after the real onset,
  soon enough for barge-in). Shorter runs (clicks, knocks) are no turn.
- "end": ``silence_s`` of non-speech frames after the last speech frame of a started turn
  (pauses between words and sentences shorter than that keep the turn going), or the turn
  reached ``max_turn_s``.

``time_s`` is on the detector's own clock: samples pushed since it was made / 16000, at the
end of the frame that decided the event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np

from genhuman.errors import InputError
from genhuman.media import SAMPLE_RATE
from genhuman.speech import vad
from genhuman.speech.streaming import StreamingVad, as_samples

FRAME = vad.VAD_HOP  # samples per VAD decision (32 ms)
FRAME_S = FRAME / SAMPLE_RATE


class _Tape:
    """Samples appended at the end, sliced by absolute sample index, dropped from the front;
    amortised O(1) per sample however small the pushes."""

    def __init__(self, start: int):
        self._data = np.zeros(SAMPLE_RATE, np.float32)
        self.start = start  # absolute index of the first sample held
        self._used = 0

    @property
    def stop(self) -> int:
        return self.start + self._used

    def append(self, wave: np.ndarray) -> None:
        if self._used + len(wave) > len(self._data):
            grown = np.zeros(max(2 * len(self._data), self._used + len(wave)), np.float32)
            grown[:self._used] = self._data[:self._used]
            self._data = grown
        self._data[self._used:self._used + len(wave)] = wave
        self._used += len(wave)

    def slice(self, first: int, stop: int) -> np.ndarray:
        """A copy of samples [first, stop), clipped to what is held."""
        first, stop = max(first, self.start), min(stop, self.stop)
        return self._data[first - self.start:max(stop, first) - self.start].copy()

    def drop_before(self, first: int) -> None:
        drop = min(first, self.stop) - self.start
        if drop > 0:
            self._data[:self._used - drop] = self._data[drop:self._used].copy()
            self._used -= drop
            self.start += drop


@dataclass(frozen=True)
class TurnEvent:
    kind: Literal["start", "end"]
    time_s: float  # detector clock (samples pushed / 16000) at the deciding frame's end


def _check_seconds(name: str, value: float, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InputError(f"{name} must be between {low} and {high} seconds, not {value!r}")
    return float(value)


class TurnDetector:
    """Start and end of the user's turns; see the module docstring. Not thread-safe: one
    detector per audio stream, pushed from one thread at a time."""

    def __init__(self, silence_s: float = 0.5, min_speech_s: float = 0.15, threshold: float = 0.5,
                 preroll_s: float = 0.3, max_turn_s: float = 60.0):
        self.silence_s = _check_seconds("silence_s", silence_s, 0.05, 10.0)
        self.min_speech_s = _check_seconds("min_speech_s", min_speech_s, 0.0, 5.0)
        self.preroll_s = _check_seconds("preroll_s", preroll_s, 0.0, 5.0)
        self.max_turn_s = _check_seconds("max_turn_s", max_turn_s, 1.0, 3600.0)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
            raise InputError(f"threshold must be between 0 and 1, not {threshold!r}")
        self.threshold = float(threshold)
        self._confirm_frames = max(int(self.min_speech_s / FRAME_S + 1e-9), 1)
        self._silence_frames = math.ceil(self.silence_s / FRAME_S - 1e-9)
        self._preroll = int(round(self.preroll_s * SAMPLE_RATE))
        self._pushed = 0  # samples pushed since the detector was made: its clock
        self.reset()

    def reset(self) -> None:
        """Forget the audio, the VAD state and any turn in progress (no "end" is sent for
        it). The clock keeps counting: times stay comparable with earlier events."""
        # silero alone: StreamingVad would join its energy detector when silero misses most of
        # the sound (synthetic voices in files), but that detector starts from digital silence,
        # so a microphone's own noise floor would open a turn at every connection. (It is
        # still the fallback when the model cannot load.)
        self._vad = StreamingVad(join_energy=False)
        self._pending = np.zeros(0, np.float32)  # samples after the last whole frame
        self._frame_start = self._pushed  # absolute sample of the next frame
        self._run = 0  # consecutive speech frames while idle
        self._in_turn = False
        self._turn_start = 0  # absolute sample of the turn's first speech frame
        self._last_speech_end = 0  # absolute sample after the turn's last speech frame
        # Audio kept: the preroll and a confirming run while idle, the whole turn in one.
        self._audio = _Tape(self._pushed)
        self._last_turn: Optional[np.ndarray] = None

    @property
    def in_turn(self) -> bool:
        """A turn has started and not ended."""
        return self._in_turn

    @property
    def preroll_samples(self) -> int:
        """Samples kept before a turn's first speech frame (the start of :meth:`utterance`)."""
        return self._preroll

    @property
    def quiet_s(self) -> float:
        """Seconds of silence since the current turn's last speech frame (0 outside a turn):
        the conversation starts its answer speculatively on a pause, before the end."""
        return (self._frame_start - self._last_speech_end) / SAMPLE_RATE if self._in_turn else 0.0

    @property
    def time_s(self) -> float:
        """The detector's clock: samples pushed / 16000."""
        return self._pushed / SAMPLE_RATE

    def push(self, samples: np.ndarray) -> list[TurnEvent]:
        """Feed the next samples (16 kHz mono float32, any length); the events they decide."""
        wave = as_samples(samples)
        self._pushed += len(wave)
        self._audio.append(wave)
        self._pending = np.concatenate([self._pending, wave])
        events: list[TurnEvent] = []
        whole = len(self._pending) // FRAME
        for k in range(whole):
            event = self._judge(self._pending[k * FRAME:(k + 1) * FRAME])
            if event is not None:
                events.append(event)
        self._pending = self._pending[whole * FRAME:]
        if not self._in_turn:
            self._trim_idle_audio()
        return events

    def utterance(self) -> np.ndarray:
        """The current turn's audio (from ``preroll_s`` before its first speech frame to the
        last sample pushed), else the last turn's (up to its "end"), else empty."""
        if self._in_turn:
            return self._audio.slice(self._turn_start - self._preroll, self._audio.stop)
        if self._last_turn is not None:
            return self._last_turn.copy()
        return np.zeros(0, np.float32)

    # -- frame by frame ----------------------------------------------------------------

    def _judge(self, frame: np.ndarray) -> Optional[TurnEvent]:
        speech = self._vad.frame(frame) > self.threshold
        end = self._frame_start + FRAME
        self._frame_start = end
        if not self._in_turn:
            self._run = self._run + 1 if speech else 0
            if self._run < self._confirm_frames:
                return None
            self._in_turn, self._last_turn = True, None
            self._turn_start = end - self._run * FRAME
            self._last_speech_end = end
            self._run = 0
            return TurnEvent("start", end / SAMPLE_RATE)
        if speech:
            self._last_speech_end = end
        silent_frames = (end - self._last_speech_end) // FRAME
        too_long = end - self._turn_start >= self.max_turn_s * SAMPLE_RATE
        if silent_frames < self._silence_frames and not too_long:
            return None
        self._in_turn = False
        self._last_turn = self._audio.slice(self._turn_start - self._preroll, end)
        return TurnEvent("end", end / SAMPLE_RATE)

    def _trim_idle_audio(self) -> None:
        """Keep what a turn starting at the next frames could need: the preroll before a
        confirming run, the run itself, and the samples not yet judged."""
        self._audio.drop_before(self._frame_start - (self._confirm_frames * FRAME + self._preroll))
