"""wav2vec2 features the Hallo way, on a tiny random Wav2Vec2Config built in-process."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import Wav2Vec2Config

import genhuman.models.pretrained as pretrained
from genhuman.audio_features import wav2vec as w2v
from genhuman.errors import InputError
from tests.numeric import assert_close, differs

LEGACY_G, LEGACY_V = "encoder.pos_conv_embed.conv.weight_g", "encoder.pos_conv_embed.conv.weight_v"


def _config(feat_extract_norm: str = "group") -> Wav2Vec2Config:
    # Total CNN stride 320 (50 Hz) like wav2vec2-base, with 3 small layers.
    return Wav2Vec2Config(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
                          conv_dim=(16, 16, 16), conv_kernel=(10, 8, 4), conv_stride=(5, 8, 8),
                          num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                          feat_extract_norm=feat_extract_norm)


def _tiny_model(feat_extract_norm: str = "group", seed: int = 0):
    """Random weights; the norms' affine parameters too (at 1 and 0 a LayerNorm applied
    twice looks like one, and a test could not tell)."""
    torch.manual_seed(seed)
    model = w2v.build_wav2vec(_config(feat_extract_norm))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.LayerNorm, torch.nn.GroupNorm)):
                module.weight.add_(0.3 * torch.randn_like(module.weight))
                module.bias.add_(0.2 * torch.randn_like(module.bias))
    return model


@pytest.fixture(scope="module")
def model():
    return _tiny_model()


def _speech(seconds: float, seed: int = 0) -> np.ndarray:
    """A tone with a slow envelope and growing noise: its statistics change over time, so
    per-segment normalisation visibly differs from the whole file's."""
    t = np.arange(round(seconds * 16000)) / 16000
    noise = np.random.default_rng(seed).standard_normal(len(t))
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.7 * t))
            + 0.05 * (1 + t) * noise).astype(np.float32)


def _legacy_checkpoint(model, prefix: str = "wav2vec2.") -> dict:
    """The model's weights as the released wav2vec2-base-960h file names them: Wav2Vec2ForCTC
    keys under ``wav2vec2.``, an ``lm_head``, and the weight norm as weight_g/weight_v."""
    state = {}
    for key, value in model.state_dict().items():
        key = key.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v")
        state[prefix + key] = value.clone()
    state["lm_head.weight"], state["lm_head.bias"] = torch.randn(32, 32), torch.zeros(32)
    return state


def _folder(tmp_path, model, weights: str = "model.safetensors"):
    folder = tmp_path / "wav2vec2-base-960h"
    folder.mkdir()
    model.config.to_json_file(folder / "config.json")
    state = _legacy_checkpoint(model)
    if weights.endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in state.items()}, str(folder / weights))
    else:
        torch.save(state, folder / weights)
    return folder


# ---------------------------------------------------------------- frame counts and padding


def test_frame_count_is_the_official_float_formula():
    assert w2v.official_frame_count(16000) == 25
    assert w2v.official_frame_count(960000) == 1500  # one 60 s segment
    assert w2v.official_frame_count(641) == 2
    assert w2v.official_frame_count(640 * 5) == 5
    assert w2v.official_frame_count(640 * 7) == 8  # 4480 / 16000 * 25 = 7.000000000000001


def test_padded_frame_count_follows_hallo_and_hallo2():
    assert w2v.padded_frame_count(25, 16) == 32
    assert w2v.padded_frame_count(32, 16) == 32
    assert w2v.padded_frame_count(25, 0) == 25
    # Hallo2's last 60 s segment: padded so that the TOTAL is a multiple of 16 ...
    assert w2v.padded_frame_count(250, 16, processed_frames=1500) == 260
    # ... but tested on its own count: a multiple stays unpadded, and a total already on a
    # multiple gains a whole clip.
    assert w2v.padded_frame_count(256, 16, processed_frames=1500) == 256
    assert w2v.padded_frame_count(20, 16, processed_frames=12) == 36


# ---------------------------------------------------------------- the official recipe


def test_shapes_and_unpadded_length(model):
    features, length = w2v.wav2vec_features(model, _speech(1.0))
    assert features.shape == (25, 3, 32) and length == 25 and features.dtype == torch.float32
    padded, length = w2v.wav2vec_features(model, _speech(1.0), clip_length=16)
    assert padded.shape == (32, 3, 32) and length == 25


