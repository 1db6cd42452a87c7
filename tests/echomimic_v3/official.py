"""The official tiny EchoMimicV3 folders, rebuilt from the committed fixtures (weights from the harness's seed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

FIXTURES = Path(__file__).parent / "fixtures"
INPUT_SEED = {"preview": 2, "preview_long": 3, "flash": 4, "flash_teacache": 4}
FRAMES = {"preview": 9, "preview_long": 17, "flash": 9, "flash_teacache": 9}


def _draw(g: torch.Generator, name: str, shape: list[int]) -> torch.Tensor:
    r = torch.randn(tuple(shape), generator=g, dtype=torch.float64)
    gain = ("norm" in name and name.endswith("weight") and len(shape) == 1) or name.endswith("gamma")
    return ((1.0 + 0.1 * r) if gain else 0.05 * r).to(torch.float32)


def official_weights(kind: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """(tiny transformer config, official state dict): the harness's ``randomize`` on the official parameter
    order, generator seed 1, float64 draws: N(0, 0.05^2), 1-D norm gains 1 + N(0, 0.1^2)."""
    spec = json.loads((FIXTURES / f"{kind}_params.json").read_text())
    g = torch.Generator().manual_seed(1)
    return spec["transformer"], {name: _draw(g, name, shape) for name, shape in spec["params"]}


def official_umt5_weights() -> dict[str, torch.Tensor]:
    """The tiny umT5 file of the preview run: the same generator continues over the VAE's parameters, then umT5's."""
    spec = json.loads((FIXTURES / "preview_params.json").read_text())
    g = torch.Generator().manual_seed(1)
    for name, shape in spec["params"] + spec["vae_params"]:
        _draw(g, name, shape)
    return {name: _draw(g, name, shape) for name, shape in spec["t5_params"]}


def official_vae_weights() -> dict[str, torch.Tensor]:
    """The tiny ``Wan2.1_VAE.pth`` of the preview run (file keys, without the loader's ``model.`` prefix)."""
    spec = json.loads((FIXTURES / "preview_params.json").read_text())
    g = torch.Generator().manual_seed(1)
    for name, shape in spec["params"]:
        _draw(g, name, shape)
    return {name[len("model."):]: _draw(g, name, shape) for name, shape in spec["vae_params"]}


def official_clip_weights() -> dict[str, torch.Tensor]:
    """The tiny CLIP file of the preview run (after the transformer, VAE and umT5 draws; file keys)."""
    spec = json.loads((FIXTURES / "preview_params.json").read_text())
    g = torch.Generator().manual_seed(1)
    for name, shape in spec["params"] + spec["vae_params"] + spec["t5_params"]:
        _draw(g, name, shape)
    return {name[len("model."):]: _draw(g, name, shape) for name, shape in spec["clip_params"]}


def standin_token_ids(prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The harness's stand-in tokenizer: one id per UTF-8 byte (2 + b % 90), eos 1, pad 0 to 512."""
    ids = [2 + (b % 90) for b in prompt.encode("utf-8")] + [1]
    row = torch.tensor(ids + [0] * (512 - len(ids)))[None]
    return row, (row != 0).long()


def write_official_folder(root: Path, kind: str, base_only: bool = False, drop_base_key: str | None = None) -> Path:
    """The README layout: ``Wan2.1-Fun-V1.1-1.3B-InP/{config.json, diffusion_pytorch_model.safetensors}`` (no audio
    keys, as in the released base) and ``transformer/diffusion_pytorch_model.safetensors`` (all keys)."""
    config, state = official_weights(kind)
    base = root / "Wan2.1-Fun-V1.1-1.3B-InP"
    base.mkdir(parents=True, exist_ok=True)
    (base / "config.json").write_text(json.dumps(dict(config, _class_name="WanModel")))
    base_state = {k: v for k, v in state.items() if "audio" not in k and k != drop_base_key}
    save_file(base_state, str(base / "diffusion_pytorch_model.safetensors"))
    (root / "transformer").mkdir(exist_ok=True)
    save_file(base_state if base_only else state, str(root / "transformer/diffusion_pytorch_model.safetensors"))
    return root


def fixture(variant: str) -> tuple[dict[str, torch.Tensor], dict]:
    with np.load(FIXTURES / f"{variant}.npz") as npz:
        tensors = {k: torch.from_numpy(npz[k]) for k in npz.files}
    return tensors, json.loads((FIXTURES / f"{variant}.json").read_text())


def pad_text(embeds: torch.Tensor) -> torch.Tensor:
    return torch.cat([embeds, embeds.new_zeros(512 - embeds.shape[0], embeds.shape[1])])[None]


def audio_input(variant: str) -> torch.Tensor:
    """The harness's stubbed wav2vec features. Preview: last_hidden_state [1, 2L, 768]; Flash: hidden_states[1:]
    per frame [L, 12, 768], windowed ±2 frames (clamped) -> [1, L, 5, 12, 768]."""
    rng = np.random.default_rng(INPUT_SEED[variant])
    frames = FRAMES[variant]
    if variant.startswith("preview"):
        return torch.from_numpy(rng.standard_normal((1, 2 * frames, 768)).astype(np.float32))
    feats = torch.from_numpy(rng.standard_normal((frames, 12, 768)).astype(np.float32))
    idx = torch.clamp(torch.arange(frames)[:, None] + (torch.arange(5) - 2)[None], 0, frames - 1)
    return feats[idx][None]


def initial_noise(variant: str) -> torch.Tensor:
    latent_frames = (FRAMES[variant] - 1) // 4 + 1
    return torch.randn((1, 16, latent_frames, 16, 16), generator=torch.Generator().manual_seed(43),
                       dtype=torch.float32)
