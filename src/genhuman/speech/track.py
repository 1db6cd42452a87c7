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
from genhuman.media.audio import SAMPLE_RATE
from genhuman.media.audio_clip import AudioClip, Samples, as_array
from genhuman.progress import CancelFn, ProgressFn, Stage, check_cancel, report
from genhuman.speech import acoustic, phonemes, streaming, vad
from genhuman.speech.phonemes import Phone
from genhuman.speech.streaming import OPENING_ACOUSTIC_MIX, PhonePlan  # noqa: F401 (re-exported)
from genhuman.speech.visemes import CHANNELS, phone_visemes

logger = logging.getLogger(__name__)

MODES = ("auto", "phonetic", "acoustic")
RATE = acoustic.ANALYSIS_RATE  # internal analysis rate (100 Hz)
MAX_ALIGN_S = 300.0  # longer: chunked recognition (the word pass grows ~quadratically)
CHUNK_S = 30.0  # recognition chunk length limit; chunks end in VAD silences
SILENT_PEAK = 1e-4  # a clip whose peak stays below this is digital silence
MIN_VISEME_AGREEMENT = 0.62  # aligned vs recognised visemes: below this the transcript does not fit
# Phonetic vs acoustic blend: quality below LOW uses acoustics only, above HIGH phones only.
QUALITY_LOW, QUALITY_HIGH = 0.3, 0.7
# Even with good phones, part of the opening (OPENING_ACOUSTIC_MIX) comes from the signal:
# phones say which shape, the measured loudness and first formant say how far this speaker opens.


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
    The phones are decided on the whole clip (:func:`plan_phones`); the frames come from the
    streaming :class:`~genhuman.speech.streaming.MouthTracker`, so they equal what the lite
    engine's ``stream`` makes from the same audio and phones, however it is chunked.
    """
    wave = _validate(wave_16k, fps, mode)
    plan = plan_phones(wave, text, mode, progress=Stage(progress, 0.0, 0.9), should_cancel=should_cancel)
    report(progress, 0.9, "mouth shapes")
    check_cancel(should_cancel)
    frames = streaming.track_frames(wave, fps, plan)
    report(progress, 1.0, "mouth shapes")
    return track_of(frames, fps, plan)


def track_of(frames: list[streaming.MouthFrame], fps: float, plan: PhonePlan | None = None) -> MouthTrack:
    """A :class:`MouthTrack` from the tracker's frames (in order, from frame 0)."""
    plan = plan or PhonePlan((), 0.0, "acoustic")

    def column(name: str, dtype=np.float32) -> np.ndarray:
        return np.array([getattr(f, name) for f in frames], dtype=dtype)

    trusted = plan.trusted
    return MouthTrack(
        fps=float(fps),
        **{name: column(name) for name in CHANNELS},
        loudness=column("loudness"),
        voiced=column("voiced", bool),
        visemes=[f.viseme for f in frames],
        phones=[(p.phone, round(p.start, 3), round(p.end, 3)) for p in plan.phones] if trusted else [],
        source=plan.source if trusted else "acoustic",
    )