def test_normalisation_is_the_feature_extractors():
    wave = _speech(0.5) * 3 + 0.2
    values = w2v.normalize(wave)
    expected = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6)
    assert abs(values.mean()) < 1e-5 and abs(values.std() - 1) < 1e-4


def test_interpolation_runs_before_the_projection_and_encoder(model):
    wave = _speech(1.3)
    features, _ = w2v.wav2vec_features(model, wave)
    # By hand, through the model's submodules: CNN at 50 Hz -> 25 Hz -> projection -> encoder.
    values = torch.from_numpy((wave - wave.mean()) / np.sqrt(wave.var() + 1e-7))[None]
    with torch.no_grad():
        cnn = model.feature_extractor(values)  # (1, C, N50)
        seq_len = w2v.official_frame_count(len(wave))
        assert cnn.shape[-1] == 2 * seq_len - 1 != seq_len  # 64 CNN frames for 33 video frames
        x = F.interpolate(cnn, size=seq_len, mode="linear", align_corners=True).transpose(1, 2)
        h = model.feature_projection.projection(model.feature_projection.layer_norm(x))
        h = model.encoder.layer_norm(h + model.encoder.pos_conv_embed(h))
        levels = []
        for layer in model.encoder.layers:
            out = layer(h)
            h = out[0] if isinstance(out, tuple) else out
            levels.append(h[0])
        expected = torch.stack(levels, dim=1)
        # The usual order (the encoder at 50 Hz, its layers interpolated afterwards) differs.
        at_50hz = torch.stack(model(values, output_hidden_states=True).hidden_states[1:], dim=2)[0]
        after = F.interpolate(at_50hz.flatten(1).T[None], size=seq_len, mode="linear", align_corners=True)
    assert features.shape == expected.shape == (seq_len, 3, 32)
    assert_close(features, expected)
    assert differs(after[0].T.reshape(seq_len, 3, 32), expected)


def test_layer_outputs_are_hidden_states_1_on(model):
    """transformers 5.x records hidden states with hooks (for Whisper it swaps the last for a
    post-LayerNorm one): with seq_len = the CNN length the interpolation is the identity, and
    the features must be hidden_states[1:] entry by entry."""
    values = torch.from_numpy(w2v.normalize(_speech(0.8)))
    with torch.no_grad():
        frames = model.feature_extractor(values[None]).shape[-1]
        hidden = model(values[None], output_hidden_states=True).hidden_states
    features = w2v.encode(model, values, seq_len=frames)
    assert len(hidden) == 1 + 3
    for level in range(3):
        assert_close(features[:, level], hidden[level + 1][0])
    assert differs(features[:, 0], hidden[0][0])


def test_padding_appends_zero_frames_after_normalising(model):
    wave = _speech(1.0)
    padded, length = w2v.wav2vec_features(model, wave, clip_length=16)
    values = torch.from_numpy(w2v.normalize(wave))
    expected = w2v.encode(model, F.pad(values, (0, 7 * 640)), seq_len=32)
    assert length == 25
    assert_close(padded, expected)
    unpadded, _ = w2v.wav2vec_features(model, wave)
    assert differs(padded[:25], unpadded)  # the encoder attends to the padding, as officially


def test_too_short_audio_is_one_input_error(model):
    with pytest.raises(InputError, match="too short for wav2vec2"):
        w2v.wav2vec_features(model, np.zeros(100, dtype=np.float32))


# ---------------------------------------------------------------- windows


def test_windows_clamp_at_both_ends():
    assert w2v.window_indices(4).tolist() == [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 3], [1, 2, 3, 3, 3]]
    assert w2v.window_indices(1).tolist() == [[0, 0, 0, 0, 0]]
    assert w2v.window_indices(10, 4, 6).tolist() == [[2, 3, 4, 5, 6], [3, 4, 5, 6, 7]]
    features = torch.arange(6.0)[:, None, None].expand(6, 2, 3)
    windows = w2v.frame_windows(features)
    assert windows.shape == (6, 5, 2, 3)
    assert windows[:, :, 0, 0].tolist() == [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 4],
                                             [1, 2, 3, 4, 5], [2, 3, 4, 5, 5], [3, 4, 5, 5, 5]]


