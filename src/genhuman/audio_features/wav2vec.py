"""wav2vec2 features as Hallo and Hallo2 compute them (spec hallo.md §1.4 and §2.2).

Recipe (official ``AudioProcessor.preprocess`` + ``Wav2VecModel``, wav2vec2-base-960h):

1. 16 kHz mono -> ``Wav2Vec2FeatureExtractor``: zero mean, unit variance over the whole input.
2. ``seq_len = ceil(n / 16000 * 25)`` in floating point, as the official code writes it (so
   ``n = 640 * 7`` gives 8 frames, not 7). With a clip length the normalised samples are
   zero-padded by whole 640-sample frames up to a multiple of it; the unpadded count is kept.
3. The CNN feature encoder (50 Hz), then its features **linearly interpolated to seq_len
   (25 Hz, align_corners=True) before** the feature projection and the transformer encoder.
4. The outputs of all the encoder's layers (``hidden_states[1:]``) -> (T, 12, 768).
5. Per video frame, the 5 frames i-2..i+2 clamped at the ends -> (T, 5, 12, 768).

The network is transformers' ``Wav2Vec2Model``; we run its submodules in that order (the
interpolation sits between two of them). The layer outputs are taken with forward hooks on
the encoder layers, which is what ``hidden_states[1:]`` holds in transformers 4.39 (the
official version) and also in 5.x (tested), independent of how a version records them.

Long audio (:func:`segment_features`): Hallo2's ``inference_long.py`` cuts the audio into
60 s files and runs step 1-4 on each on its own, so the normalisation, the CNN's GroupNorm
statistics, the 25 Hz grid and the encoder's context all restart every 60 s; features jump
at the cuts. That is ``context_seconds=None`` here. With ``context_seconds`` given, the
normalisation, the GroupNorm statistics and the time grid are those of the whole audio
(computed in one chunked pass) and the encoder runs on each segment plus that much audio on
each side, dropped afterwards. Its self-attention is global, so the result equals the
whole-audio features exactly only when the context covers the whole audio; with a few
seconds it is close, and the jumps are gone. Either way memory is bounded by one segment
(plus context) whatever the audio's length, apart from the output.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

from genhuman.errors import InputError
from genhuman.media.audio import SAMPLE_RATE
from genhuman.media.audio_clip import AudioClip, Samples

log = logging.getLogger(__name__)

FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640: the official padding unit
WINDOW_RADIUS = 2  # frames i-2..i+2 (official process_audio_emb)
SEGMENT_SECONDS = 60.0  # Hallo2's cut_audio
NORM_EPS = 1e-7  # Wav2Vec2FeatureExtractor's zero_mean_unit_var_norm
CNN_CHUNK_FRAMES = 500  # 10 s of CNN frames at 50 Hz per convolution call in the long-audio path
POS_CONV = "encoder.pos_conv_embed.conv"
_PARAMETRIZED = (f"{POS_CONV}.parametrizations.weight.original0", f"{POS_CONV}.parametrizations.weight.original1")
_LEGACY = (f"{POS_CONV}.weight_g", f"{POS_CONV}.weight_v")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

Wave = Union[np.ndarray, torch.Tensor]
LongWave = Union[np.ndarray, torch.Tensor, AudioClip]  # an AudioClip is read span by span


# ---------------------------------------------------------------- loading


def load_wav2vec(folder: Union[str, Path], device: Union[str, torch.device] = "cpu") -> Wav2Vec2Model:
    """wav2vec2 from a Hugging Face folder (``config.json`` + ``model.safetensors`` or
    ``pytorch_model.bin``, e.g. ``pretrained_models/wav2vec/wav2vec2-base-960h/``), offline.
    A missing, damaged or mismatched folder is one InputError."""
    from genhuman.checkpoints.weights import check_model_size, read_json, read_state_dict

    folder = Path(folder)
    weights = next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)
    if not (folder / "config.json").is_file() or weights is None:
        raise InputError(f"wav2vec2 weights not found: {folder.name}/ needs config.json and "
                         f"{' or '.join(WEIGHT_FILES)}")
    data = read_json(folder / "config.json")
    what = f"{folder.name}/{weights.name}"
    check_model_size(data, what)
    try:
        config = Wav2Vec2Config.from_dict(data)
    except (TypeError, ValueError, KeyError, AttributeError):
        raise InputError(f"{folder.name}/config.json is not a wav2vec2 config") from None
    return build_wav2vec(config, read_state_dict(weights), what).to(device)


def build_wav2vec(config: Wav2Vec2Config, state_dict: Optional[dict[str, torch.Tensor]] = None,
                  what: str = "the wav2vec2 weights") -> Wav2Vec2Model:
    """The model in eval mode, random without ``state_dict``. A checkpoint of
    ``Wav2Vec2ForCTC`` (keys under ``wav2vec2.``, plus ``lm_head``) or of the bare model, with
    the positional conv's weight norm as ``weight_g/weight_v`` or as torch's parametrization,
    is loaded strictly, and the effective positional-conv weight is checked against the file."""
    from genhuman.models.pretrained import load_strict

    if config.do_stable_layer_norm:
        raise InputError(f"{what}: a wav2vec2 with do_stable_layer_norm (large/lv60) is not the "
                         "wav2vec2-base architecture Hallo uses")
    if state_dict is None:
        return Wav2Vec2Model(config).eval().requires_grad_(False)
    try:
        with torch.device("meta"):  # a config asking for a huge model costs nothing before the check
            model = Wav2Vec2Model(config)
    except (ValueError, TypeError, RuntimeError, IndexError):
        raise InputError(f"{what}: the config does not describe a wav2vec2 model") from None
    state = _model_keys(state_dict, set(model.state_dict()))
    gain, direction = state.get(_pos_conv_names(model)[0]), state.get(_pos_conv_names(model)[1])
    load_strict(model, state, what)
    model.eval().requires_grad_(False)
    assert gain is not None and direction is not None  # load_strict refused their absence
    check_pos_conv(model, gain, direction, what)
    return model


def _pos_conv_names(model: Wav2Vec2Model) -> tuple[str, str]:
    """The (g, v) names this torch gives the weight-normalised positional conv."""
    return _PARAMETRIZED if _PARAMETRIZED[0] in model.state_dict() else _LEGACY


def _model_keys(state_dict: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Checkpoint keys -> the bare model's: drop the CTC head and the ``wav2vec2.`` prefix,
    name the weight norm as this torch does, and supply ``masked_spec_embed`` (training
    only) when the file has none."""
    prefix = "wav2vec2."
    if any(key.startswith(prefix) for key in state_dict):
        state = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
    else:
        state = dict(state_dict)
    target = _PARAMETRIZED if _PARAMETRIZED[0] in expected else _LEGACY
    source = _LEGACY if target is _PARAMETRIZED else _PARAMETRIZED
    for old, new in zip(source, target):
        if old in state and new not in state:
            state[new] = state.pop(old)
    if "masked_spec_embed" in expected and "masked_spec_embed" not in state and "encoder.layer_norm.weight" in state:
        state["masked_spec_embed"] = torch.zeros_like(state["encoder.layer_norm.weight"])
    if "masked_spec_embed" not in expected:
        state.pop("masked_spec_embed", None)
    return state


