import math

import numpy as np
import pytest
import torch

from tests.numeric import assert_close, differs
import torch.nn.functional as F

from genhuman.audio_features.whisper import (
    build_whisper_encoder,
    convert_openai_whisper,
    official_frame_count,
    frame_tokens,
    log_mel_spectrogram,
    whisper_features,
    window_indices,
)
from genhuman.errors import InputError

DIMS = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 16, "n_audio_head": 2, "n_audio_layer": 2,
        "n_vocab": 10, "n_text_ctx": 4, "n_text_state": 16, "n_text_head": 2, "n_text_layer": 1}


def _sinusoids(length: int, channels: int) -> torch.Tensor:
    inc = math.log(10000) / (channels // 2 - 1)
    inv = torch.exp(-inc * torch.arange(channels // 2))
    t = torch.arange(length)[:, None] * inv[None]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


def _random_openai_checkpoint(seed: int = 0) -> dict:
    """A tiny random checkpoint with OpenAI whisper's key names (decoder included)."""
    g = torch.Generator().manual_seed(seed)
    d, m = DIMS["n_audio_state"], DIMS["n_mels"]

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.2

    sd = {"encoder.conv1.weight": r(d, m, 3), "encoder.conv1.bias": r(d),
          "encoder.conv2.weight": r(d, d, 3), "encoder.conv2.bias": r(d),
          "encoder.positional_embedding": _sinusoids(DIMS["n_audio_ctx"], d),
          "encoder.ln_post.weight": 1 + r(d), "encoder.ln_post.bias": r(d),
          "decoder.token_embedding.weight": r(10, d)}
    for i in range(DIMS["n_audio_layer"]):
        p = f"encoder.blocks.{i}."
        for name in ("query", "value", "out"):
            sd[p + f"attn.{name}.weight"], sd[p + f"attn.{name}.bias"] = r(d, d), r(d)
        sd[p + "attn.key.weight"] = r(d, d)  # OpenAI's key projection has no bias
        for ln in ("attn_ln", "mlp_ln"):
            sd[p + f"{ln}.weight"], sd[p + f"{ln}.bias"] = 1 + r(d), r(d)
        sd[p + "mlp.0.weight"], sd[p + "mlp.0.bias"] = r(4 * d, d), r(4 * d)
        sd[p + "mlp.2.weight"], sd[p + "mlp.2.bias"] = r(d, 4 * d), r(d)
    return {"dims": DIMS, "model_state_dict": sd}


def _reference_openai_encoder(sd: dict, mel: torch.Tensor) -> torch.Tensor:
    """Straightforward OpenAI AudioEncoder.forward(include_embeddings=True), no ln_post."""
    heads, d = DIMS["n_audio_head"], DIMS["n_audio_state"]
    x = F.gelu(F.conv1d(mel, sd["encoder.conv1.weight"], sd["encoder.conv1.bias"], padding=1))
    x = F.gelu(F.conv1d(x, sd["encoder.conv2.weight"], sd["encoder.conv2.bias"], stride=2, padding=1))
    x = x.permute(0, 2, 1) + sd["encoder.positional_embedding"]
    levels = [x]
    for i in range(DIMS["n_audio_layer"]):
        p = f"encoder.blocks.{i}."
        h = F.layer_norm(x, (d,), sd[p + "attn_ln.weight"], sd[p + "attn_ln.bias"])
        q = F.linear(h, sd[p + "attn.query.weight"], sd[p + "attn.query.bias"])
        k = F.linear(h, sd[p + "attn.key.weight"])
        v = F.linear(h, sd[p + "attn.value.weight"], sd[p + "attn.value.bias"])
        scale = (d // heads) ** -0.25
        q = q.view(1, -1, heads, d // heads).permute(0, 2, 1, 3) * scale
        k = k.view(1, -1, heads, d // heads).permute(0, 2, 3, 1) * scale
        v = v.view(1, -1, heads, d // heads).permute(0, 2, 1, 3)
        a = (torch.softmax(q @ k, dim=-1) @ v).permute(0, 2, 1, 3).flatten(2)
        x = x + F.linear(a, sd[p + "attn.out.weight"], sd[p + "attn.out.bias"])
        h = F.layer_norm(x, (d,), sd[p + "mlp_ln.weight"], sd[p + "mlp_ln.bias"])
        h = F.linear(F.gelu(F.linear(h, sd[p + "mlp.0.weight"], sd[p + "mlp.0.bias"])),
                     sd[p + "mlp.2.weight"], sd[p + "mlp.2.bias"])
        x = x + h
        levels.append(x)
    return torch.stack(levels, dim=2)[0]  # (1500, levels, d)


@pytest.fixture(scope="module")
def converted():
    ckpt = _random_openai_checkpoint()
    config, state = convert_openai_whisper(ckpt)
    return ckpt, build_whisper_encoder(config, state)


def test_convert_maps_every_encoder_key(converted):
    ckpt, encoder = converted
    _, state = convert_openai_whisper(ckpt)
    n_encoder_keys = sum(k.startswith("encoder.") for k in ckpt["model_state_dict"])
    assert len(state) == n_encoder_keys == len(encoder.state_dict())
    assert "layers.1.self_attn.k_proj.weight" in state and "layer_norm.bias" in state
    assert torch.equal(state["embed_positions.weight"], ckpt["model_state_dict"]["encoder.positional_embedding"])


def test_convert_rejects_other_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        convert_openai_whisper(tmp_path / "missing.pt")
    with pytest.raises(InputError, match="not an OpenAI whisper checkpoint"):
        convert_openai_whisper({"state_dict": {}})


def test_features_match_reference_openai_encoder(converted):
    ckpt, encoder = converted
    wave = torch.randn(16000 * 3, generator=torch.Generator().manual_seed(1)).numpy() * 0.1
    features = whisper_features(encoder, wave)
    assert features.shape == (150, 1 + DIMS["n_audio_layer"], DIMS["n_audio_state"])
    mel = log_mel_spectrogram(torch.from_numpy(wave))
    mel = F.pad(mel, (0, 3000 - mel.shape[-1]))[None]
    expected = _reference_openai_encoder(ckpt["model_state_dict"], mel)[:150]
    assert_close(features, expected)
    # The last level is the raw block output, not the final LayerNorm's output.
    assert differs(features[:, -1], encoder.layer_norm(features[:, -1]))


def test_long_audio_is_encoded_in_30s_segments(converted):
    _, encoder = converted
    wave = np.random.default_rng(0).standard_normal(16000 * 31).astype(np.float32) * 0.1
    features = whisper_features(encoder, wave)
    assert features.shape[0] == 1500 + 50  # 31 s at 50 Hz


def test_log_mel_normalisation_and_filterbank():
    t = torch.arange(16000) / 16000
    mel = log_mel_spectrogram(torch.sin(2 * math.pi * 1000 * t))
    assert mel.shape == (80, 100)
    # floor at global max - 8 in log10 units, then (x + 4) / 4
    assert mel.max() - mel.min() <= 2.0 + 1e-6
    # Slaney mel: 1 kHz = 15 mel, 8 kHz = 15 + 27 ln(8) / ln(6.4) mel; 82 evenly spaced
    # points; filter k peaks at point k + 1, so a 1 kHz tone peaks in filter round(15 / step) - 1.
    step = (15 + 27 * math.log(8) / math.log(6.4)) / 81
    assert int(mel.mean(dim=1).argmax()) == round(15 / step) - 1


def test_window_indices_hand_computed():
    # fps 25 -> centre = 2 * i; window [c - 4, c + 6) clamped to [0, 19]
    idx = window_indices(num_features=20, fps=25, num_frames=10)
    assert idx[0].tolist() == [0, 0, 0, 0, 0, 1, 2, 3, 4, 5]
    assert idx[3].tolist() == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert idx[9].tolist() == [14, 15, 16, 17, 18, 19, 19, 19, 19, 19]
    # fps 24 -> centre = int(i * 50 / 24): frame 12 -> 25
    assert window_indices(100, 24, 13)[12].tolist() == list(range(21, 31))


def test_frame_count_matches_official_loop():
    assert official_frame_count(num_features=350, fps=24) == 170  # 7 s: 168 frames + 2
    assert official_frame_count(num_features=20, fps=25) == 12  # centres 0, 2, .., 22 > 20 stops after 11


def test_frame_tokens_order_is_time_major_layer_minor():
    t50, levels, d = 12, 5, 3
    features = torch.arange(t50 * levels * d, dtype=torch.float32).reshape(t50, levels, d)
    tokens = frame_tokens(features, fps=25, num_frames=4)
    assert tokens.shape == (4, 50, d)
    # frame 2: centre 4 -> whisper frames 0..9; token 7 = time 1, level 2
    assert torch.equal(tokens[2, 7], features[1, 2])
    assert torch.equal(tokens[2, 49], features[9, 4])
    assert torch.equal(tokens[0, 0], features[0, 0])  # clamped at the start


def test_last_segment_is_zero_padded_log_mel_and_keeps_half_its_mel_frames(converted):
    ckpt, encoder = converted
    rng = np.random.default_rng(3)
    wave = rng.standard_normal(160 * 3003).astype(np.float32) * 0.1  # 3003 mel frames
    features = whisper_features(encoder, wave)
    assert features.shape[0] == 1500 + 1  # int(3 / 2) frames from the 3-frame tail segment
    # Normalised over the whole file, then cut into 30 s segments padded with zeros.
    mel = log_mel_spectrogram(torch.from_numpy(wave))
    head = _reference_openai_encoder(ckpt["model_state_dict"], mel[None, :, :3000])
    tail = _reference_openai_encoder(ckpt["model_state_dict"], F.pad(mel[:, 3000:], (0, 2997))[None])
    assert_close(features, torch.cat([head, tail[:1]]))
    # A single trailing mel frame contributes no feature (int(1 / 2) == 0).
    assert whisper_features(encoder, wave[:160 * 3001]).shape[0] == 1500