@pytest.mark.parametrize("sizes", [[40], [1, 3, 17, 2, 9], [16, 16, 8], [2, 2, 2, 2, 2, 1]])
def test_clip_windows_across_segments_equal_the_whole(sizes):
    features = torch.randn(sum(sizes), 2, 3)
    segments = list(torch.split(features, sizes))
    clips = list(w2v.clip_windows(iter(segments), clip_length=8))
    expected = w2v.frame_windows(features)
    assert [c.shape[0] for c in clips] == [c.shape[0] for c in torch.split(expected, 8)]
    assert torch.equal(torch.cat(clips), expected)


# ---------------------------------------------------------------- loading and the weight norm


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_loads_a_ctc_checkpoint_with_weight_g_and_v(tmp_path, model, weights):
    folder = _folder(tmp_path, model, weights)
    loaded = w2v.load_wav2vec(folder)
    conv = loaded.encoder.pos_conv_embed.conv
    state = _legacy_checkpoint(model)
    g, v = state["wav2vec2." + LEGACY_G], state["wav2vec2." + LEGACY_V]
    assert g.shape == (1, 1, 16)
    expected = g * v / v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()
    assert_close(conv.weight, expected)
    wave = _speech(0.6)
    assert_close(w2v.wav2vec_features(loaded, wave)[0], w2v.wav2vec_features(model, wave)[0])
    assert not loaded.training


def test_a_positional_conv_that_did_not_load_is_refused(monkeypatch, model):
    state = _legacy_checkpoint(model)
    g, v = state["wav2vec2." + LEGACY_G], state["wav2vec2." + LEGACY_V]
    with pytest.raises(InputError, match="positional convolution's weight"):
        w2v.check_pos_conv(model, g * 1.5, v)
    w2v.check_pos_conv(model, g, v)

    # A load that keeps a default gain instead of the file's (what hallo#64's warning means).
    real_load = pretrained.load_strict

    def load_ignoring_g(module, loaded, what):
        loaded = dict(loaded)
        key = next(k for k in loaded if k.endswith("original0") or k.endswith("weight_g"))
        loaded[key] = torch.ones_like(loaded[key])
        real_load(module, loaded, what)

    monkeypatch.setattr(pretrained, "load_strict", load_ignoring_g)
    with pytest.raises(InputError, match="weight norm did not load"):
        w2v.build_wav2vec(model.config, state)


def test_missing_or_damaged_folder_is_one_line(tmp_path, model):
    with pytest.raises(InputError, match=r"wav2vec2 weights not found: nowhere/ needs config.json and "
                                         r"model.safetensors or pytorch_model.bin"):
        w2v.load_wav2vec(tmp_path / "nowhere")
    folder = _folder(tmp_path, model)
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="cannot read weights wav2vec2-base-960h/model.safetensors") as err:
        w2v.load_wav2vec(folder)
    assert "\n" not in str(err.value)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="config.json is not valid JSON"):
        w2v.load_wav2vec(folder)


def test_weights_of_another_model_are_refused(tmp_path, model):
    folder = _folder(tmp_path, model)
    state = _legacy_checkpoint(model)
    state["wav2vec2.encoder.layer_norm.weight"] = torch.ones(48)
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(InputError, match="does not match the model: 1 wrong shape"):
        w2v.load_wav2vec(folder)


