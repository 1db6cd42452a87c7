"""Voice activity: silero-vad (its ONNX sequence model through onnxruntime, no torchaudio)
with an energy-based detector as fallback: used alone when the model cannot be loaded,
and joined to the model's decisions when the model misses most of a clip's clearly
modulated sound (synthetic, sung or heavily processed voices it was not trained on).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path

import numpy as np

from genhuman.media import SAMPLE_RATE, AudioClip, Samples

logger = logging.getLogger(__name__)

VAD_HOP = 512  # silero's frame at 16 kHz (32 ms)
THRESHOLD = 0.5
# A frame quieter than this (dBFS) is silence whatever the model says.
ABSOLUTE_FLOOR_DB = -55.0
# Steady sound (hum, hiss) is not speech: voices rise and fall by more than this.
MIN_MODULATION_DB = 15.0
# When the model accepts less than this share of the energy detector's sound frames,
# it is taken to have missed an unusual voice.
MODEL_MISS_SHARE = 0.5
MODEL_FILE = "silero_vad_16k_sequence.onnx"
CONTEXT = 64  # samples of the previous frame the model sees before each frame
_BLOCK_FRAMES = 512  # frames per ONNX call (~16 s): few calls, bounded memory



def model_path() -> Path:
    """The ONNX model inside the installed silero-vad package, found without importing it
    (its ``__init__`` imports torch, which costs seconds and is not needed here). No model
    file is shipped in genhuman itself."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the silero-vad package is not installed (pip install silero-vad)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / MODEL_FILE


@functools.lru_cache(maxsize=1)
def _silero():
    """An onnxruntime session of silero's sequence model, or None when unusable."""
    try:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = options.intra_op_num_threads = 1
        return onnxruntime.InferenceSession(
            str(model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # any import/ONNX failure: the energy detector still works
        logger.warning("silero-vad unavailable (%s); using the energy-based detector", exc)
        return None


def _silero_probability(session, wave: Samples) -> np.ndarray:
    """Model input per frame: the previous frame's last CONTEXT samples + VAD_HOP new ones;
    the LSTM state (h, c) carries over between blocks."""
    n = -(-len(wave) // VAD_HOP)
    state = np.zeros((1, 1, 128), dtype=np.float32), np.zeros((1, 1, 128), dtype=np.float32)
    out = []
    for first in range(0, n, _BLOCK_FRAMES):
        count = min(_BLOCK_FRAMES, n - first)
        start = first * VAD_HOP - CONTEXT
        segment = np.zeros(CONTEXT + count * VAD_HOP, dtype=np.float32)
        lo, hi = max(start, 0), min(start + len(segment), len(wave))
        segment[lo - start : hi - start] = wave[lo:hi]
        frames = np.lib.stride_tricks.sliding_window_view(segment, CONTEXT + VAD_HOP)[::VAD_HOP]
        probs, h, c = session.run(
            ["speech_probs", "hn", "cn"],
            {"input": np.ascontiguousarray(frames), "h": state[0], "c": state[1]},
        )
        state = (h, c)
        out.append(probs.reshape(-1))
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def _frame_rms_db(wave: Samples, hop: int) -> np.ndarray:
    """Level (dBFS) of each ``hop``-sample frame, the last one zero padded; in blocks so
    that hour-long audio needs no full-size temporary copies."""
    n = -(-len(wave) // hop)
    power = np.empty(n, dtype=np.float32)
    block = 1024 * hop
    for start in range(0, len(wave), block):
        piece = wave[start : start + block]
        frames = -(-len(piece) // hop)
        padded = np.zeros(frames * hop, dtype=np.float32)
        padded[: len(piece)] = piece
        power[start // hop : start // hop + frames] = np.square(padded.reshape(frames, hop)).mean(axis=1)
    return 10.0 * np.log10(power + 1e-12)


def energy_speech_probability(wave: Samples, hop: int = VAD_HOP) -> np.ndarray:
    """Fallback detector: loudness between the clip's noise floor and its loud frames.

    The threshold sits halfway (in dB) between the floor (10th percentile) and the loud
    frames (95th), at most 30 dB below the loud frames; steady sound is not speech.
    """
    db = _frame_rms_db(wave, hop)
    if not len(db):
        return db
    loud, floor = np.percentile(db, 95), np.percentile(db, 10)
    if loud - floor < MIN_MODULATION_DB:
        return np.zeros(len(db), dtype=np.float32)
    threshold = max(0.5 * (loud + floor), loud - 30.0)
    prob = np.clip(0.5 + (db - threshold) / 6.0, 0.0, 1.0)
    prob[db < ABSOLUTE_FLOOR_DB] = 0.0
    return prob.astype(np.float32)


def speech_probability(wave: Samples, use_model: bool = True) -> np.ndarray:
    """Per-32-ms-frame probability of speech (frame i covers samples [512 i, 512 (i+1)))."""
    if not isinstance(wave, AudioClip):  # a clip is read block by block below, never whole
        wave = np.ascontiguousarray(wave, dtype=np.float32)
    session = _silero() if use_model else None
    if session is None:
        return energy_speech_probability(wave)
    # no lock: the LSTM state is local to the call and InferenceSession.run is thread-safe
    prob = _silero_probability(session, wave)
    # The model happily fires on very quiet breaths; require some actual sound.
    prob[_frame_rms_db(wave, VAD_HOP)[: len(prob)] < ABSOLUTE_FLOOR_DB] = 0.0
    energy = energy_speech_probability(wave)[: len(prob)]
    sound = energy > THRESHOLD
    if sound.any() and (prob[sound] > THRESHOLD).mean() < MODEL_MISS_SHARE:
        logger.info("silero-vad misses most of this clip's sound; adding the energy detector")
        return np.maximum(prob, energy)
    return prob


def voice_activity(wave: np.ndarray, fps: float = 25.0, n_frames: int | None = None) -> np.ndarray:
    """Bool mask per video frame: True where at least half the frame is speech."""
    prob = speech_probability(wave)
    if n_frames is None:
        n_frames = frame_count(len(wave), fps)
    return resample_mask(prob > THRESHOLD, VAD_HOP / SAMPLE_RATE, fps, n_frames)


def resample_mask(mask: np.ndarray, step_s: float, fps: float, n_frames: int) -> np.ndarray:
    """Share of each video frame covered by True steps of ``mask`` is >= 0.5."""
    if not len(mask):
        return np.zeros(n_frames, dtype=bool)
    edges = np.arange(n_frames + 1) / fps
    cumulative = np.concatenate([[0.0], np.cumsum(mask, dtype=np.float64)]) * step_s
    times = np.arange(len(mask) + 1) * step_s
    covered = np.interp(edges, times, cumulative)
    return (np.diff(covered) * fps) >= 0.5


def speech_segments(prob: np.ndarray, min_silence_s: float = 0.3) -> list[tuple[float, float]]:
    """(start_s, end_s) of speech runs; gaps shorter than ``min_silence_s`` are bridged."""
    step = VAD_HOP / SAMPLE_RATE
    active = np.concatenate([[False], prob > THRESHOLD, [False]])
    edges = np.flatnonzero(np.diff(active.astype(np.int8)))
    runs = [(s * step, e * step) for s, e in zip(edges[::2], edges[1::2])]
    merged: list[tuple[float, float]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] < min_silence_s:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def frame_count(n_samples: int, fps: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Video frames for a clip: ceil(duration * fps), so the last partial frame is kept."""
    return int(np.ceil(n_samples * fps / sample_rate - 1e-9))
