"""Assemble a per-video-frame :class:`MouthTrack` from speech.

Frame rule: a clip of ``n`` samples at 16 kHz gives ``ceil(n * fps / 16000)`` frames;
frame ``k`` shows the interval [k / fps, (k + 1) / fps) and its values are taken at the
interval's centre. (The video writer trims the audio to ``n_frames / fps``.)
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass, field

import numpy as np

from genhuman.errors import InputError
from genhuman.progress import CancelFn, ProgressFn, check_cancel, report
from genhuman.speech import acoustic, coarticulation, phonemes, vad
from genhuman.speech.phonemes import Phone
from genhuman.speech.visemes import (
    CHANNELS, FIRST_PART_SHARE, REST_LIP_PRESS, nearest_visemes, phone_visemes,
)

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
MODES = ("auto", "phonetic", "acoustic")
RATE = acoustic.ANALYSIS_RATE  # internal analysis rate (100 Hz)
MAX_ALIGN_S = 300.0  # longer: chunked recognition (the word pass grows ~quadratically)
CHUNK_S = 30.0  # recognition chunk length limit; chunks end in VAD silences
SILENT_PEAK = 1e-4  # a clip whose peak stays below this is digital silence
# Phonetic vs acoustic blend: quality below LOW uses acoustics only, above HIGH phones only.
QUALITY_LOW, QUALITY_HIGH = 0.3, 0.7
# Even with good phones, part of the opening comes from the signal: phones say which
# shape, the measured loudness and first formant say how far this speaker opens.
OPENING_ACOUSTIC_MIX = 0.3


@dataclass
class MouthTrack:
    """Mouth channels per video frame (float32 arrays of length ``n_frames``)."""

    fps: float
    opening: np.ndarray  # 0 closed .. 1 widest
    width: np.ndarray  # -1 puckered .. 1 spread
    roundness: np.ndarray  # 0 .. 1
    lip_press: np.ndarray  # 0 relaxed .. 1 pressed together
    teeth: np.ndarray  # 0 .. 1 visibility
    tongue: np.ndarray  # 0 .. 1 visibility hint
    loudness: np.ndarray  # soft-compressed loudness, ~1 at the clip's loud speech
    voiced: np.ndarray  # bool, speech in this frame
    visemes: list[str]  # Rhubarb-like letter per frame
    phones: list[tuple[str, float, float]] = field(default_factory=list)  # (phone, start_s, end_s)
    source: str = "acoustic"  # "aligned", "recognized" or "acoustic"

    @property
    def n_frames(self) -> int:
        return len(self.opening)

    def channels(self) -> np.ndarray:
        """(n_frames, 6) array in :data:`genhuman.speech.visemes.CHANNELS` order."""
        return np.stack([getattr(self, name) for name in CHANNELS], axis=1)


def mouth_track(
    wave_16k: np.ndarray,
    fps: float = 25.0,
    text: str | None = None,
    mode: str = "auto",
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> MouthTrack:
    """Mouth shapes for every video frame of a 16 kHz mono clip.

    ``mode``: "phonetic" uses pocketsphinx phones (aligned to ``text`` when given,
    recognised otherwise), "acoustic" only loudness/spectral cues (any language), "auto"
    judges the phones against the voice activity and blends or switches to acoustics.
    """
    wave = _validate(wave_16k, fps, mode)
    n_frames = vad.frame_count(len(wave), fps)
    n_analysis = acoustic.analysis_frames(len(wave))

    report(progress, 0.0, "voice activity")
    prob = vad.speech_probability(wave)
    if not (prob > vad.THRESHOLD).any():
        raise InputError("audio is silent: no speech found")
    voiced_analysis = _analysis_mask(prob, n_analysis)
    channels, gain, phones, source = _analysis_channels(
        wave, text, mode, prob, voiced_analysis, progress, should_cancel
    )

    report(progress, 0.9, "mouth shapes")
    frames = _sample_frames(_gate_silence(channels, voiced_analysis), fps, n_frames)
    voiced = vad.resample_mask(prob > vad.THRESHOLD, vad.VAD_HOP / SAMPLE_RATE, fps, n_frames)
    frames = _close_silent_frames(frames, voiced)
    if phones:
        frames = coarticulation.enforce_closures(
            frames, coarticulation.closure_frames(phones, fps, n_frames)
        )
    loudness = np.interp((np.arange(n_frames) + 0.5) / fps * RATE, np.arange(n_analysis), gain)
    report(progress, 1.0, "mouth shapes")
    return MouthTrack(
        fps=float(fps),
        **{name: np.ascontiguousarray(frames[:, i], dtype=np.float32) for i, name in enumerate(CHANNELS)},
        loudness=loudness.astype(np.float32),
        voiced=voiced,
        visemes=_frame_visemes(frames, voiced, phones, fps),
        phones=[(p.phone, round(p.start, 3), round(p.end, 3)) for p in phones],
        source=source,
    )


def _analysis_channels(wave, text, mode, prob, voiced, progress, should_cancel):
    """Mouth channels at the 100 Hz analysis rate, the loudness gain, the phones used
    (empty when the acoustic path won) and the source name."""
    n_analysis = len(voiced)
    features = acoustic.analyse(wave)
    level = acoustic.speech_level(features.rms, voiced)
    gain = acoustic.loudness_gain(features.rms, level)
    acoustic_channels = coarticulation.smooth(acoustic.acoustic_shapes(features, voiced, level), RATE)
    if mode == "acoustic":
        return acoustic_channels, gain, [], "acoustic"

    phones, source = _phones(wave, text, prob, progress, should_cancel)
    quality = phonetic_quality(phones, voiced)
    logger.info("%s phones: %d, quality %.2f", source, len(phones), quality)
    weight = 1.0 if mode == "phonetic" else float(
        np.clip((quality - QUALITY_LOW) / (QUALITY_HIGH - QUALITY_LOW), 0.0, 1.0)
    )
    if weight == 0:
        return acoustic_channels, gain, [], "acoustic"
    phonetic = coarticulation.blend_targets(phones, n_analysis, RATE)
    phonetic[:, 0] *= gain
    phonetic = coarticulation.smooth(phonetic, RATE)
    mix = OPENING_ACOUSTIC_MIX
    phonetic[:, 0] = (1 - mix) * phonetic[:, 0] + mix * acoustic_channels[:, 0]
    channels = weight * phonetic + (1.0 - weight) * acoustic_channels
    if weight < 0.5:  # mostly acoustic: the phones are not trusted to force closures
        return channels, gain, [], "acoustic"
    return channels, gain, phones, source


def _validate(wave_16k: np.ndarray, fps: float, mode: str) -> np.ndarray:
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if isinstance(fps, bool) or not (isinstance(fps, numbers.Real) and 1 <= fps <= 240):
        raise InputError(f"fps must be between 1 and 240, not {fps!r}")
    wave = np.asarray(wave_16k)
    if np.issubdtype(wave.dtype, np.integer):  # PCM samples: scale to [-1, 1]
        wave = wave.astype(np.float32) / float(np.iinfo(wave.dtype).max)
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise InputError("audio must be mono: a 1-D array of samples")
    if wave.size == 0:
        raise InputError("audio is empty")
    if not np.isfinite(wave).all():
        wave = np.nan_to_num(wave, nan=0.0, posinf=1.0, neginf=-1.0)
    if max(float(wave.max()), -float(wave.min())) < SILENT_PEAK:
        raise InputError("audio is silent: no speech found")
    return np.ascontiguousarray(wave)


def _analysis_mask(prob: np.ndarray, n_analysis: int) -> np.ndarray:
    """VAD decisions (32 ms frames) looked up at each 10 ms analysis frame."""
    idx = np.minimum((np.arange(n_analysis) * acoustic.HOP) // vad.VAD_HOP, len(prob) - 1)
    return prob[idx] > vad.THRESHOLD


def _phones(wave, text, prob, progress, should_cancel) -> tuple[list[Phone], str]:
    check_cancel(should_cancel)
    duration = len(wave) / SAMPLE_RATE
    if text and text.strip():
        if duration <= MAX_ALIGN_S:
            report(progress, 0.1, "aligning transcript")
            aligned = phonemes.align(wave, text)
            if aligned is not None and _agrees_with_vad(aligned, prob):
                return aligned, "aligned"
            logger.info("transcript does not fit the audio; recognising phones instead")
        else:
            logger.info("%.0f s is too long to align at once; recognising phones instead", duration)
    phones: list[Phone] = []
    chunks = recognition_chunks(prob, len(wave))
    for i, (start, end) in enumerate(chunks):
        check_cancel(should_cancel)
        report(progress, 0.1 + 0.8 * i / len(chunks), "recognising phones")
        a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
        phones.extend(phonemes.recognize(wave[a:b], offset=a / SAMPLE_RATE))
    return phones, "recognized"


def recognition_chunks(prob: np.ndarray, n_samples: int) -> list[tuple[float, float]]:
    """(start_s, end_s) pieces of at most CHUNK_S around speech, cut inside silences."""
    duration = n_samples / SAMPLE_RATE
    pad = 0.15
    chunks: list[tuple[float, float]] = []
    for start, end in vad.speech_segments(prob):
        start, end = max(start - pad, 0.0), min(end + pad, duration)
        if chunks and end - chunks[-1][0] <= CHUNK_S:
            chunks[-1] = (chunks[-1][0], end)  # join neighbours: fewer decoder restarts
            continue
        while end - start > CHUNK_S:  # no pause long enough: cut at the quietest VAD frame
            lo = int((start + 0.66 * CHUNK_S) * SAMPLE_RATE / vad.VAD_HOP)
            hi = int((start + CHUNK_S) * SAMPLE_RATE / vad.VAD_HOP)
            cut = (lo + int(np.argmin(prob[lo:hi]))) * vad.VAD_HOP / SAMPLE_RATE
            chunks.append((start, cut))
            start = cut
        chunks.append((start, end))
    return chunks


def _speech_mask(phones: list[Phone], n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for p in phones:
        if p.is_speech:
            mask[int(round(p.start * RATE)) : int(round(p.end * RATE))] = True
    return mask


def phonetic_quality(phones: list[Phone], voiced: np.ndarray) -> float:
    """0..1: how much of the voiced audio real phones explain, at a plausible phone rate.

    Unrecognisable sound (music, tones, noise) comes back as noise/silence fillers or
    as a few very long phones, both of which score low here.
    """
    voiced_s = voiced.sum() / RATE
    if voiced_s <= 0:
        return 0.0
    coverage = float((_speech_mask(phones, len(voiced)) & voiced).sum() / voiced.sum())
    rate = sum(p.is_speech for p in phones) / voiced_s  # English runs at ~8-15 phones/s
    rate_ok = float(np.clip((rate - 3.0) / 4.0, 0.0, 1.0))
    return coverage * rate_ok


def _agrees_with_vad(phones: list[Phone], prob: np.ndarray) -> bool:
    """A forced alignment of the wrong transcript stretches words over silence."""
    voiced = _analysis_mask(prob, int(np.ceil(phones[-1].end * RATE)) + 1)
    speech = _speech_mask(phones, len(voiced))
    if not speech.any() or not voiced.any():
        return False
    precision = (speech & voiced).sum() / speech.sum()
    recall = (speech & voiced).sum() / voiced.sum()
    return bool(precision >= 0.6 and recall >= 0.6)


def _gate_silence(channels: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Relax towards the resting mouth where the VAD hears no speech."""
    gate = coarticulation.smooth(voiced.astype(np.float32), RATE, tau=0.015)
    out = channels * gate[:, None]
    lip = CHANNELS.index("lip_press")
    out[:, lip] = channels[:, lip] * gate + REST_LIP_PRESS * (1.0 - gate)
    return out


