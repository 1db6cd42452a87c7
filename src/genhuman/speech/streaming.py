"""Mouth shapes while the audio is still arriving: :class:`MouthTracker`.

    tracker = MouthTracker(fps=25, phones=plan)    # phones known in advance, or None
    for chunk in chunks:                           # 16 kHz mono float32 pieces, any length
        for frame in tracker.push(chunk):          # MouthFrame(index, opening, ..., viseme)
            ...
    for frame in tracker.finish():                 # the frames the end of the audio releases
        ...

**The result does not depend on how the audio is cut into chunks**: every value is a function
of the samples alone, computed on grids fixed in absolute sample positions (silero-vad one
512-sample frame per call with its state carried over, acoustic features in groups of
:data:`GROUP` analysis frames, element-wise arithmetic after that). Feeding the whole clip at
once, 1 s chunks or 40 ms chunks gives bit-identical frames.

**Lookahead**: frame ``k`` (the interval ``[k/fps, (k+1)/fps)``) is released as soon as the
audio up to ``(k + 1 + lookahead_frames(fps)) / fps`` has been pushed: 4 frames (160 ms) at
25 fps. What needs it: the zero-phase smoothing of the mouth channels (5 time constants of
25 ms, 130 ms), the 25 ms analysis window and the 32 ms VAD frame. Everything else is causal:
the speech level that scales the opening is the 75th percentile RMS of the voiced analysis
frames heard so far (the whole-clip :func:`~genhuman.speech.mouth_track` of old used the
clip's), and the energy detector that backs up silero learns the clip's floor and loud level
as it goes.

Phones (aligned or recognised on the whole clip, or a TTS's own timings) come in a
:class:`PhonePlan`, decided before streaming by :func:`plan_phones`; without one the track is
acoustic (any language, no recognition while streaming).
"""

from __future__ import annotations

import bisect
import logging
import math
import numbers
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from genhuman.errors import InputError
from genhuman.media.audio import SAMPLE_RATE
from genhuman.speech import acoustic, coarticulation, vad
from genhuman.speech.phonemes import Phone
from genhuman.speech.visemes import CHANNELS, FIRST_PART_SHARE, REST_LIP_PRESS, nearest_visemes, phone_visemes

logger = logging.getLogger(__name__)

HOP = acoustic.HOP  # analysis hop, 10 ms
RATE = acoustic.ANALYSIS_RATE
GROUP = 2  # analysis frames computed together: a fixed shape, so batching never changes a value
# Zero-phase smoothing: channels with coarticulation's time constant, the silence gate faster.
SMOOTHING_S = coarticulation.SMOOTHING_S
GATE_TAU_S = 0.015
# Phonetic vs acoustic blend (see plan_phones): phones force closures only when trusted.
TRUSTED_WEIGHT = 0.5
OPENING_ACOUSTIC_MIX = 0.3  # share of the opening measured from the signal even with good phones
MIN_LEVEL = 1e-4
# The energy detector is joined to silero while silero has accepted less than this share of
# the sound frames heard so far, judged once this many (~200 ms) have been heard.
MODEL_MISS_SHARE = vad.MODEL_MISS_SHARE
JOIN_AFTER_SOUND_FRAMES = 6
# The energy detector's running floor starts from this many frames of digital silence, so
# that the first syllables of a stream already stand out from "before".
PRIOR_SILENT_FRAMES = 4
SILENT_DB = -120.0
# Running statistics look back this far (long recordings adapt to level changes).
LEVEL_WINDOW_ROWS = int(60 * RATE)  # voiced analysis frames behind the speech level
ENERGY_WINDOW_FRAMES = int(60 * SAMPLE_RATE / vad.VAD_HOP)  # VAD frames behind the energy detector

TARGET_BLOCK_ROWS = 3000  # phonetic targets are computed 30 s at a time: flat memory on long audio
_LIP = CHANNELS.index("lip_press")
_N = len(CHANNELS)


