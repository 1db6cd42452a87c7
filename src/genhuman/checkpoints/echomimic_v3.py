"""EchoMimicV3 / V3-Flash weights: the official folders, loaded strictly into our transformer.

Official layout (README "Model Preparation")::

    Wan2.1-Fun-V1.1-1.3B-InP/             the base
        config.json                       original-Wan names (dim, num_layers, ...)
        diffusion_pytorch_model.safetensors
        Wan2.1_VAE.pth, models_t5_umt5-xxl-enc-bf16.pth,
        models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth, google/umt5-xxl/
    transformer/diffusion_pytorch_model.safetensors   EchoMimicV3 (preview) or Flash weights

As the official loader does, the base is read first, then the EchoMimicV3 file on top of it. The official
loader prints "missing keys: 93" at the first step (the base has no audio weights), which users take for an
error; here the base must hold every Wan key, the EchoMimicV3 file must supply every audio key, and what is
still missing after both is one sentence naming which file lacks what.

Official parameter names are original-Wan names; :func:`to_ours` maps them onto diffusers'
``WanTransformer3DModel`` (``wan.*``) and our audio branch (``audio.*``), :func:`to_official` back.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from genhuman.checkpoints.weights import read_json, read_safetensors
from genhuman.errors import InputError, MissingWeightsError
from genhuman.models.echomimic_v3 import EchoMimicV3Config, EchoMimicV3Transformer

log = logging.getLogger(__name__)

BASE_DIR = "Wan2.1-Fun-V1.1-1.3B-InP"
WEIGHTS = "diffusion_pytorch_model.safetensors"
TRANSFORMER = f"transformer/{WEIGHTS}"
BASE_FILES = ("config.json", WEIGHTS)

# (official pattern, ours); applied in order, first match wins. \1 = block index.
_NAME_MAP: tuple[tuple[str, str], ...] = (
    (r"audio2token\.(.+)", r"audio.projector.\1"),
    (r"audio_injection\.(.+)", r"audio.projector.\1"),
    (r"blocks\.(\d+)\.cross_attn\.((?:q|k|v)_audio|norm_k_audio)\.(.+)", r"audio.blocks.\1.\2.\3"),
    (r"patch_embedding\.(.+)", r"wan.patch_embedding.\1"),
    (r"text_embedding\.0\.(.+)", r"wan.condition_embedder.text_embedder.linear_1.\1"),
    (r"text_embedding\.2\.(.+)", r"wan.condition_embedder.text_embedder.linear_2.\1"),
    (r"time_embedding\.0\.(.+)", r"wan.condition_embedder.time_embedder.linear_1.\1"),
    (r"time_embedding\.2\.(.+)", r"wan.condition_embedder.time_embedder.linear_2.\1"),
    (r"time_projection\.1\.(.+)", r"wan.condition_embedder.time_proj.\1"),
    (r"img_emb\.proj\.0\.(.+)", r"wan.condition_embedder.image_embedder.norm1.\1"),
    (r"img_emb\.proj\.1\.(.+)", r"wan.condition_embedder.image_embedder.ff.net.0.proj.\1"),
    (r"img_emb\.proj\.3\.(.+)", r"wan.condition_embedder.image_embedder.ff.net.2.\1"),
    (r"img_emb\.proj\.4\.(.+)", r"wan.condition_embedder.image_embedder.norm2.\1"),
    (r"blocks\.(\d+)\.self_attn\.([qkv])\.(.+)", r"wan.blocks.\1.attn1.to_\2.\3"),
    (r"blocks\.(\d+)\.self_attn\.o\.(.+)", r"wan.blocks.\1.attn1.to_out.0.\2"),
    (r"blocks\.(\d+)\.self_attn\.(norm_[qk])\.(.+)", r"wan.blocks.\1.attn1.\2.\3"),
    (r"blocks\.(\d+)\.cross_attn\.([qkv])\.(.+)", r"wan.blocks.\1.attn2.to_\2.\3"),
    (r"blocks\.(\d+)\.cross_attn\.o\.(.+)", r"wan.blocks.\1.attn2.to_out.0.\2"),
    (r"blocks\.(\d+)\.cross_attn\.(norm_[qk])\.(.+)", r"wan.blocks.\1.attn2.\2.\3"),
    (r"blocks\.(\d+)\.cross_attn\.k_img\.(.+)", r"wan.blocks.\1.attn2.add_k_proj.\2"),
    (r"blocks\.(\d+)\.cross_attn\.v_img\.(.+)", r"wan.blocks.\1.attn2.add_v_proj.\2"),
    (r"blocks\.(\d+)\.cross_attn\.norm_k_img\.(.+)", r"wan.blocks.\1.attn2.norm_added_k.\2"),
    (r"blocks\.(\d+)\.norm3\.(.+)", r"wan.blocks.\1.norm2.\2"),
    (r"blocks\.(\d+)\.ffn\.0\.(.+)", r"wan.blocks.\1.ffn.net.0.proj.\2"),
    (r"blocks\.(\d+)\.ffn\.2\.(.+)", r"wan.blocks.\1.ffn.net.2.\2"),
    (r"blocks\.(\d+)\.modulation", r"wan.blocks.\1.scale_shift_table"),
    (r"head\.head\.(.+)", r"wan.proj_out.\1"),
    (r"head\.modulation", r"wan.scale_shift_table"),
)
_OUR_MAP: tuple[tuple[str, str], ...] = (
    (r"audio\.projector\.(.+)", "PROJECTOR"),
    (r"audio\.blocks\.(\d+)\.(.+)", r"blocks.\1.cross_attn.\2"),
    (r"wan\.patch_embedding\.(.+)", r"patch_embedding.\1"),
    (r"wan\.condition_embedder\.text_embedder\.linear_1\.(.+)", r"text_embedding.0.\1"),
    (r"wan\.condition_embedder\.text_embedder\.linear_2\.(.+)", r"text_embedding.2.\1"),
    (r"wan\.condition_embedder\.time_embedder\.linear_1\.(.+)", r"time_embedding.0.\1"),
    (r"wan\.condition_embedder\.time_embedder\.linear_2\.(.+)", r"time_embedding.2.\1"),
    (r"wan\.condition_embedder\.time_proj\.(.+)", r"time_projection.1.\1"),
    (r"wan\.condition_embedder\.image_embedder\.norm1\.(.+)", r"img_emb.proj.0.\1"),
    (r"wan\.condition_embedder\.image_embedder\.ff\.net\.0\.proj\.(.+)", r"img_emb.proj.1.\1"),
    (r"wan\.condition_embedder\.image_embedder\.ff\.net\.2\.(.+)", r"img_emb.proj.3.\1"),
    (r"wan\.condition_embedder\.image_embedder\.norm2\.(.+)", r"img_emb.proj.4.\1"),
    (r"wan\.blocks\.(\d+)\.attn1\.to_([qkv])\.(.+)", r"blocks.\1.self_attn.\2.\3"),
    (r"wan\.blocks\.(\d+)\.attn1\.to_out\.0\.(.+)", r"blocks.\1.self_attn.o.\2"),
    (r"wan\.blocks\.(\d+)\.attn1\.(norm_[qk])\.(.+)", r"blocks.\1.self_attn.\2.\3"),
    (r"wan\.blocks\.(\d+)\.attn2\.to_([qkv])\.(.+)", r"blocks.\1.cross_attn.\2.\3"),
    (r"wan\.blocks\.(\d+)\.attn2\.to_out\.0\.(.+)", r"blocks.\1.cross_attn.o.\2"),
    (r"wan\.blocks\.(\d+)\.attn2\.(norm_[qk])\.(.+)", r"blocks.\1.cross_attn.\2.\3"),
    (r"wan\.blocks\.(\d+)\.attn2\.add_k_proj\.(.+)", r"blocks.\1.cross_attn.k_img.\2"),
    (r"wan\.blocks\.(\d+)\.attn2\.add_v_proj\.(.+)", r"blocks.\1.cross_attn.v_img.\2"),
    (r"wan\.blocks\.(\d+)\.attn2\.norm_added_k\.(.+)", r"blocks.\1.cross_attn.norm_k_img.\2"),
    (r"wan\.blocks\.(\d+)\.norm2\.(.+)", r"blocks.\1.norm3.\2"),
    (r"wan\.blocks\.(\d+)\.ffn\.net\.0\.proj\.(.+)", r"blocks.\1.ffn.0.\2"),
    (r"wan\.blocks\.(\d+)\.ffn\.net\.2\.(.+)", r"blocks.\1.ffn.2.\2"),
    (r"wan\.blocks\.(\d+)\.scale_shift_table", r"blocks.\1.modulation"),
    (r"wan\.proj_out\.(.+)", r"head.head.\1"),
    (r"wan\.scale_shift_table", r"head.modulation"),
)


def _apply(name: str, table: tuple[tuple[str, str], ...]) -> str | None:
    for pattern, replacement in table:
        m = re.fullmatch(pattern, name)
        if m:
            return m.expand(replacement)
    return None


def to_ours(name: str) -> str | None:
    """Official (original-Wan) parameter name -> ours; None for a name we do not know."""
    return _apply(name, _NAME_MAP)


def to_official(name: str, flash: bool) -> str | None:
    out = _apply(name, _OUR_MAP)
    if out == "PROJECTOR":
        return ("audio_injection." if flash else "audio2token.") + name[len("audio.projector."):]
    return out


def is_audio_key(official_name: str) -> bool:
    return "audio" in official_name


def official_state_names(model: EchoMimicV3Transformer) -> dict[str, str]:
    """official name -> our name for every parameter of ``model``."""
    out = {}
    for ours in model.state_dict():
        official = to_official(ours, model.config.flash)
        if official is None:
            raise AssertionError(f"no official name for {ours}")
        out[official] = ours
    return out


def config_from_official(base_config: dict, flash: bool, audio_state: dict[str, torch.Tensor] | None = None,
                         ) -> EchoMimicV3Config:
    """Our config from the base ``config.json`` (original-Wan field names), sizes the config cannot give
    (image/audio widths, Flash projector) read off the EchoMimicV3 weights when given."""
    try:
        kw: dict = dict(flash=flash, dim=int(base_config["dim"]), num_heads=int(base_config["num_heads"]),
                        ffn_dim=int(base_config["ffn_dim"]), num_layers=int(base_config["num_layers"]),
                        in_channels=int(base_config.get("in_dim", 36)),
                        out_channels=int(base_config.get("out_dim", 16)),
                        text_dim=int(base_config.get("text_dim", 4096)), freq_dim=int(base_config.get("freq_dim", 256)),
                        eps=float(base_config.get("eps", 1e-6)), text_len=int(base_config.get("text_len", 512)))
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{BASE_DIR}/config.json is not a Wan2.1 transformer config") from None
    if base_config.get("model_type", "i2v") != "i2v":
        raise InputError(f"{BASE_DIR}/config.json: EchoMimicV3 needs the i2v (InP) base, not model_type "
                         f"{base_config.get('model_type')!r}")
    state = audio_state or {}
    if "img_emb.proj.1.weight" in state:
        kw["image_dim"] = int(state["img_emb.proj.1.weight"].shape[1])
    if flash and "audio_injection.proj1.weight" in state:
        inter, width1 = state["audio_injection.proj1.weight"].shape
        width_vf = state["audio_injection.proj1_vf.weight"].shape[1]
        tokens = state["audio_injection.proj3.weight"].shape[0] // kw["dim"]
        per_window = width1 // 5
        kw.update(audio_intermediate=int(inter), audio_context_tokens=int(tokens), audio_window=5,
                  audio_window_vf=int(width_vf // per_window), audio_layers=int(per_window // kw.get("audio_dim", 768)))
    elif not flash and "audio2token.proj.weight" in state:
        kw["audio_dim"] = int(state["audio2token.proj.weight"].shape[1])
    return EchoMimicV3Config(**kw)


@dataclass
class OfficialFolder:
    root: Path
    base: Path
    transformer: Path


def official_folder(directory: str | Path) -> OfficialFolder:
    """Find the base and the EchoMimicV3 transformer file; a missing one is one line naming what to fetch."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"weights folder not found: {root.name}")
    base = root / BASE_DIR
    missing = [f"{BASE_DIR}/{name}" for name in BASE_FILES if not (base / name).is_file()]
    if not (root / TRANSFORMER).is_file():
        missing.append(TRANSFORMER + " (the EchoMimicV3 weights; without them the base has no audio branch)")
    if missing:
        raise MissingWeightsError(f"incomplete EchoMimicV3 weights folder {root.name}: missing "
                                  + ", ".join(missing) + " (genhuman download echomimic_v3 lists the files)")
    return OfficialFolder(root, base, root / TRANSFORMER)