# ---------------------------------------------------------------- long audio


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per frame, the largest difference over the largest magnitude of ``b``."""
    return (a - b).abs().amax(dim=(1, 2)) / b.abs().max()


def test_official_segments_are_each_a_file_of_its_own(model):
    wave = _speech(7.3)
    parts = list(w2v.segment_features(model, wave, clip_length=16, segment_seconds=3.0))
    assert [p.shape[0] for p in parts] == [75, 75, 42]  # 150 + 33 = 183; 183 % 16 = 7 -> +9
    for index, start in enumerate((0, 48000)):
        assert_close(parts[index], w2v.wav2vec_features(model, wave[start:start + 48000])[0])
    tail = w2v.normalize(wave[96000:])
    assert_close(parts[2], w2v.encode(model, F.pad(torch.from_numpy(tail), (0, 9 * 640)), 42))
    assert w2v.long_audio_length(len(wave), 3.0) == 183
    assert w2v.long_audio_frames(len(wave), 16, 3.0) == 192


def test_context_covering_the_audio_equals_the_whole_audio(model):
    wave = _speech(7.3)
    whole, length = w2v.wav2vec_features(model, wave, clip_length=16)
    ours, ours_length = w2v.long_audio_features(model, wave, 16, segment_seconds=2.0, context_seconds=10.0)
    assert ours.shape == whole.shape == (192, 3, 32) and ours_length == length == 183
    assert_close(ours, whole)


def test_context_removes_the_jumps_at_cuts(model):
    wave = _speech(9.0)
    whole, _ = w2v.wav2vec_features(model, wave)
    cuts = (75, 150)
    official, _ = w2v.long_audio_features(model, wave, segment_seconds=3.0)
    no_context, _ = w2v.long_audio_features(model, wave, segment_seconds=3.0, context_seconds=0.0)
    ours, _ = w2v.long_audio_features(model, wave, segment_seconds=3.0, context_seconds=1.0)
    near = torch.cat([torch.arange(c - 3, c + 3) for c in cuts])
    away = torch.cat([torch.arange(10, 65), torch.arange(85, 140), torch.arange(160, 215)])
    assert ours.shape == official.shape == whole.shape == (225, 3, 32)
    assert _relative_error(official, whole)[near].max() > 0.1  # each 60 s file on its own
    assert _relative_error(no_context, whole)[near].max() > 0.05  # the encoder's edges
    # Global attention: not exact with 1 s, but within 1% everywhere, cuts included.
    assert _relative_error(ours, whole)[near].max() < 1e-2
    assert _relative_error(ours, whole)[away].max() < 1e-2
    assert _relative_error(no_context, whole)[away].max() < 2e-2  # the normalisation is global


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_cnn_chunks_and_grid_are_exact(monkeypatch, norm):
    """With the whole audio's GroupNorm statistics, the CNN computed in small chunks (here 7
    frames) and interpolated on the whole audio's grid gives the whole-audio inputs of the
    encoder exactly, for either feature norm."""
    model = _tiny_model(norm, seed=1)
    monkeypatch.setattr(w2v, "CNN_CHUNK_FRAMES", 7)
    wave = _speech(2.1)
    whole, _ = w2v.wav2vec_features(model, wave, clip_length=16)
    ours, _ = w2v.long_audio_features(model, wave, 16, segment_seconds=0.5, context_seconds=5.0)
    assert_close(ours, whole)


def test_long_audio_memory_is_bounded_by_a_segment(model):
    """The encoder never sees more than a segment plus its context, and the CNN never more
    than a chunk, however long the audio."""
    encoder_frames, cnn_samples = [], []
    hooks = [model.encoder.register_forward_pre_hook(lambda m, args: encoder_frames.append(args[0].shape[1])),
             model.feature_extractor.conv_layers[0].conv.register_forward_pre_hook(
                 lambda m, args: cnn_samples.append(args[0].shape[-1]))]
    try:
        parts = w2v.segment_features(model, _speech(20.0), 16, segment_seconds=2.0, context_seconds=0.5)
        assert not encoder_frames  # a generator: nothing runs before the first segment is asked for
        sizes = [p.shape[0] for p in parts]
    finally:
        for hook in hooks:
            hook.remove()
    assert sum(sizes) == 512 and sizes[:-1] == [50] * 10
    assert max(encoder_frames) == 50 + 2 * 12
    assert max(cnn_samples) <= w2v.CNN_CHUNK_FRAMES * 320 + 165


def test_bad_long_audio_arguments(model):
    with pytest.raises(ValueError, match="context_seconds"):
        w2v.segment_features(model, _speech(1.0), context_seconds=-1.0)
    with pytest.raises(ValueError, match="segment_seconds"):
        w2v.segment_features(model, _speech(1.0), segment_seconds=0)
    with pytest.raises(InputError, match="too short"):
        w2v.segment_features(model, np.zeros(10, dtype=np.float32), context_seconds=1.0)