def _kernel(tau: float) -> tuple[int, np.ndarray]:
    """Half width and taps of the critically damped zero-phase kernel (coarticulation.smooth)."""
    half = max(int(np.ceil(5 * tau * RATE)), 1)
    t = np.arange(-half, half + 1) / (tau * RATE)
    taps = (1 + np.abs(t)) * np.exp(-np.abs(t))
    return half, taps / taps.sum()


SMOOTH_HALF, _SMOOTH_TAPS = _kernel(SMOOTHING_S)
GATE_HALF, _GATE_TAPS = _kernel(GATE_TAU_S)

# The analysis of genhuman.speech.acoustic.analyse, window by window.
_FREQS = np.fft.rfftfreq(acoustic.N_FFT, 1.0 / SAMPLE_RATE)
_BANDS = ((_FREQS >= 250) & (_FREQS < 1000), (_FREQS >= 900) & (_FREQS < 2600))
_HIGH_BAND = _FREQS >= 4000
_HANN = np.hanning(acoustic.WINDOW).astype(np.float32)


def window_features(frames: np.ndarray) -> list[np.ndarray]:
    """(rms, f1, f2, high_ratio, zcr) as float32 for each row of an (n, WINDOW) array, as
    :func:`genhuman.speech.acoustic.analyse` computes them."""
    rms = np.sqrt(np.mean(np.square(frames), axis=1))
    signs = np.signbit(frames)
    zcr = np.mean(signs[:, 1:] != signs[:, :-1], axis=1)
    power = np.abs(np.fft.rfft(frames * _HANN, n=acoustic.N_FFT, axis=1)) ** 2
    total = power.sum(axis=1) + 1e-12
    f1, f2 = ((power[:, b] * _FREQS[b]).sum(axis=1) / (power[:, b].sum(axis=1) + 1e-12) for b in _BANDS)
    return [np.asarray(c, np.float32) for c in (rms, f1, f2, power[:, _HIGH_BAND].sum(axis=1) / total, zcr)]


@dataclass(frozen=True)
class PhonePlan:
    """Phone timings decided before streaming, and how far to trust them.

    ``weight`` is the phonetic share of the blend (1 = phones only, 0 = acoustics only);
    below 0.5 the phones shape the mouth a little but do not force M/B/P closures.
    """

    phones: tuple[Phone, ...] = ()
    weight: float = 1.0
    source: str = "given"  # "aligned", "recognized", "given" (e.g. TTS timings) or "acoustic"

    @property
    def trusted(self) -> bool:
        return bool(self.phones) and self.weight >= TRUSTED_WEIGHT


PhonesInput = Union[PhonePlan, Sequence[Phone], Sequence[tuple], None]


def as_plan(phones: PhonesInput) -> PhonePlan:
    """A :class:`PhonePlan` from a plan, a list of Phone or (phone, start_s, end_s), or None."""
    if phones is None:
        return PhonePlan((), 0.0, "acoustic")
    if isinstance(phones, PhonePlan):
        return phones
    out = []
    for p in phones:
        if not isinstance(p, Phone):
            try:
                name, start, end = p[0], float(p[1]), float(p[2])
            except (TypeError, ValueError, IndexError):
                raise InputError("phones must be Phone objects or (phone, start_s, end_s) tuples") from None
            p = Phone(str(name), start, end)
        if not (math.isfinite(p.start) and math.isfinite(p.end)):
            raise InputError("phone times must be finite numbers")
        if p.end > p.start:
            out.append(p)
    out.sort(key=lambda p: p.start)
    return PhonePlan(tuple(out), 1.0 if out else 0.0, "given" if out else "acoustic")


@dataclass(frozen=True)
class MouthFrame:
    """Mouth values of one video frame (the :class:`~genhuman.speech.MouthTrack` fields)."""

    index: int
    opening: float
    width: float
    roundness: float
    lip_press: float
    teeth: float
    tongue: float
    loudness: float
    voiced: bool
    viseme: str


def check_fps(fps: float) -> float:
    if isinstance(fps, bool) or not (isinstance(fps, numbers.Real) and 1 <= fps <= 240):
        raise InputError(f"fps must be between 1 and 240, not {fps!r}")
    return float(fps)


