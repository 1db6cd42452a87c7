"""Audio features for the diffusion engines (Whisper-tiny encoder levels for EchoMimic)."""

from genhuman.audio_features.whisper import (
    build_whisper_encoder,
    convert_openai_whisper,
    official_frame_count,
    frame_tokens,
    log_mel_spectrogram,
    whisper_config_from_dims,
    whisper_features,
    window_indices,
)

__all__ = ["build_whisper_encoder", "convert_openai_whisper", "official_frame_count", "frame_tokens",
           "log_mel_spectrogram", "whisper_config_from_dims", "whisper_features", "window_indices"]
