"""Whisper-tiny encoder features as EchoMimic computes them (spec echomimic.md §2.10).

Recipe: log-mel over the WHOLE file (80 bins, n_fft 400, hop 160, log10, floor at the
file's global max - 8, then (x + 4) / 4); 30 s segments (3000 mel frames, zero-padded in
the log-mel domain); the encoder's input embedding plus the raw output of each block
(no final LayerNorm) -> (T50, 5, 384) at 50 Hz; then one window of 10 whisper frames
[c - 4, c + 6), clamped, per video frame -> (50, 384), time-major, layer-minor.

The encoder is transformers' ``WhisperEncoder``; OpenAI's ``tiny.pt`` is converted by
renaming keys. The official code runs the encoder in fp16; we run it in fp32 (it is tiny).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np
import torch
from transformers import WhisperConfig
from transformers.audio_utils import mel_filter_bank
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from genhuman.errors import InputError
from genhuman.media.audio import SAMPLE_RATE

log = logging.getLogger(__name__)

N_FFT = 400
HOP_LENGTH = 160
SEGMENT_MEL_FRAMES = 3000  # 30 s
FEATURES_PER_SECOND = 50  # encoder frames per second (conv2 has stride 2)
WINDOW_BEFORE, WINDOW_AFTER = 4, 6  # per video frame: whisper frames [c - 4, c + 6)


# ---------------------------------------------------------------- checkpoint conversion

_BLOCK_RENAMES = {
    "attn.query": "self_attn.q_proj",
    "attn.key": "self_attn.k_proj",
    "attn.value": "self_attn.v_proj",
    "attn.out": "self_attn.out_proj",
    "attn_ln": "self_attn_layer_norm",
    "mlp.0": "fc1",
    "mlp.2": "fc2",
    "mlp_ln": "final_layer_norm",
}
_TOP_RENAMES = {
    "conv1": "conv1",
    "conv2": "conv2",
    "positional_embedding": "embed_positions.weight",
    "ln_post": "layer_norm",
}


def whisper_config_from_dims(dims: Mapping[str, int]) -> WhisperConfig:
    """transformers config for the encoder described by OpenAI's ``dims`` dict."""
    return WhisperConfig(
        num_mel_bins=dims["n_mels"],
        max_source_positions=dims["n_audio_ctx"],
        d_model=dims["n_audio_state"],
        encoder_attention_heads=dims["n_audio_head"],
        encoder_layers=dims["n_audio_layer"],
        encoder_ffn_dim=4 * dims["n_audio_state"],
        activation_function="gelu",
        # The decoder is never built; keep its config tiny and consistent.
        decoder_layers=1,
        decoder_attention_heads=dims["n_audio_head"],
        decoder_ffn_dim=4 * dims["n_audio_state"],
    )


def _rename(key: str) -> str:
    rest = key[len("encoder."):]
    if rest.startswith("blocks."):
        _, index, tail = rest.split(".", 2)
        for old, new in _BLOCK_RENAMES.items():
            if tail.startswith(old + "."):
                return f"layers.{index}.{new}{tail[len(old):]}"
        raise KeyError(key)
    for old, new in _TOP_RENAMES.items():
        if rest == old or rest.startswith(old + "."):
            return new if rest == old else new + rest[len(old):]
    raise KeyError(key)


def convert_openai_whisper(
    checkpoint: Union[str, Path, Mapping[str, Any]],
) -> tuple[WhisperConfig, dict[str, torch.Tensor]]:
    """OpenAI ``tiny.pt`` ({"dims", "model_state_dict"}) -> (config, WhisperEncoder state dict).

    Only the encoder is kept; the decoder's tensors are dropped.
    """
    from genhuman.checkpoints.weights import read_torch_pickle

    loaded: Any
    name = "the whisper checkpoint"
    if isinstance(checkpoint, Mapping):
        loaded = checkpoint
    else:
        path = Path(checkpoint)
        if not path.is_file():
            raise InputError(f"whisper checkpoint not found: {path.name}")
        loaded, name = read_torch_pickle(path), path.name
    dims = loaded.get("dims") if isinstance(loaded, Mapping) else None
    weights = loaded.get("model_state_dict") if isinstance(loaded, Mapping) else None
    if not (isinstance(dims, Mapping) and isinstance(weights, Mapping)):
        raise InputError(f"{name} is not an OpenAI whisper checkpoint (expected 'dims' and 'model_state_dict')")
    try:
        config = whisper_config_from_dims({k: _whole(dims[k]) for k in _DIMS})
        if config.encoder_layers > 64:  # a huge encoder would take minutes to build before the check
            raise ValueError(config.encoder_layers)
        state = {_rename(key): value.detach().clone().contiguous()
                 for key, value in weights.items() if isinstance(key, str) and key.startswith("encoder.")}
        if not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise TypeError
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError(f"{name} is not an OpenAI whisper checkpoint (unexpected dims or weights)") from None
    return config, state