def as_samples(samples: np.ndarray) -> np.ndarray:
    """A chunk as contiguous 1-D float32 (PCM integers scaled to [-1, 1], NaN/inf removed)."""
    wave = np.asarray(samples)
    if np.issubdtype(wave.dtype, np.integer):
        wave = wave.astype(np.float32) / float(np.iinfo(wave.dtype).max)
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise InputError("audio must be mono: a 1-D array of samples")
    if not np.isfinite(wave).all():
        wave = np.nan_to_num(wave, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.ascontiguousarray(wave)


class RunningPercentile:
    """numpy's default (linear) percentile of the last ``window`` values added."""

    def __init__(self, q: float, window: int, floor: float = -math.inf):
        self.q, self.window, self.floor = q, window, floor
        self._sorted: list[float] = []
        self._order: deque[float] = deque()

    def update(self, value: float, include: bool = True) -> float:
        """Add ``value`` (when ``include``) and return the current percentile (``floor`` if empty)."""
        if include:
            bisect.insort(self._sorted, value)
            self._order.append(value)
            if len(self._order) > self.window:
                del self._sorted[bisect.bisect_left(self._sorted, self._order.popleft())]
        values = self._sorted
        if not values:
            return self.floor
        pos = self.q / 100.0 * (len(values) - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, len(values) - 1)
        return max(values[lo] + (values[hi] - values[lo]) * (pos - lo), self.floor)


class StreamingVad:
    """Speech probability per 512-sample frame, frame after frame.

    silero's LSTM state and 64 samples of context carry over between frames (one ONNX call
    each, so the result is the same however the audio arrives); frames under -55 dBFS are
    silence. The energy detector of :mod:`genhuman.speech.vad` runs alongside with running
    percentiles of the frames heard so far, alone when the model cannot load, and joined to
    the model once the model has missed most of the sound (synthetic or sung voices).
    """

    def __init__(self, use_model: bool = True, join_energy: bool = True):
        """``join_energy=False``: the model alone whenever it loads (a microphone: its noise
        floor is not the digital silence the energy detector starts from)."""
        self.session = vad._silero() if use_model else None
        self.join_energy = join_energy
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(vad.CONTEXT, np.float32)
        self._floor = RunningPercentile(10.0, ENERGY_WINDOW_FRAMES)
        self._loud = RunningPercentile(95.0, ENERGY_WINDOW_FRAMES)
        for _ in range(PRIOR_SILENT_FRAMES):  # a stream starts out of silence
            self._floor.update(SILENT_DB)
            self._loud.update(SILENT_DB)
        self._sound = self._accepted = 0
        self.joined = self.session is None  # energy detector in use (alone, or joined to the model)
        self._said = False

    def _energy(self, db: float) -> float:
        loud, floor = self._loud.update(db), self._floor.update(db)
        if loud - floor < vad.MIN_MODULATION_DB or db < vad.ABSOLUTE_FLOOR_DB:
            return 0.0
        threshold = max(0.5 * (loud + floor), loud - 30.0)
        return min(max(0.5 + (db - threshold) / 6.0, 0.0), 1.0)

    def frame(self, samples: np.ndarray) -> float:
        """Probability for the next frame (``samples``: exactly 512, zero padded at the end)."""
        db = float(10.0 * np.log10(np.square(samples).mean() + 1e-12))
        energy = self._energy(db)
        if self.session is None:
            return energy
        model_input = np.concatenate([self._context, samples])[None, :]
        probs, self._h, self._c = self.session.run(  # thread-safe; the state is this stream's
            ["speech_probs", "hn", "cn"], {"input": model_input, "h": self._h, "c": self._c})
        self._context = samples[-vad.CONTEXT:].copy()
        prob = 0.0 if db < vad.ABSOLUTE_FLOOR_DB else float(probs.reshape(-1)[0])
        if energy > vad.THRESHOLD and self.join_energy:
            self._sound += 1
            self._accepted += prob > vad.THRESHOLD
            missing = self._sound >= JOIN_AFTER_SOUND_FRAMES and self._accepted < MODEL_MISS_SHARE * self._sound
            if missing and not self._said:
                logger.info("silero-vad misses most of this audio's sound; adding the energy detector")
                self._said = True
            self.joined = missing
        return max(prob, energy) if self.joined else prob


class _Rows:
    """Rows appended at the end, read by absolute index, dropped from the front."""

    def __init__(self, width: int, dtype=np.float64):
        self.data = np.zeros((256, width), dtype)
        self.start = 0  # absolute index of data[0]
        self.stop = 0  # absolute index after the last row

    def extend(self, rows: np.ndarray) -> None:
        used = self.stop - self.start
        if used + len(rows) > len(self.data):
            grown = np.zeros((max(2 * len(self.data), used + len(rows)), self.data.shape[1]), self.data.dtype)
            grown[:used] = self.data[:used]
            self.data = grown
        self.data[used:used + len(rows)] = rows
        self.stop += len(rows)

    def take(self, index) -> np.ndarray:
        index = np.asarray(index)
        if index.size and (index.min() < self.start or index.max() >= self.stop):
            raise IndexError(f"rows {index.min()}..{index.max()} outside {self.start}..{self.stop - 1}")
        return self.data[index - self.start]

    def drop_before(self, index: int) -> None:
        index = min(index, self.stop)
        if index - self.start > len(self.data) // 2:
            keep = self.stop - index
            self.data[:keep] = self.data[index - self.start:self.stop - self.start].copy()
            self.start = index


class _PhoneticTargets:
    """``coarticulation.blend_targets`` of the whole plan, computed a block of rows at a time
    (the same values: each row sums the same phones in the same order), so an hour of phones
    costs one block, not an (n_rows, channels) array and its float64 temporaries."""

    def __init__(self, phones: Sequence[Phone], n_rows: int):
        self.phones = phones
        self.n_rows = n_rows
        self._starts = [p.start for p in phones]
        self._longest = max((p.end - p.start for p in phones), default=0.0)
        self._block = -1
        self._values = np.zeros((0, _N), np.float32)

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), _N), np.float32)
        for block in np.unique(rows // TARGET_BLOCK_ROWS):
            mask = rows // TARGET_BLOCK_ROWS == block
            out[mask] = self._rows_of(int(block))[rows[mask] - block * TARGET_BLOCK_ROWS]
        return out

    def _rows_of(self, block: int) -> np.ndarray:
        if block != self._block:
            first = block * TARGET_BLOCK_ROWS
            stop = min(first + TARGET_BLOCK_ROWS, self.n_rows)
            reach = coarticulation._REACH_S + 2.0 / RATE  # a little more than a phone's pull
            lo = bisect.bisect_left(self._starts, first / RATE - reach - self._longest)
            hi = bisect.bisect_right(self._starts, stop / RATE + reach)
            self._values = coarticulation.blend_targets(self.phones[lo:hi], stop, RATE, first)
            self._block = block
        return self._values


class MouthTracker:
    """Per-frame mouth values from audio pushed chunk by chunk; see the module docstring."""

    def __init__(self, fps: float = 25.0, phones: PhonesInput = None, *, use_vad_model: bool = True):
        self.fps = check_fps(fps)
        self.plan = as_plan(phones)
        self.lookahead = lookahead_frames(self.fps)
        self._vad = StreamingVad(use_vad_model)
        self._buffer = np.zeros(0, np.float32)  # samples from absolute position _buffer_start on
        self._buffer_start = 0
        self._received = 0
        self._finished = False
        self._vad_voiced = bytearray()  # per VAD frame, 1 = voiced (a byte each: hours stay small)
        self._vad_count = array("q", [0])  # cumulative voiced VAD frames
        # Per analysis row: features (rms, f1, f2, high, zcr) + voiced; raw channels; gain.
        self._features = _Rows(6)
        self._raw_acoustic = _Rows(_N)
        self._raw_phonetic = _Rows(_N)
        self._gain = _Rows(1)
        self._smoothed = _Rows(_N, np.float32)  # gated channels per analysis row
        self._level = RunningPercentile(75.0, LEVEL_WINDOW_ROWS, MIN_LEVEL)  # the speech level
        self._next_frame = 0
        self._n_rows: Optional[int] = None  # known at finish
        self._n_frames: Optional[int] = None
        plan = self.plan
        end = max((p.end for p in plan.phones), default=0.0)
        self._weight = float(np.clip(plan.weight, 0.0, 1.0)) if plan.phones else 0.0
        self._targets = _PhoneticTargets(
            plan.phones if self._weight > 0 else (),
            int(np.ceil((end + coarticulation._REACH_S) * RATE)) + 2 if self._weight > 0 else 0)
        if plan.trusted:
            self._closed = coarticulation.closure_frames(plan.phones, self.fps, int(np.ceil(end * self.fps)) + 2)
            self._starts = np.array([p.start for p in plan.phones])
        else:
            self._closed = np.zeros(0, bool)

    # -- public -------------------------------------------------------------------------

    @property
    def frames_done(self) -> int:
        return self._next_frame

    def push(self, samples: np.ndarray) -> list[MouthFrame]:
        """Add samples; returns the frames they complete (possibly none)."""
        if self._finished:
            raise RuntimeError("push after finish")
        chunk = as_samples(samples)
        if len(chunk):
            self._buffer = np.concatenate([self._buffer, chunk]) if len(self._buffer) else chunk.copy()
            self._received += len(chunk)
        return self._advance()

    def finish(self) -> list[MouthFrame]:
        """The audio has ended: the remaining frames (the last partial frame included)."""
        if self._finished:
            return []
        self._finished = True
        self._n_rows = acoustic.analysis_frames(self._received)
        self._n_frames = vad.frame_count(self._received, self.fps)
        return self._advance()

    # -- stages -------------------------------------------------------------------------

    def _samples(self, start: int, stop: int) -> np.ndarray:
        """Absolute samples [start, stop), zeros outside what was received."""
        out = np.zeros(stop - start, np.float32)
        lo, hi = max(start, self._buffer_start), min(stop, self._buffer_start + len(self._buffer))
        if hi > lo:
            out[lo - start:hi - start] = self._buffer[lo - self._buffer_start:hi - self._buffer_start]
        return out

    def _run_vad(self) -> None:
        hop = vad.VAD_HOP
        total = -(-self._received // hop) if self._finished else self._received // hop
        while len(self._vad_voiced) < total:
            j = len(self._vad_voiced)
            prob = self._vad.frame(self._samples(j * hop, (j + 1) * hop))
            voiced = prob > vad.THRESHOLD
            self._vad_voiced.append(int(voiced))
            self._vad_count.append(self._vad_count[-1] + int(voiced))

    def _run_features(self) -> None:
        """Acoustic features of every analysis row the audio so far allows, in groups of GROUP
        rows (a fixed shape: the numbers never depend on the batching); then the running
        speech level row by row and the raw channels (element-wise, any batch)."""
        half = acoustic.WINDOW // 2
        rows_total = self._n_rows
        first = self._features.stop
        parts = []
        while True:
            if rows_total is not None:
                if first >= rows_total:
                    break
            elif ((first + GROUP - 1) * HOP + acoustic.WINDOW - half > self._received
                  or ((first + GROUP - 1) * HOP) // vad.VAD_HOP >= len(self._vad_voiced)):
                break
            start = first * HOP - half
            segment = self._samples(start, start + (GROUP - 1) * HOP + acoustic.WINDOW)
            windows = np.lib.stride_tricks.sliding_window_view(segment, acoustic.WINDOW)[::HOP][:GROUP]
            count = GROUP if rows_total is None else min(GROUP, rows_total - first)
            parts.append([c[:count] for c in window_features(windows)])
            first += count
        if not parts:
            return
        columns = [np.concatenate(c) for c in zip(*parts)]
        rows = np.arange(self._features.stop, first)
        vad_index = np.minimum((rows * HOP) // vad.VAD_HOP, len(self._vad_voiced) - 1)
        voiced = np.frombuffer(self._vad_voiced, np.uint8)[vad_index].astype(bool)
        features = acoustic.AcousticFeatures(*columns)
        levels = np.array([self._level.update(r, v) for r, v in zip(features.rms.tolist(), voiced.tolist())])
        gain = acoustic.loudness_gain(features.rms, levels)
        self._features.extend(np.stack([*columns, voiced.astype(np.float32)], axis=1))
        self._raw_acoustic.extend(acoustic.acoustic_shapes(features, voiced, levels))
        self._gain.extend(gain[:, None])
        if self._weight > 0:
            phonetic = np.zeros((len(rows), _N), np.float32)
            inside = rows[rows < len(self._targets)]
            phonetic[:len(inside)] = self._targets[inside]
            phonetic[:, 0] *= gain
            self._raw_phonetic.extend(phonetic)

    @staticmethod
    def _smooth(rows: _Rows, first: int, stop: int, half: int, taps: np.ndarray,
                last: Optional[int], columns: slice = slice(None)) -> np.ndarray:
        """Zero-phase smoothing of rows [first, stop): explicit taps in a fixed order, edges held."""
        index = np.arange(first - half, stop + half)
        index = np.clip(index, 0, last if last is not None else index.max())
        data = rows.take(index)[:, columns]
        out = np.zeros((stop - first, data.shape[1]), np.float64)
        for k, tap in enumerate(taps):
            out += tap * data[k:k + stop - first]
        return out

    def _run_smoothing(self) -> None:
        first = self._smoothed.stop
        available = self._features.stop
        if self._n_rows is not None and available >= self._n_rows:
            stop, last = self._n_rows, self._n_rows - 1
        else:
            stop, last = available - SMOOTH_HALF, None
        if stop <= first:
            return
        acoustic_s = self._smooth(self._raw_acoustic, first, stop, SMOOTH_HALF, _SMOOTH_TAPS, last).astype(np.float32)
        if self._weight > 0:
            phonetic = self._smooth(self._raw_phonetic, first, stop, SMOOTH_HALF, _SMOOTH_TAPS, last).astype(np.float32)
            mix = np.float32(OPENING_ACOUSTIC_MIX)
            phonetic[:, 0] = (np.float32(1) - mix) * phonetic[:, 0] + mix * acoustic_s[:, 0]
            weight = np.float32(self._weight)
            channels = weight * phonetic + (np.float32(1) - weight) * acoustic_s
        else:
            channels = acoustic_s
        gate = self._smooth(self._features, first, stop, GATE_HALF, _GATE_TAPS, last,
                            slice(5, 6))[:, 0].astype(np.float32)
        gated = channels * gate[:, None]
        gated[:, _LIP] = channels[:, _LIP] * gate + np.float32(REST_LIP_PRESS) * (np.float32(1) - gate)
        self._smoothed.extend(gated)

    def _frame_ready(self, k: int) -> bool:
        if self._n_frames is not None:
            return k < self._n_frames
        at = (k + 0.5) / self.fps * RATE
        if int(math.floor(at)) + 1 >= self._smoothed.stop:
            return False
        end_vad = int(math.floor((k + 1) / self.fps * SAMPLE_RATE / vad.VAD_HOP))
        return end_vad < len(self._vad_voiced)

    def _covered(self, t: float) -> float:
        """Seconds of voiced VAD frames in [0, t)."""
        step = vad.VAD_HOP / SAMPLE_RATE
        total = len(self._vad_voiced)
        j = int(math.floor(t / step))
        if j >= total:
            return self._vad_count[total] * step
        return step * (self._vad_count[j] + self._vad_voiced[j] * (t / step - j))

    def _make_frame(self, k: int) -> MouthFrame:
        fps = self.fps
        at = (k + 0.5) / fps * RATE
        last = self._smoothed.stop - 1
        j = min(int(math.floor(at)), last)
        w = at - j if j < last else 0.0
        j1 = min(j + 1, last)
        rows = self._smoothed.take([j, j1]).astype(np.float64)
        values = rows[0] + (rows[1] - rows[0]) * w
        gains = self._gain.take([j, j1])[:, 0]
        loudness = float(np.float32(gains[0] + (gains[1] - gains[0]) * w))
        voiced = bool((self._covered((k + 1) / fps) - self._covered(k / fps)) * fps >= 0.5)
        if not voiced:
            values = np.zeros(_N)
            values[_LIP] = REST_LIP_PRESS
        if k < len(self._closed) and self._closed[k]:  # M/B/P: closed even where the VAD hears none
            values = values.copy()
            values[CHANNELS.index("opening")] = values[CHANNELS.index("teeth")] = 0.0
            values[CHANNELS.index("tongue")] = 0.0
            values[_LIP] = max(values[_LIP], 0.9)
        values = values.astype(np.float32)
        # the channels in CHANNELS order, which is MouthFrame's field order
        opening, width, roundness, lip_press, teeth, tongue = (float(v) for v in values)
        return MouthFrame(k, opening, width, roundness, lip_press, teeth, tongue, loudness=loudness,
                          voiced=voiced, viseme=self._viseme(k, values, voiced))

    def _viseme(self, k: int, values: np.ndarray, voiced: bool) -> str:
        if not voiced:
            return "X"
        if not self.plan.trusted:
            return nearest_visemes(values[None, :])[0]
        centre = (k + 0.5) / self.fps
        i = int(np.searchsorted(self._starts, centre, side="right")) - 1
        if i < 0 or centre >= self.plan.phones[i].end:
            return "X"
        p = self.plan.phones[i]
        visemes = phone_visemes(p.phone)
        second = len(visemes) > 1 and centre >= p.start + FIRST_PART_SHARE * (p.end - p.start)
        return visemes[1] if second else visemes[0]

    def _advance(self) -> list[MouthFrame]:
        self._run_vad()
        self._run_features()
        self._run_smoothing()
        out = []
        while self._frame_ready(self._next_frame):
            out.append(self._make_frame(self._next_frame))
            self._next_frame += 1
        self._trim()
        return out

    def _trim(self) -> None:
        """Forget what no later frame can need (memory stays flat on long audio)."""
        if self._finished:
            return
        row = int(math.floor((self._next_frame + 0.5) / self.fps * RATE)) - 1
        keep_rows = max(min(row, self._smoothed.stop) , 0)
        self._smoothed.drop_before(keep_rows)
        self._gain.drop_before(keep_rows)
        raw = max(self._smoothed.stop - SMOOTH_HALF - 1, 0)
        for rows in (self._raw_acoustic, self._raw_phonetic, self._features):
            rows.drop_before(raw)
        keep_sample = min(self._features.stop * HOP - acoustic.WINDOW, len(self._vad_voiced) * vad.VAD_HOP)
        drop = keep_sample - self._buffer_start
        if drop > 4 * SAMPLE_RATE:
            self._buffer = self._buffer[drop:].copy()
            self._buffer_start += drop


def lookahead_frames(fps: float) -> int:
    """Frames of audio past frame k's end that the tracker needs before it releases frame k."""
    fps = check_fps(fps)
    worst = 0.0
    for k in range(int(4 * fps) + 8):
        at = (k + 0.5) / fps * RATE
        smoothed = int(math.floor(at)) + 1  # the interpolation's upper row
        raw = smoothed + SMOOTH_HALF
        group_last = (raw // GROUP) * GROUP + GROUP - 1
        need = group_last * HOP + acoustic.WINDOW - acoustic.WINDOW // 2
        need = max(need, ((group_last * HOP) // vad.VAD_HOP + 1) * vad.VAD_HOP)
        end_vad = int(math.floor((k + 1) / fps * SAMPLE_RATE / vad.VAD_HOP))
        need = max(need, (end_vad + 1) * vad.VAD_HOP)
        worst = max(worst, need / SAMPLE_RATE - (k + 1) / fps)
    return max(int(math.ceil(worst * fps - 1e-9)), 0)


def track_frames(wave: np.ndarray, fps: float = 25.0, phones: PhonesInput = None,
                 chunks: Optional[Iterable[np.ndarray]] = None) -> list[MouthFrame]:
    """All frames of a clip through the tracker (``chunks`` overrides the one-piece feed)."""
    tracker = MouthTracker(fps, phones)
    out: list[MouthFrame] = []
    for chunk in (chunks if chunks is not None else [wave]):
        out += tracker.push(chunk)
    return out + tracker.finish()