def load_transformer(directory: str | Path, flash: bool, dtype: torch.dtype = torch.float32,
                     ) -> EchoMimicV3Transformer:
    """Base first, then the EchoMimicV3 file over it, both strict in the sense above."""
    folder = official_folder(directory)
    base_state = read_safetensors(folder.base / WEIGHTS)
    audio_state = read_safetensors(folder.transformer)
    config = config_from_official(read_json(folder.base / "config.json"), flash, audio_state)
    with torch.device("meta"):
        model = EchoMimicV3Transformer(config)
    names = official_state_names(model)
    wanted_base = {k for k in names if not is_audio_key(k)}
    wanted_audio = set(names) - wanted_base
    unknown = sorted(set(base_state) - set(names)) + sorted(set(audio_state) - set(names))
    if unknown:
        kind = "Flash" if flash else "preview"
        raise InputError(f"{TRANSFORMER} or the base holds {len(unknown)} key(s) the EchoMimicV3 {kind} transformer "
                         f"does not have (e.g. {unknown[0]}); is this the {kind} folder?")
    lacking_base = sorted(wanted_base - set(base_state) - set(audio_state))
    if lacking_base:
        raise InputError(f"{BASE_DIR}/{WEIGHTS} lacks {len(lacking_base)} Wan2.1 key(s) (e.g. {lacking_base[0]}): "
                         "the base must be Wan2.1-Fun-V1.1-1.3B-InP")
    lacking_audio = sorted(wanted_audio - set(audio_state))
    if lacking_audio:
        raise InputError(f"{TRANSFORMER} lacks {len(lacking_audio)} EchoMimicV3 audio key(s) "
                         f"(e.g. {lacking_audio[0]}): it is not the EchoMimicV3 "
                         f"{'Flash' if flash else 'preview'} transformer")
    merged = {**base_state, **audio_state}
    ours = {}
    for official, tensor in merged.items():
        target = names[official]
        ours[target] = tensor.to(dtype)
    shapes = model.state_dict()
    bad = [k for k, v in ours.items() if tuple(v.shape) != tuple(shapes[k].shape)]
    if bad:
        raise InputError(f"EchoMimicV3 weights do not fit the base config: {len(bad)} tensor(s) of another shape "
                         f"(e.g. {to_official(bad[0], flash)})")
    model.load_state_dict(ours, strict=True, assign=True)
    model.wan.rope = type(model.wan.rope)(config.head_dim, (1, 2, 2), 1024)  # buffers were built on meta
    log.info("EchoMimicV3 %s transformer: %d base + %d EchoMimicV3 tensors", "Flash" if flash else "preview",
             len(base_state), len(audio_state))
    return model.eval()


