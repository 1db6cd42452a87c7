"""Public testing helper: a tiny RANDOM EchoMimic checkpoint in the OFFICIAL layout.

Shipped in the package on purpose (not a test-only file): the test suite, the benchmarks
and anyone checking an install of the diffusion engines without the real weights use it,
e.g. ``save_tiny_official_checkpoint(tmp, "audio")`` then
``genhuman animate ... --engine echomimic --weights tmp``, or ``save_tiny_hallo_folder(tmp)``
then ``--engine hallo --weights tmp``. It needs the ``[diffusion]`` extra (torch). The API
(``save_tiny_official_checkpoint``, ``save_tiny_hallo_folder``, ``tiny_hallo_config``,
``tiny_wav2vec_config``, ``tiny_whisper_state``, ``tiny_vae``, ``WHISPER_DIMS``) is kept
stable like the rest of ``genhuman.checkpoints``.

Same file names and formats as the real weights (``.pth`` state dicts, a diffusers VAE
folder, OpenAI-format whisper ``.pt``, sd-image-variations' unet/config.json carrying the
tiny geometry), at a size that runs in seconds on a CPU. The outputs are noise, of course.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from genhuman.checkpoints.layout import (FACE_DETECTOR, FACE_RECOGNIZER, HALLO_UNET_CONFIG, UNET_CONFIG, VAE_DIR,
                                         WAV2VEC_DIR, get_hallo_family, get_variant)

WHISPER_DIMS = dict(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=4,
                    n_vocab=16, n_text_ctx=8, n_text_state=64, n_text_head=2, n_text_layer=0)


def _sinusoids(length: int, channels: int) -> torch.Tensor:
    """OpenAI whisper's fixed encoder position table."""
    increment = math.log(10000) / (channels // 2 - 1)
    inv = torch.exp(-increment * torch.arange(channels // 2))
    scaled = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1)


def tiny_whisper_state(dims: dict[str, int] = WHISPER_DIMS, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random OpenAI-format whisper state dict (encoder, plus the decoder's embeddings)."""
    g = torch.Generator().manual_seed(seed)
    n, mels = dims["n_audio_state"], dims["n_mels"]

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * (1.0 / math.sqrt(shape[-1]))

    state = {"encoder.conv1.weight": rnd(n, mels, 3), "encoder.conv1.bias": torch.zeros(n),
             "encoder.conv2.weight": rnd(n, n, 3), "encoder.conv2.bias": torch.zeros(n),
             "encoder.positional_embedding": _sinusoids(dims["n_audio_ctx"], n)}
    for i in range(dims["n_audio_layer"]):
        p = f"encoder.blocks.{i}."
        for proj in ("query", "key", "value", "out"):
            state[p + f"attn.{proj}.weight"] = rnd(n, n)
            if proj != "key":  # whisper's key projection has no bias
                state[p + f"attn.{proj}.bias"] = torch.zeros(n)
        state.update({p + "mlp.0.weight": rnd(4 * n, n), p + "mlp.0.bias": torch.zeros(4 * n),
                      p + "mlp.2.weight": rnd(n, 4 * n), p + "mlp.2.bias": torch.zeros(n)})
        for ln in ("attn_ln", "mlp_ln"):
            state.update({p + f"{ln}.weight": torch.ones(n), p + f"{ln}.bias": torch.zeros(n)})
    state.update({"encoder.ln_post.weight": torch.ones(n), "encoder.ln_post.bias": torch.zeros(n),
                  "decoder.token_embedding.weight": rnd(dims["n_vocab"], dims["n_text_state"]),
                  "decoder.positional_embedding": rnd(dims["n_text_ctx"], dims["n_text_state"]),
                  "decoder.ln.weight": torch.ones(dims["n_text_state"]),
                  "decoder.ln.bias": torch.zeros(dims["n_text_state"])})
    return state


def tiny_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=1, norm_num_groups=4, sample_size=64)


def _shared_storage(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Views into one flat buffer, as V2's pose_encoder.pth stores its tensors."""
    flat = torch.cat([t.reshape(-1) for t in state.values()] + [torch.zeros(1000)])
    out, offset = {}, 0
    for name, tensor in state.items():
        out[name] = flat[offset: offset + tensor.numel()].view(tensor.shape)
        offset += tensor.numel()
    return out


def save_tiny_official_checkpoint(directory: str | Path, variant: str = "audio", seed: int = 0) -> Path:
    """Write a tiny random checkpoint of ``variant`` in the official layout; returns ``directory``."""
    from genhuman.models import (ConditionEncoder, ConditionEncoderConfig, EchoUNet3D, ReferenceUNet2D,
                                 UNet3DConfig, UNetConfig)  # diffusers: only for the networks

    chosen = get_variant(variant)
    directory = Path(directory)
    torch.manual_seed(seed)
    unet_config = UNetConfig.tiny()
    reference = ReferenceUNet2D(unet_config)
    denoiser = EchoUNet3D(UNet3DConfig.tiny(cross_attention_dim=WHISPER_DIMS["n_audio_state"]))
    condition = ConditionEncoder(ConditionEncoderConfig.tiny(conditioning_channels=chosen.condition_channels))
    directory.mkdir(parents=True, exist_ok=True)
    state = denoiser.state_dict()
    torch.save(reference.state_dict(), directory / chosen.reference_unet)
    torch.save({k: v for k, v in state.items() if ".motion_modules." not in k}, directory / chosen.denoising_unet)
    torch.save({k: v for k, v in state.items() if ".motion_modules." in k}, directory / chosen.motion_module)
    condition_state = condition.state_dict()
    if chosen.family == "echomimic_v2":
        condition_state = _shared_storage(condition_state)
    torch.save(condition_state, directory / chosen.condition_encoder)
    config_path = directory / UNET_CONFIG
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(unet_config.to_diffusers_config(), indent=2) + "\n")
    tiny_vae().save_pretrained(directory / VAE_DIR)
    whisper_name = "audio_processor/tiny.pt" if chosen.family == "echomimic_v2" else "audio_processor/whisper_tiny.pt"
    (directory / whisper_name).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": WHISPER_DIMS, "model_state_dict": tiny_whisper_state(seed=seed)}, directory / whisper_name)
    return directory


# ---------------------------------------------------------------- Hallo / Hallo2

# wav2vec2-base's CNN strides (320 samples, 50 Hz) in 3 small layers; 3 encoder layers of width 32.
WAV2VEC_TINY: dict[str, Any] = dict(
    hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16, 16),
    conv_kernel=(10, 8, 4), conv_stride=(5, 8, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    feat_extract_norm="group", vocab_size=32, architectures=["Wav2Vec2ForCTC"])
_PREPROCESSOR = {"do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
                 "padding_side": "right", "padding_value": 0.0, "return_attention_mask": False,
                 "sampling_rate": 16000}


def tiny_wav2vec_config():
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(**WAV2VEC_TINY)


def tiny_hallo_config():
    """``HalloConfig.tiny()`` whose audio projection takes the tiny wav2vec2's windows
    (5 frames x 3 layers x 32) instead of wav2vec2-base's (5 x 12 x 768)."""
    from genhuman.models.hallo import AudioProjConfig, HalloConfig

    config = HalloConfig.tiny()
    config.audioproj = AudioProjConfig(blocks=WAV2VEC_TINY["num_hidden_layers"], channels=WAV2VEC_TINY["hidden_size"],
                                       intermediate_dim=config.audioproj.intermediate_dim,
                                       output_dim=config.audioproj.output_dim)
    return config


def _official_wav2vec_state(model, vocab_size: int) -> dict[str, torch.Tensor]:
    """As the released wav2vec2-base-960h names its keys: ``Wav2Vec2ForCTC`` (``wav2vec2.`` and
    an ``lm_head``), the positional conv's weight norm as ``weight_g``/``weight_v``."""
    state = {}
    for key, value in model.state_dict().items():
        key = key.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v")
        state["wav2vec2." + key] = value
    hidden = model.config.hidden_size
    state["lm_head.weight"] = torch.randn(vocab_size, hidden) / math.sqrt(hidden)
    state["lm_head.bias"] = torch.zeros(vocab_size)
    return state


def save_tiny_wav2vec(directory: str | Path, seed: int = 0) -> Path:
    """A random tiny wav2vec2 Hugging Face folder in the official file format; returns ``directory``."""
    from transformers import Wav2Vec2Model

    from genhuman.models.pretrained import WEIGHTS_NAME, save_state_dict

    directory = Path(directory)
    torch.manual_seed(seed)
    config = tiny_wav2vec_config()
    model = Wav2Vec2Model(config)
    directory.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(directory)
    (directory / "preprocessor_config.json").write_text(json.dumps(_PREPROCESSOR, indent=2) + "\n")
    save_state_dict(_official_wav2vec_state(model, config.vocab_size), directory / WEIGHTS_NAME)
    return directory


def save_tiny_hallo_folder(directory: str | Path, family: str = "hallo", seed: int = 0) -> Path:
    """A tiny RANDOM Hallo (or Hallo2) weights folder in the official ``pretrained_models/``
    layout; returns ``directory``.

    ``{hallo,hallo2}/net.pth`` (:func:`tiny_hallo_config`), ``stable-diffusion-v1-5/unet/config.json``
    (its geometry), ``sd-vae-ft-mse/``, ``wav2vec/wav2vec2-base-960h/`` (config.json,
    preprocessor_config.json, model.safetensors) and ``face_analysis/models/`` with tiny
    SCRFD- and ArcFace-shaped ONNX files (:mod:`genhuman.checkpoints.tiny_onnx`). For Hallo2
    also the upscaler's ``hallo2/net_g.pth`` and ``realesrgan/RealESRGAN_x2plus.pth`` (tiny), so
    ``genhuman upscale`` runs on it too. No vocal separator (it is optional).
    """
    from genhuman.checkpoints.hallo import save_tiny_hallo_net
    from genhuman.checkpoints.tiny_onnx import save_tiny_face_analysis

    chosen = get_hallo_family(family)
    directory = Path(directory)
    config = tiny_hallo_config()
    save_tiny_hallo_net(directory / chosen.net, seed=seed, config=config)
    unet_config = directory / HALLO_UNET_CONFIG
    unet_config.parent.mkdir(parents=True, exist_ok=True)
    unet_config.write_text(json.dumps(config.reference_unet.to_diffusers_config(), indent=2) + "\n")
    tiny_vae().save_pretrained(directory / VAE_DIR)
    save_tiny_wav2vec(directory / WAV2VEC_DIR, seed)
    save_tiny_face_analysis(directory, FACE_DETECTOR, FACE_RECOGNIZER, seed)
    if chosen.name == "hallo2":
        from genhuman.checkpoints.face_sr import NET_G_FILE, save_tiny_face_sr
        from genhuman.checkpoints.realesrgan import REALESRGAN_FILE, save_tiny_realesrgan

        save_tiny_face_sr(directory / NET_G_FILE, seed=seed)
        save_tiny_realesrgan(directory / REALESRGAN_FILE, seed=seed)
    return directory