def _sample_frames(channels: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    at = (np.arange(n_frames) + 0.5) / fps * RATE
    grid = np.arange(len(channels))
    return np.stack([np.interp(at, grid, channels[:, c]) for c in range(channels.shape[1])], axis=1)


def _close_silent_frames(frames: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    out = frames.copy()
    out[~voiced] = 0.0
    out[~voiced, CHANNELS.index("lip_press")] = REST_LIP_PRESS
    return out


def _frame_visemes(frames: np.ndarray, voiced: np.ndarray, phones: list[Phone], fps: float) -> list[str]:
    centres = (np.arange(len(frames)) + 0.5) / fps
    labels = ["X"] * len(frames)
    if phones:
        starts = np.array([p.start for p in phones])
        idx = np.searchsorted(starts, centres, side="right") - 1
        for k, i in enumerate(idx):
            if i < 0 or centres[k] >= phones[i].end or not voiced[k]:
                continue
            p = phones[i]
            visemes = phone_visemes(p.phone)
            second = len(visemes) > 1 and centres[k] >= p.start + FIRST_PART_SHARE * (p.end - p.start)
            labels[k] = visemes[1] if second else visemes[0]
        return labels
    voiced_idx = np.flatnonzero(voiced)
    for k, label in zip(voiced_idx, nearest_visemes(frames[voiced_idx])):
        labels[k] = label
    return labels