_DIMS = ("n_mels", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer")


def _whole(value: Any) -> int:
    if type(value) is not int or not 0 < value < 2**20:
        raise ValueError(value)
    return value


def build_whisper_encoder(config: WhisperConfig, state_dict: Mapping[str, torch.Tensor] | None = None,
                          what: str = "the whisper weights") -> WhisperEncoder:
    """The encoder with ``state_dict`` (random weights without one). With weights it is built on
    the meta device first, so a config that asks for a huge encoder costs nothing before the
    weights' names and shapes are checked against it (a mismatch is one InputError)."""
    from genhuman.models.pretrained import load_strict

    if state_dict is None:
        encoder = WhisperEncoder(config)
    else:
        try:
            with torch.device("meta"):
                encoder = WhisperEncoder(config)
        except (ValueError, TypeError, RuntimeError):  # e.g. a width its heads do not divide
            raise InputError(f"{what}: the whisper config does not describe an encoder") from None
        load_strict(encoder, dict(state_dict), what)
    return encoder.eval().requires_grad_(False)


# ---------------------------------------------------------------- log-mel


def log_mel_spectrogram(wave_16k: torch.Tensor, n_mels: int = 80) -> torch.Tensor:
    """(samples,) float -> (n_mels, samples // 160), normalised over the whole input."""
    window = torch.hann_window(N_FFT, device=wave_16k.device)
    stft = torch.stft(wave_16k.float(), N_FFT, HOP_LENGTH, window=window, return_complex=True)
    power = stft[..., :-1].abs() ** 2
    filters = torch.from_numpy(_mel_filters(n_mels)).to(power.device)  # (n_mels, 201)
    log_spec = torch.clamp(filters @ power, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def _mel_filters(n_mels: int) -> np.ndarray:
    # Same filterbank as librosa.filters.mel(sr=16000, n_fft=400) (Slaney scale and norm).
    bank = mel_filter_bank(num_frequency_bins=1 + N_FFT // 2, num_mel_filters=n_mels, min_frequency=0.0,
                           max_frequency=SAMPLE_RATE / 2, sampling_rate=SAMPLE_RATE, norm="slaney",
                           mel_scale="slaney")
    return bank.T.astype(np.float32)


# ---------------------------------------------------------------- encoder features


@torch.no_grad()
def encode_levels(encoder: WhisperEncoder, mel_segment: torch.Tensor) -> torch.Tensor:
    """(1, n_mels, 3000) -> (1500, 1 + n_layers, d): input embedding + raw block outputs.

    transformers 5.x reports the LAST hidden state after the final LayerNorm, which
    EchoMimic does not use, so the last block's raw output is taken with a hook.
    """
    captured: list[torch.Tensor] = []

    def keep_output(_module, _inputs, output):
        captured.append(output[0] if isinstance(output, tuple) else output)

    handle = encoder.layers[-1].register_forward_hook(keep_output)
    try:
        out = encoder(mel_segment, output_hidden_states=True)
    finally:
        handle.remove()
    levels = list(out.hidden_states[: len(encoder.layers)]) + captured
    return torch.stack(levels, dim=2)[0]  # (1500, levels, d)


@torch.no_grad()
def whisper_features(encoder: WhisperEncoder, wave_16k: Union[np.ndarray, torch.Tensor]) -> torch.Tensor:
    """16 kHz mono speech -> (T50, 1 + n_layers, d) float32 on CPU, at 50 Hz.

    30 s segments are encoded one at a time and only their valid frames are kept, so
    memory is flat apart from the features themselves.
    """
    wave = torch.as_tensor(np.asarray(wave_16k, dtype=np.float32)).flatten()
    if wave.numel() < HOP_LENGTH:
        raise InputError("the audio is too short (under 10 ms)")
    param = next(encoder.parameters())
    mel = log_mel_spectrogram(wave.to(param.device), encoder.config.num_mel_bins)
    total = mel.shape[-1]
    parts = []
    for start in range(0, total, SEGMENT_MEL_FRAMES):
        segment = mel[:, start:start + SEGMENT_MEL_FRAMES]
        valid = segment.shape[-1] // 2  # official: int((end - start) / 2)
        segment = torch.nn.functional.pad(segment, (0, SEGMENT_MEL_FRAMES - segment.shape[-1]))
        levels = encode_levels(encoder, segment[None].to(param.dtype))
        parts.append(levels[:valid].float().cpu())
    log.debug("whisper: %.1f s of audio in %d segment(s)", wave.numel() / SAMPLE_RATE, len(parts))
    return torch.cat(parts, dim=0)


def official_frame_count(num_features: int, fps: float) -> int:
    """Video frames the official ``feature2chunks`` yields: up to the first frame whose
    centre lies past the end of the features, inclusive (about duration * fps + 2)."""
    step = FEATURES_PER_SECOND / fps
    i = 0
    while int(i * step) <= num_features:
        i += 1
    return i + 1


def window_indices(num_features: int, fps: float, num_frames: int) -> torch.Tensor:
    """(num_frames, 10) whisper-frame indices per video frame, clamped to the features."""
    # Official: int(i * 50 / fps) here, but i * (50 / fps) in official_frame_count (float rounding).
    centres = torch.tensor([int(i * FEATURES_PER_SECOND / fps) for i in range(num_frames)], dtype=torch.long)
    offsets = torch.arange(-WINDOW_BEFORE, WINDOW_AFTER, dtype=torch.long)
    return (centres[:, None] + offsets[None]).clamp(0, num_features - 1)


def frame_tokens(features: torch.Tensor, fps: float, num_frames: int) -> torch.Tensor:
    """(T50, levels, d) -> (num_frames, 10 * levels, d): per-frame audio tokens,
    ordered [t0 L0..L4, t1 L0..L4, ...] like the official reshape."""
    idx = window_indices(features.shape[0], fps, num_frames)
    windows = features[idx]  # (frames, 10, levels, d)
    return windows.reshape(num_frames, -1, features.shape[-1])