def check_pos_conv(model: Wav2Vec2Model, gain: torch.Tensor, direction: torch.Tensor,
                   what: str = "the wav2vec2 weights") -> None:
    """The positional conv's effective weight must be ``g * v / ||v||`` (norm over all dims
    but the kernel dim 2) of the checkpoint's ``weight_g/weight_v``. transformers logs those
    two as "not initialized" with some torch versions (hallo#64); a model that silently kept
    random ones would still run, so this is checked rather than trusted."""
    v = direction.detach().double().cpu()
    expected = gain.detach().double().cpu() * v / v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()
    actual = model.get_submodule(POS_CONV).weight.detach().double().cpu()
    scale = max(float(expected.abs().max()), 1e-12)
    if actual.shape != expected.shape or float((actual - expected).abs().max()) > 1e-5 * scale:
        raise InputError(f"{what}: the positional convolution's weight is not weight_g * weight_v / "
                         "||weight_v|| from the file (its weight norm did not load)")


# ---------------------------------------------------------------- the official recipe


def official_frame_count(num_samples: int) -> int:
    """25 Hz frames for ``num_samples`` at 16 kHz, in floating point as the official code
    computes it (one more than the exact count for some multiples of 640 samples)."""
    return math.ceil(num_samples / SAMPLE_RATE * FPS)


def normalize(wave: Wave) -> np.ndarray:
    """``Wav2Vec2FeatureExtractor`` (wav2vec2-base-960h: do_normalize) on 16 kHz mono."""
    samples = _as_samples(wave)
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=False)
    return np.asarray(extractor(samples, sampling_rate=SAMPLE_RATE).input_values[0], dtype=np.float32)