def plan_phones(
    wave_16k: Samples,
    text: str | None = None,
    mode: str = "auto",
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> PhonePlan:
    """Phones for a whole clip and how far to trust them, decided before any frame is made.

    Forced alignment when ``text`` is given (a transcript that does not fit the audio, e.g.
    another language or another sentence, falls back to recognition with a warning),
    recognition otherwise; ``mode="auto"`` scores them against the voice activity
    (:func:`phonetic_quality`) into the phonetic weight of the blend. Raises InputError
    for empty or silent audio. ``wave_16k`` may be an :class:`~genhuman.media.AudioClip`: it is
    read piece by piece (voice activity in blocks, recognition in chunks), never whole.
    """
    wave = _validate_samples(wave_16k, mode)
    report(progress, 0.0, "voice activity")
    prob = vad.speech_probability(wave)
    if not (prob > vad.THRESHOLD).any():
        raise InputError("audio is silent: no speech found")
    if mode == "acoustic":
        return PhonePlan((), 0.0, "acoustic")
    voiced = _analysis_mask(prob, acoustic.analysis_frames(len(wave)))
    phones, source = _phones(wave, text, prob, progress, should_cancel)
    quality = phonetic_quality(phones, voiced)
    logger.info("%s phones: %d, quality %.2f", source, len(phones), quality)
    weight = 1.0 if mode == "phonetic" else float(
        np.clip((quality - QUALITY_LOW) / (QUALITY_HIGH - QUALITY_LOW), 0.0, 1.0)
    )
    if weight == 0 or not phones:
        return PhonePlan((), 0.0, "acoustic")
    report(progress, 1.0, "phones")
    return PhonePlan(tuple(phones), weight, source)


def _validate_samples(wave_16k: Samples, mode: str) -> Samples:
    """An AudioClip as it is (its decoder made it finite and in range), arrays as _validate."""
    if not isinstance(wave_16k, AudioClip):
        return _validate(wave_16k, 25.0, mode)
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not len(wave_16k):
        raise InputError("audio is empty")
    if wave_16k.peak < SILENT_PEAK:
        raise InputError("audio is silent: no speech found")
    return wave_16k


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
    """Aligned phones when the transcript fits the audio, recognised phones otherwise.

    A transcript "fits" when its alignment agrees with the voice activity (a wrong one
    stretches words over pauses) and with the recognised phones (a wrong one can still
    fill the speech, but says other visemes there): MIN_VISEME_AGREEMENT of the 10 ms
    frames where both find speech name the same viseme (~0.8 for the right transcript,
    ~0.4-0.55 for another sentence). Anything else (another language, no path through
    the words) falls back to recognition with a warning.
    """
    check_cancel(should_cancel)
    duration = len(wave) / SAMPLE_RATE
    if not (text and text.strip()):
        return _recognize(wave, prob, progress, should_cancel), "recognized"
    if duration > MAX_ALIGN_S:
        logger.warning("%.0f s is too long to align at once; recognising phones instead", duration)
        return _recognize(wave, prob, progress, should_cancel), "recognized"
    report(progress, 0.1, "aligning transcript")
    try:
        # from a fresh feature state: history-independent; at most MAX_ALIGN_S in memory
        aligned = phonemes.align(as_array(wave), text)
    except (TypeError, RuntimeError, ValueError) as exc:
        # A transcript the audio cannot carry at all (another language, another sentence)
        # mostly gives None (no path through the words); anything else pocketsphinx raises
        # counts the same.
        logger.info("forced alignment failed (%s: %s)", type(exc).__name__, exc)
        aligned = None
    fitting = aligned if aligned and _agrees_with_vad(aligned, prob) else None
    recognized = _recognize(wave, prob, Stage(progress, 0.3, 1.0), should_cancel)
    if fitting is not None:
        agreement = viseme_agreement(fitting, recognized, len(wave))
        logger.info("transcript: %.0f%% of the speech frames agree with the recognised visemes", 100 * agreement)
        if agreement >= MIN_VISEME_AGREEMENT:
            return fitting, "aligned"
    logger.warning("the transcript does not fit the audio; using recognised phones instead")
    return recognized, "recognized"


def _recognize(wave, prob, progress, should_cancel) -> list[Phone]:
    phones: list[Phone] = []
    chunks = recognition_chunks(prob, len(wave))
    for i, (start, end) in enumerate(chunks):
        check_cancel(should_cancel)
        report(progress, 0.1 + 0.8 * i / len(chunks), "recognising phones")
        a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
        # the first chunk starts from a fresh feature state, the others continue from it
        found = phonemes.recognize(wave[a:b], offset=a / SAMPLE_RATE, fresh=i == 0)
        if not found:  # pocketsphinx found no hypothesis at all
            logger.info("no phones recognised in %.1f-%.1f s", start, end)
        phones.extend(found)
    return phones


def _viseme_frames(phones: list[Phone], n: int) -> np.ndarray:
    out = np.full(n, "", dtype=object)
    for p in phones:
        if p.is_speech:
            out[int(round(p.start * RATE)):int(round(p.end * RATE))] = phone_visemes(p.phone)[0]
    return out


def viseme_agreement(aligned: list[Phone], recognized: list[Phone], n_samples: int) -> float:
    """Share of the 10 ms frames where both phone lists have speech that name the same viseme."""
    n = acoustic.analysis_frames(n_samples) + 1
    a, r = _viseme_frames(aligned, n), _viseme_frames(recognized, n)
    both = (a != "") & (r != "")
    return float((a[both] == r[both]).mean()) if both.any() else 0.0


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


