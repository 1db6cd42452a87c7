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
from genhuman.audio_features.wav2vec import (
    build_wav2vec,
    clip_windows,
    frame_windows,
    load_wav2vec,
    long_audio_features,
    segment_features,
    wav2vec_features,
)

__all__ = ["build_whisper_encoder", "convert_openai_whisper", "official_frame_count", "frame_tokens",
           "log_mel_spectrogram", "whisper_config_from_dims", "whisper_features", "window_indices",
           "build_wav2vec", "clip_windows", "frame_windows", "load_wav2vec", "long_audio_features",
           "segment_features", "wav2vec_features"]