# --- umT5 (Wan's own T5 encoder file) -> transformers.UMT5EncoderModel ---------------------------------------
UMT5_FILE = "models_t5_umt5-xxl-enc-bf16.pth"
_UMT5_MAP: tuple[tuple[str, str], ...] = (
    (r"token_embedding\.weight", r"shared.weight"),
    (r"blocks\.(\d+)\.norm1\.weight", r"encoder.block.\1.layer.0.layer_norm.weight"),
    (r"blocks\.(\d+)\.attn\.([qkvo])\.weight", r"encoder.block.\1.layer.0.SelfAttention.\2.weight"),
    (r"blocks\.(\d+)\.pos_embedding\.embedding\.weight",
     r"encoder.block.\1.layer.0.SelfAttention.relative_attention_bias.weight"),
    (r"blocks\.(\d+)\.norm2\.weight", r"encoder.block.\1.layer.1.layer_norm.weight"),
    (r"blocks\.(\d+)\.ffn\.gate\.0\.weight", r"encoder.block.\1.layer.1.DenseReluDense.wi_0.weight"),
    (r"blocks\.(\d+)\.ffn\.fc1\.weight", r"encoder.block.\1.layer.1.DenseReluDense.wi_1.weight"),
    (r"blocks\.(\d+)\.ffn\.fc2\.weight", r"encoder.block.\1.layer.1.DenseReluDense.wo.weight"),
    (r"norm\.weight", r"encoder.final_layer_norm.weight"),
)


