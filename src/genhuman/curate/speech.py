"""Speech: the share of the segment's frames with voice (silero VAD through genhuman.speech)."""

from __future__ import annotations

import numpy as np

from genhuman.curate.config import SpeechConfig
from genhuman.curate.verdict import Verdict
from genhuman.speech.vad import THRESHOLD, VAD_HOP, resample_mask, speech_probability

SILENT_RMS = 1e-4  # digital silence: the model is not even asked


def check_speech(audio: np.ndarray, fps: float, frames: int, config: SpeechConfig) -> Verdict:
    from genhuman.media import SAMPLE_RATE

    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    if rms < SILENT_RMS:
        share = 0.0
    else:
        probability = speech_probability(audio, use_model=config.use_model)
        share = float(resample_mask(probability > THRESHOLD, VAD_HOP / SAMPLE_RATE, fps, frames).mean())
    failures = [] if share >= config.min_voice_share else [
        f"{'silent' if rms < SILENT_RMS else 'little speech'} (voice in {share:.0%} of frames "
        f"< {config.min_voice_share:.0%})"]
    level = 20 * np.log10(max(rms, 1e-12))
    return Verdict.check("speech", {"speech_share": share, "audio_rms_db": float(level)}, failures)
