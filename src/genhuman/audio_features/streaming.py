"""Whisper tokens for a video frame as soon as the audio it needs has arrived.

The batch path (:func:`~genhuman.audio_features.whisper.whisper_features`) normalises the
log-mel over the whole file and encodes fixed 30 s segments, so it needs all the audio.
Here each group of frames is encoded from ``context_s`` seconds of audio before it up to
the newest sample (log-mel normalised over that span): frame ``i`` is ready once the audio
reaches whisper frame ``int(i * 50 / fps) + 6`` plus the encoder's convolution margin,
about 0.17 s after the frame's own time. Only that span of audio is kept.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Optional

import numpy as np
import torch

from genhuman.audio_features.whisper import (FEATURES_PER_SECOND, HOP_LENGTH, N_FFT, SAMPLE_RATE,
                                             SEGMENT_MEL_FRAMES, WINDOW_AFTER, WINDOW_BEFORE, encode_levels,
                                             log_mel_spectrogram)

SAMPLES_PER_FEATURE = SAMPLE_RATE // FEATURES_PER_SECOND  # 320
CONV_MARGIN = 2 * SAMPLES_PER_FEATURE + N_FFT  # the encoder's two convolutions see +-1 mel frame each


class WhisperTokenStream:
    """``for tokens in WhisperTokenStream(encoder, fps).tokens(chunks)``: (n, 10 * levels, dim)
    float32 per-frame tokens, in order, in groups of at least ``group`` frames."""

    def __init__(self, encoder, fps: float, group: int = 9, context_s: float = 8.0):
        if not 0 <= context_s <= 20:
            raise ValueError("context_s must be between 0 and 20 s (one 30 s whisper segment)")
        self.encoder, self.fps, self.group = encoder, float(fps), max(1, group)
        self.context = int(context_s * FEATURES_PER_SECOND)  # whisper frames of left context

    def _centre(self, frame: int) -> int:
        return int(frame * FEATURES_PER_SECOND / self.fps)

    def _ready(self, frame: int, received: int) -> bool:
        return (self._centre(frame) + WINDOW_AFTER) * SAMPLES_PER_FEATURE + CONV_MARGIN <= received

    @torch.no_grad()
    def _encode(self, wave: np.ndarray, first_feature: int, frames: range, total_features: int) -> torch.Tensor:
        """Tokens of ``frames`` from ``wave``, which starts at whisper frame ``first_feature``."""
        param = next(self.encoder.parameters())
        mel = log_mel_spectrogram(torch.from_numpy(wave).to(param.device), self.encoder.config.num_mel_bins)
        mel = mel[:, :SEGMENT_MEL_FRAMES]
        valid = mel.shape[-1] // 2
        mel = torch.nn.functional.pad(mel, (0, SEGMENT_MEL_FRAMES - mel.shape[-1]))
        levels = encode_levels(self.encoder, mel[None].to(param.dtype))[:valid].float().cpu()
        centres = torch.tensor([self._centre(i) for i in frames], dtype=torch.long)
        idx = (centres[:, None] + torch.arange(-WINDOW_BEFORE, WINDOW_AFTER)[None]).clamp(0, total_features - 1)
        local = (idx - first_feature).clamp(0, levels.shape[0] - 1)
        return levels[local].reshape(len(frames), -1, levels.shape[-1])

    def tokens(self, chunks: Iterable[np.ndarray]) -> Iterator[torch.Tensor]:
        buffer = np.zeros(0, dtype=np.float32)
        offset = 0  # absolute sample index of buffer[0]
        next_frame = 0
        for chunk in chunks:
            buffer = np.concatenate([buffer, np.asarray(chunk, dtype=np.float32).ravel()])
            while self._ready(next_frame + self.group - 1, offset + len(buffer)):
                buffer, offset = yield from self._emit(buffer, offset, range(next_frame, next_frame + self.group))
                next_frame += self.group
        received = offset + len(buffer)
        if received < HOP_LENGTH:
            return
        total_frames = max(1, round(received / SAMPLE_RATE * self.fps))  # the frames the speech covers
        total_features = max(1, received // SAMPLES_PER_FEATURE)
        while next_frame < total_frames:
            stop = min(total_frames, next_frame + self.group)
            buffer, offset = yield from self._emit(buffer, offset, range(next_frame, stop), total_features)
            next_frame = stop

    def _emit(self, buffer: np.ndarray, offset: int, frames: range, total_features: Optional[int] = None):
        """Yield the tokens of ``frames``; return the buffer trimmed to what later frames need."""
        first_feature = max(0, self._centre(frames.start) - WINDOW_BEFORE - self.context)
        start = max(offset, first_feature * SAMPLES_PER_FEATURE)
        total = total_features or (offset + len(buffer)) // SAMPLES_PER_FEATURE
        yield self._encode(buffer[start - offset:], start // SAMPLES_PER_FEATURE, frames, total)
        keep_from = max(offset, max(0, self._centre(frames.stop) - WINDOW_BEFORE - self.context)
                        * SAMPLES_PER_FEATURE)
        return buffer[keep_from - offset:], keep_from