def umt5_from_official(state: dict[str, torch.Tensor], dtype: torch.dtype = torch.float32):
    """The Wan umT5-XXL encoder (per-layer relative position bias, gated tanh-GELU FFN, no attention scaling)
    as ``transformers.UMT5EncoderModel``; geometry read off the tensors, every key used exactly once."""
    from transformers import UMT5Config, UMT5EncoderModel

    try:
        vocab, dim = state["token_embedding.weight"].shape
        layers = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
        buckets, heads = state["blocks.0.pos_embedding.embedding.weight"].shape
        dim_attn = state["blocks.0.attn.q.weight"].shape[0]
        dim_ffn = state["blocks.0.ffn.fc1.weight"].shape[0]
    except (KeyError, ValueError):
        raise InputError(f"{UMT5_FILE} is not a Wan umT5 encoder state dict") from None
    config = UMT5Config(vocab_size=int(vocab), d_model=int(dim), d_kv=int(dim_attn // heads), d_ff=int(dim_ffn),
                        num_layers=int(layers), num_heads=int(heads), relative_attention_num_buckets=int(buckets),
                        relative_attention_max_distance=128, feed_forward_proj="gated-gelu", dropout_rate=0.0,
                        layer_norm_epsilon=1e-6, is_encoder_decoder=False, use_cache=False)
    ours = {}
    for name, tensor in state.items():
        target = _apply(name, _UMT5_MAP)
        if target is None:
            raise InputError(f"{UMT5_FILE} holds an unexpected key {name}")
        ours[target] = tensor.to(dtype)
    ours["encoder.embed_tokens.weight"] = ours["shared.weight"]
    with torch.device("meta"):
        model = UMT5EncoderModel(config)
    missing = sorted(set(model.state_dict()) - set(ours))
    if missing:
        raise InputError(f"{UMT5_FILE} lacks {len(missing)} key(s) (e.g. {missing[0]})")
    model.load_state_dict(ours, strict=True, assign=True)
    model.tie_weights()
    return model.eval()

# --- Wan VAE (Wan2.1_VAE.pth) -> diffusers AutoencoderKLWan ------------------------------------------------------
VAE_FILE = "Wan2.1_VAE.pth"
# the official wrapper's fixed per-channel latent statistics (src/wan_vae.py), applied in encode/decode
WAN_LATENTS_MEAN = (-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921)
WAN_LATENTS_STD = (2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                   3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160)


def _decoder_as_two_res_blocks(state: dict[str, torch.Tensor], num_res_blocks: int) -> dict[str, torch.Tensor]:
    """diffusers' converter numbers the decoder's flat ``upsamples`` as if each stage had 3 resnets + 1 resampler
    (the released VAE); renumber another depth into that layout first."""
    per_stage = num_res_blocks + 2  # resnets (num_res_blocks + 1) + resampler
    out = {}
    for key, value in state.items():
        if key.startswith("decoder.upsamples."):
            parts = key.split(".")
            stage, pos = divmod(int(parts[2]), per_stage)
            parts[2] = str(4 * stage + (3 if pos == per_stage - 1 else pos))
            key = ".".join(parts)
        out[key] = value
    return out


def wan_vae_from_official(state: dict[str, torch.Tensor], dtype: torch.dtype = torch.float32):
    """``Wan2.1_VAE.pth`` through diffusers' own Wan VAE key conversion; width and depth read off the tensors."""
    from diffusers import AutoencoderKLWan
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    try:
        base_dim = int(state["encoder.conv1.weight"].shape[0])
        z_dim = int(state["conv2.weight"].shape[0])
    except KeyError:
        raise InputError(f"{VAE_FILE} is not a Wan2.1 VAE state dict") from None
    entries = {int(k.split(".")[2]) for k in state if k.startswith("encoder.downsamples.")}
    num_res_blocks = (len(entries) - 3) // 4
    vae = AutoencoderKLWan(base_dim=base_dim, z_dim=z_dim, dim_mult=[1, 2, 4, 4], num_res_blocks=num_res_blocks,
                           attn_scales=[], temperal_downsample=[False, True, True],
                           latents_mean=list(WAN_LATENTS_MEAN), latents_std=list(WAN_LATENTS_STD))
    converted = convert_wan_vae_to_diffusers(_decoder_as_two_res_blocks(dict(state), num_res_blocks))
    converted = {k: v.to(dtype) for k, v in converted.items()}
    expected = vae.state_dict()
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    wrong = sorted(k for k in set(expected) & set(converted) if expected[k].shape != converted[k].shape)
    if missing or unexpected or wrong:
        example = (missing or unexpected or wrong)[0]
        raise InputError(f"{VAE_FILE} does not fit the Wan2.1 VAE: {len(missing)} missing, {len(unexpected)} "
                         f"unexpected, {len(wrong)} mis-shaped key(s) (e.g. {example})")
    vae.load_state_dict(converted, strict=True)
    return vae.eval()


# --- open-clip XLM-R ViT-H/14 (Wan's CLIP file) -> transformers.CLIPVisionModel ----------------------------------
CLIP_FILE = "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_vision_from_official(state: dict[str, torch.Tensor], dtype: torch.dtype = torch.float32):
    """The vision tower of Wan's CLIP file (which also holds the XLM-R text tower and ``log_scale``; unused) as
    ``transformers.CLIPVisionModel``. EchoMimicV3 uses the PENULTIMATE block's tokens: ``hidden_states[-2]``."""
    try:
        dim, _, patch, _ = state["visual.patch_embedding.weight"].shape
        positions = state["visual.pos_embedding"].shape[1]
        layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("visual.transformer."))
        mlp = state["visual.transformer.0.mlp.0.weight"].shape[0]
    except (KeyError, ValueError):
        raise InputError(f"{CLIP_FILE} is not a Wan CLIP (XLM-R ViT-H/14) state dict") from None
    image_size = int(round((positions - 1) ** 0.5)) * int(patch)
    heads = max(1, int(dim) // 80) if dim >= 640 else None  # ViT-H/14: 1280 / 16 heads; tiny: given below
    ours: dict[str, torch.Tensor] = {}
    prefix = "vision_model."
    for key, value in state.items():
        if not key.startswith("visual.") or key.startswith(("visual.head", "visual.post_norm")):
            continue
        name = key[len("visual."):]
        if name == "patch_embedding.weight":
            ours[prefix + "embeddings.patch_embedding.weight"] = value
        elif name == "cls_embedding":
            ours[prefix + "embeddings.class_embedding"] = value.reshape(-1)
        elif name == "pos_embedding":
            ours[prefix + "embeddings.position_embedding.weight"] = value.reshape(positions, -1)
        elif name.startswith("pre_norm."):
            ours[prefix + "pre_layrnorm." + name.split(".")[1]] = value
        else:
            m = re.fullmatch(r"transformer\.(\d+)\.(norm1|norm2|attn\.to_qkv|attn\.proj|mlp\.0|mlp\.2)\.(weight|bias)",
                             name)
            if m is None:
                raise InputError(f"{CLIP_FILE} holds an unexpected vision key {key}")
            layer, part, kind = m.groups()
            base = f"{prefix}encoder.layers.{layer}."
            if part == "attn.to_qkv":
                for sub, chunk in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                    ours[f"{base}self_attn.{sub}.{kind}"] = chunk
            else:
                target = {"norm1": "layer_norm1", "norm2": "layer_norm2", "attn.proj": "self_attn.out_proj",
                          "mlp.0": "mlp.fc1", "mlp.2": "mlp.fc2"}[part]
                ours[f"{base}{target}.{kind}"] = value
    return ours, dict(hidden_size=int(dim), intermediate_size=int(mlp), num_hidden_layers=int(layers),
                      image_size=image_size, patch_size=int(patch), heads=heads)


def build_clip_vision(state: dict[str, torch.Tensor], num_heads: int | None = None, dtype: torch.dtype = torch.float32):
    """``clip_vision_from_official`` plus the model; ``num_heads`` is needed where it cannot be inferred (tiny)."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    weights, geo = clip_vision_from_official(state)
    heads = num_heads or geo.pop("heads")
    geo.pop("heads", None)
    if heads is None:
        raise InputError(f"{CLIP_FILE}: give the number of attention heads")
    config = CLIPVisionConfig(num_attention_heads=int(heads), hidden_act="gelu", layer_norm_eps=1e-5,
                              projection_dim=geo["hidden_size"], **geo)
    model = CLIPVisionModel(config)  # not on meta: its position_ids buffer is not in the state dict
    if not any(k.startswith("vision_model.") for k in model.state_dict()):  # transformers 5 drops the prefix
        weights = {k[len("vision_model."):]: v for k, v in weights.items()}
    post = "vision_model.post_layernorm" if any(k.startswith("vision_model.") for k in weights) else "post_layernorm"
    wanted = {k for k in model.state_dict() if not k.startswith(post)}
    missing = sorted(wanted - set(weights))
    if missing:
        raise InputError(f"{CLIP_FILE} lacks {len(missing)} vision key(s) (e.g. {missing[0]})")
    full = dict(weights)
    for k in ("weight", "bias"):  # the final norm is not used for the penultimate tokens
        full[f"{post}.{k}"] = (torch.ones if k == "weight" else torch.zeros)(geo["hidden_size"])
    model.load_state_dict({k: v.to(dtype) for k, v in full.items()}, strict=True)
    return model.to(dtype).eval()