def padded_frame_count(num_frames: int, clip_length: int, processed_frames: int = 0) -> int:
    """The official padding: when ``num_frames`` is not a multiple of ``clip_length``, add
    ``clip_length - (processed_frames + num_frames) % clip_length`` frames. Hallo2 passes the
    frames of the earlier 60 s segments as ``processed_frames`` (0 in Hallo) but tests only
    the last segment's own count, so a total that already lands on a multiple gains a whole
    clip, and a last segment whose own count is a multiple is not padded at all."""
    if clip_length <= 0 or num_frames % clip_length == 0:
        return num_frames
    return num_frames + clip_length - (processed_frames + num_frames) % clip_length


@torch.no_grad()
def encode(model: Wav2Vec2Model, input_values: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Normalised (and padded) samples (n,) -> (seq_len, layers, hidden) float32 on the CPU:
    CNN, interpolation to ``seq_len``, feature projection, encoder; every layer's output."""
    param = next(model.parameters())
    cnn = model.feature_extractor(input_values.to(param.device, param.dtype)[None])  # (1, C, N50)
    cnn = F.interpolate(cnn, size=seq_len, mode="linear", align_corners=True)
    return _encoder_levels(model, cnn.transpose(1, 2)).float().cpu()


def _encoder_levels(model: Wav2Vec2Model, cnn_features: torch.Tensor) -> torch.Tensor:
    """(1, T, C) CNN features -> (T, layers, hidden): feature projection, then the encoder,
    its layers' outputs captured by hooks (``hidden_states[1:]`` in transformers 4.39)."""
    hidden, _ = model.feature_projection(cnn_features)
    captured: list[torch.Tensor] = []

    def keep_output(_module, _inputs, output):
        captured.append(output[0] if isinstance(output, tuple) else output)

    handles = [layer.register_forward_hook(keep_output) for layer in model.encoder.layers]
    try:
        model.encoder(hidden)
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(captured, dim=2)[0]


def wav2vec_features(model: Wav2Vec2Model, wave: Wave, clip_length: int = 0) -> tuple[torch.Tensor, int]:
    """Hallo's ``preprocess(wav, clip_length)`` on 16 kHz mono: (T, layers, hidden) features,
    T padded to a multiple of ``clip_length`` (> 0), and the unpadded frame count."""
    samples = _as_samples(wave)
    _check_length(model, len(samples))
    return _official_features(model, samples, clip_length, processed_frames=0)


def _official_features(model: Wav2Vec2Model, samples: np.ndarray, clip_length: int,
                       processed_frames: int) -> tuple[torch.Tensor, int]:
    values = torch.from_numpy(normalize(samples))
    audio_length = official_frame_count(len(values))
    seq_len = padded_frame_count(audio_length, clip_length, processed_frames)
    # A tail too short for the CNN (the official code fails there) is padded up to its reach.
    total = max((seq_len - audio_length) * SAMPLES_PER_FRAME + len(values), _receptive_field(model.config))
    values = F.pad(values, (0, total - len(values)))
    return encode(model, values, seq_len), audio_length


# ---------------------------------------------------------------- 5-frame windows


def window_indices(num_frames: int, start: int = 0, stop: Optional[int] = None) -> torch.Tensor:
    """(stop - start, 5) frame indices i-2..i+2 for frames [start, stop), clamped to [0, num_frames)."""
    stop = num_frames if stop is None else stop
    centres = torch.arange(start, stop, dtype=torch.long)
    offsets = torch.arange(-WINDOW_RADIUS, WINDOW_RADIUS + 1, dtype=torch.long)
    return (centres[:, None] + offsets[None]).clamp(0, num_frames - 1)


def frame_windows(features: torch.Tensor, start: int = 0, stop: Optional[int] = None) -> torch.Tensor:
    """(T, layers, hidden) -> (stop - start, 5, layers, hidden) for frames [start, stop)
    (the whole audio by default; one clip at a time keeps memory at a clip's)."""
    return features[window_indices(features.shape[0], start, stop)]


def clip_windows(segments: Iterable[torch.Tensor], clip_length: int) -> Iterator[torch.Tensor]:
    """Windows clip by clip from features that arrive segment by segment (e.g. from
    :func:`segment_features`): (clip_length, 5, layers, hidden), the last clip possibly
    shorter. Windows straddle segment boundaries and clamp only at the audio's two ends,
    exactly as :func:`frame_windows` on the concatenation; only a segment and 2 frames of
    the previous one are held."""
    if clip_length <= 0:
        raise ValueError("clip_length must be positive")
    held: Optional[torch.Tensor] = None  # frames from absolute index `first` on
    first = 0  # absolute index of held[0]
    emitted = 0  # frames whose windows were yielded
    for segment in segments:
        held = segment if held is None else torch.cat([held, segment])
        while emitted + clip_length + WINDOW_RADIUS <= first + held.shape[0]:
            yield _windows_from(held, first, emitted, emitted + clip_length, total=None)
            emitted += clip_length
        keep = max(0, emitted - WINDOW_RADIUS - first)
        held, first = held[keep:], first + keep
    if held is None:
        return
    total = first + held.shape[0]
    while emitted < total:
        stop = min(total, emitted + clip_length)
        yield _windows_from(held, first, emitted, stop, total=total)
        emitted = stop


def _windows_from(held: torch.Tensor, first: int, start: int, stop: int, total: Optional[int]) -> torch.Tensor:
    """Windows of [start, stop) from ``held`` (frames first..), clamped at 0 and at ``total``."""
    idx = window_indices(total if total is not None else first + held.shape[0], start, stop)
    return held[idx - first]


# ---------------------------------------------------------------- long audio


def segment_features(model: Wav2Vec2Model, wave: LongWave, clip_length: int = 0,
                     segment_seconds: float = SEGMENT_SECONDS,
                     context_seconds: Optional[float] = None) -> Iterator[torch.Tensor]:
    """(frames, layers, hidden) per ``segment_seconds`` of audio, in order, computed when asked
    for; concatenated they are the audio's features, padded for ``clip_length`` (> 0).
    :func:`long_audio_frames` and :func:`long_audio_length` give the padded and unpadded counts;
    :func:`clip_windows` turns the segments into per-clip windows.

    ``context_seconds=None``: Hallo2's official ``use_cut`` (each segment is a file of its own:
    its own normalisation, frame count and encoder; only the last is padded, see
    :func:`padded_frame_count`). A number: the whole audio's normalisation, GroupNorm
    statistics and 25 Hz grid, the encoder on each segment plus ``context_seconds`` of audio
    each side (dropped from the output), and the total padded like the whole audio in Hallo.
    """
    samples = _readable(wave)
    _check_length(model, len(samples))
    if not segment_seconds > 0:
        raise ValueError("segment_seconds must be positive")
    if context_seconds is None:
        return _official_segments(model, samples, clip_length, segment_seconds)
    if not context_seconds >= 0:
        raise ValueError("context_seconds must be >= 0")
    return _context_segments(model, samples, clip_length, segment_seconds, context_seconds)


def long_audio_length(num_samples: int, segment_seconds: float = SEGMENT_SECONDS,
                      context_seconds: Optional[float] = None) -> int:
    """The unpadded frame count :func:`segment_features` covers (official: the sum of each
    segment's own count)."""
    if context_seconds is not None:
        return official_frame_count(num_samples)
    return sum(official_frame_count(stop - start) for start, stop in _cuts(num_samples, segment_seconds))


def long_audio_frames(num_samples: int, clip_length: int = 0, segment_seconds: float = SEGMENT_SECONDS,
                      context_seconds: Optional[float] = None) -> int:
    """The padded frame count :func:`segment_features` yields in all."""
    if context_seconds is not None:
        return padded_frame_count(official_frame_count(num_samples), clip_length)
    cuts = _cuts(num_samples, segment_seconds)
    earlier = sum(official_frame_count(stop - start) for start, stop in cuts[:-1])
    start, stop = cuts[-1]
    return earlier + padded_frame_count(official_frame_count(stop - start), clip_length, earlier)


def long_audio_features(model: Wav2Vec2Model, wave: Wave, clip_length: int = 0,
                        segment_seconds: float = SEGMENT_SECONDS,
                        context_seconds: Optional[float] = None) -> tuple[torch.Tensor, int]:
    """:func:`segment_features` written into one preallocated (T, layers, hidden) tensor, and
    the unpadded frame count."""
    samples = _as_samples(wave)
    total = long_audio_frames(len(samples), clip_length, segment_seconds, context_seconds)
    out = torch.empty(total, model.config.num_hidden_layers, model.config.hidden_size)
    at = 0
    for part in segment_features(model, samples, clip_length, segment_seconds, context_seconds):
        out[at:at + part.shape[0]] = part
        at += part.shape[0]
    assert at == total
    return out, long_audio_length(len(samples), segment_seconds, context_seconds)


def _cuts(num_samples: int, segment_seconds: float) -> list[tuple[int, int]]:
    """Hallo2's cut_audio: [start, stop) sample spans of ``segment_seconds``, the last shorter."""
    step = round(segment_seconds * SAMPLE_RATE)
    return [(start, min(num_samples, start + step)) for start in range(0, num_samples, step)]


def _official_segments(model: Wav2Vec2Model, samples: Samples, clip_length: int,
                       segment_seconds: float) -> Iterator[torch.Tensor]:
    cuts = _cuts(len(samples), segment_seconds)
    processed = 0
    for index, (start, stop) in enumerate(cuts):
        last = index == len(cuts) - 1
        features, length = _official_features(model, samples[start:stop], clip_length if last else 0,
                                              processed_frames=processed)
        processed += length
        yield features
    log.debug("wav2vec: %d segment(s) of %.0f s, no context (official)", len(cuts), segment_seconds)


def _context_segments(model: Wav2Vec2Model, samples: Samples, clip_length: int, segment_seconds: float,
                      context_seconds: float) -> Iterator[torch.Tensor]:
    audio_length = official_frame_count(len(samples))
    total_frames = padded_frame_count(audio_length, clip_length)
    padded = max(len(samples) + (total_frames - audio_length) * SAMPLES_PER_FRAME, _receptive_field(model.config))
    signal = _NormalisedSignal(samples, padded)
    cnn = _ChunkedCNN(model, signal)
    step = max(1, round(segment_seconds * FPS))
    context = round(context_seconds * FPS)
    for start in range(0, total_frames, step):
        stop = min(total_frames, start + step)
        first, last = max(0, start - context), min(total_frames, stop + context)
        inputs = cnn.interpolated(first, last, total_frames)
        with torch.no_grad():
            levels = _encoder_levels(model, inputs).float().cpu()
        yield levels[start - first:stop - first]
    log.debug("wav2vec: %d frames in %.0f s segments, %.1f s context", total_frames, segment_seconds,
              context_seconds)


class _NormalisedSignal:
    """The whole audio as the model sees it (normalised with the whole audio's mean and
    variance, then zero-padded to ``length``), read span by span."""

    def __init__(self, samples: Samples, length: int, chunk: int = 1 << 20):
        count, mean, m2 = 0, 0.0, 0.0
        for start in range(0, len(samples), chunk):  # Chan et al.'s pairwise update, in float64
            part = samples[start:start + chunk].astype(np.float64)
            n, part_mean = len(part), float(part.mean())
            delta = part_mean - mean
            m2 += float(((part - part_mean) ** 2).sum()) + delta * delta * count * n / (count + n)
            mean += delta * n / (count + n)
            count += n
        self.samples, self.length = samples, length
        self.mean, self.inv_std = mean, 1.0 / math.sqrt(m2 / count + NORM_EPS)

    def read(self, start: int, stop: int) -> torch.Tensor:
        real = self.samples[start:min(stop, len(self.samples))].astype(np.float64)
        values = torch.from_numpy(((real - self.mean) * self.inv_std).astype(np.float32))
        return F.pad(values, (0, stop - start - len(values)))


class _ChunkedCNN:
    """The CNN feature encoder over a long signal in bounded memory. Its first layer's
    GroupNorm normalises each channel over the WHOLE input (wav2vec2-base), so its statistics
    are gathered in a first chunked pass; with them fixed every CNN frame is a function of its
    400-sample receptive field only, and any span is computed chunk by chunk exactly."""

    def __init__(self, model: Wav2Vec2Model, signal: _NormalisedSignal):
        self.model, self.signal = model, signal
        self.param = next(model.parameters())
        self.stride, self.reach = _stride(model.config), _receptive_field(model.config)
        self.frames = _cnn_length(signal.length, model.config)
        norm = getattr(model.feature_extractor.conv_layers[0], "layer_norm", None)
        # The GroupNorm with the whole audio's statistics, as one per-channel scale and shift.
        self.affine: Optional[tuple[torch.Tensor, torch.Tensor]] = None
        if isinstance(norm, torch.nn.GroupNorm):
            mean, var = self._first_layer_stats()
            scale = norm.weight.double() * (var + norm.eps).rsqrt()
            shift = norm.bias.double() - mean * scale
            self.affine = scale.to(self.param.dtype)[:, None], shift.to(self.param.dtype)[:, None]

    @torch.no_grad()
    def _first_layer_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and (biased) variance of the first conv's output over the whole audio."""
        conv = self.model.feature_extractor.conv_layers[0].conv
        kernel, stride = conv.kernel_size[0], conv.stride[0]
        outputs = (self.signal.length - kernel) // stride + 1
        chunk = CNN_CHUNK_FRAMES * self.stride // stride
        count, mean, m2 = 0, None, None
        for start in range(0, outputs, chunk):
            stop = min(outputs, start + chunk)
            x = self.signal.read(start * stride, (stop - 1) * stride + kernel)
            h = conv(x.to(self.param.device, self.param.dtype)[None, None])[0].double()  # (C, frames)
            n, part_mean = h.shape[1], h.mean(dim=1)
            part_m2 = (h - part_mean[:, None]).pow(2).sum(dim=1)
            if mean is None or m2 is None:
                mean, m2 = part_mean, part_m2
            else:
                delta = part_mean - mean
                m2 = m2 + part_m2 + delta * delta * count * n / (count + n)
                mean = mean + delta * n / (count + n)
            count += n
        assert mean is not None and m2 is not None
        return mean, m2 / count

    @torch.no_grad()
    def frames_between(self, lo: int, hi: int) -> torch.Tensor:
        """CNN frames [lo, hi) -> (1, C, hi - lo)."""
        layers = self.model.feature_extractor.conv_layers
        parts = []
        for start in range(lo, hi, CNN_CHUNK_FRAMES):
            stop = min(hi, start + CNN_CHUNK_FRAMES)
            x = self.signal.read(start * self.stride, (stop - 1) * self.stride + self.reach)
            h = x.to(self.param.device, self.param.dtype)[None, None]
            if self.affine is None:  # "layer" feature norm: every layer is frame-local already
                h = layers[0](h)
            else:
                scale, shift = self.affine
                h = layers[0].activation(layers[0].conv(h) * scale + shift)
            for layer in layers[1:]:
                h = layer(h)
            parts.append(h)
        return torch.cat(parts, dim=2)

    def interpolated(self, first: int, last: int, total_frames: int) -> torch.Tensor:
        """25 Hz frames [first, last) of the whole audio's interpolation -> (1, last - first, C),
        with the arithmetic of ``F.interpolate(linear, align_corners=True)`` (float32)."""
        scale = torch.tensor(float(self.frames - 1), dtype=torch.float32) / max(total_frames - 1, 1)
        source = scale * torch.arange(first, last, dtype=torch.float32)
        below = source.long().clamp(max=self.frames - 1)
        weight = (source - below.float()).to(self.param.device, self.param.dtype)
        above = torch.where(below < self.frames - 1, below + 1, below)
        lo, hi = int(below[0]), int(above[-1]) + 1
        cnn = self.frames_between(lo, hi)[0]  # (C, hi - lo)
        mixed = (1 - weight) * cnn[:, below - lo] + weight * cnn[:, above - lo]
        return mixed.T[None]


# ---------------------------------------------------------------- helpers


def _readable(wave: LongWave) -> Samples:
    """An AudioClip as it is (segments and spans are read from it when needed: memory stays
    flat for hours of audio); anything else as one float32 array."""
    return wave if isinstance(wave, AudioClip) else _as_samples(wave)


def _as_samples(wave: Wave) -> np.ndarray:
    if isinstance(wave, torch.Tensor):
        wave = wave.detach().cpu().numpy()
    return np.asarray(wave, dtype=np.float32).reshape(-1)


def _stride(config: Wav2Vec2Config) -> int:
    return math.prod(config.conv_stride)


def _receptive_field(config: Wav2Vec2Config) -> int:
    reach = 1
    for kernel, stride in zip(reversed(config.conv_kernel), reversed(config.conv_stride)):
        reach = (reach - 1) * stride + kernel
    return reach


def _cnn_length(num_samples: int, config: Wav2Vec2Config) -> int:
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        num_samples = (num_samples - kernel) // stride + 1
    return num_samples


def _check_length(model: Wav2Vec2Model, num_samples: int) -> None:
    if num_samples < _receptive_field(model.config):
        raise InputError(f"the audio is too short for wav2vec2 (under "
                         f"{_receptive_field(model.config) * 1000 // SAMPLE_RATE} ms)")
