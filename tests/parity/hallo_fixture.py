"""The official Hallo parity fixture (data/hallo/), regenerated bit for bit from seeds.

The shared harness ``official_hallo_ref.py`` ran the OFFICIAL Hallo pipeline once at a tiny
config (2 clips of 16 frames, 3 DDIM steps, CFG 3.5, 64x64). Its 38 MB ``net.pth``, its VAE,
its 6 MB of audio embeddings and its noise are pure functions of seeds, so only these are kept:

- ``net_params.txt``: the official ``Net`` state_dict in order, ``key shape kind`` (the format
  of ``data/params/*.txt``); the VAE's list is the shared ``data/params/vae.txt``;
- ``weights.json``: the init rule, the scales, the VAE config, the SHA-256 of each network's
  tensors and of the harness's files;
- ``inputs.npz``: the inputs not drawn from a seed (the face-locator image and the masks);
- ``run.json``: the run settings, the SHA-256 of every input and noise draw, the video's
  statistics, the official fp32-vs-fp64 floor and the effect of the official fp16 bank cast;
- ``runs/asis/trace.npz`` (the harness's own run) and ``runs/bank32/trace.npz`` (the same
  with the reference bank kept in fp32): ``timesteps``, ``clip``, ``model_output`` (the guided
  model output given to each scheduler step) and ``latents`` (after the step), each step of
  both clips in order, arrays (steps, 4, 16, 8, 8) float32;
- ``scheduler_40.json``: the official inference scheduler's 40 timesteps and alphas_cumprod.

The harness's rule: one ``torch.Generator().manual_seed(1)``; for every parameter of the Net
(reference_unet, denoising_unet, face_locator, imageproj, audioproj), then of the VAE,
``torch.randn(p.shape, generator=g) * scale`` (0.05 for the Net, 0.3 for the VAE). Buffers
(the motion modules' ``pe``) are the official sinusoid table. Inputs come from
``np.random.default_rng(2)``; each clip's initial noise is the next draw of the CPU generator
seeded 42 (``torch.manual_seed(42)`` in the harness). See tests/parity/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tests.parity.official_weights import (
    RegenerationError,
    module_states,
    array_sha256,
)

DATA = Path(__file__).resolve().parent / "data"
HALLO = DATA / "hallo"
VAE_PARAMS = "params/vae.txt"  # relative to DATA; the same official AutoencoderKL as EchoMimic V1's
NET_PREFIXES = ("reference_unet", "denoising_unet", "face_locator", "imageproj", "audioproj")
NOISE_SEED = 42
INPUT_SEED = 2


def _json(name: str) -> Any:
    return json.loads((HALLO / name).read_text())


def weights_spec() -> dict[str, Any]:
    return _json("weights.json")


def run_settings() -> dict[str, Any]:
    return _json("run.json")


def tiny_config() -> dict[str, Any]:
    return _json("tiny_config.json")


def scheduler_reference() -> dict[str, Any]:
    """The official DDIMScheduler of Hallo's inference config at 40 steps (diffusers 0.27.2)."""
    return _json("scheduler_40.json")


def states() -> dict[str, dict[str, torch.Tensor]]:
    """{"net": the official net.pth state dict, "vae": the VAE's}, regenerated and checked (one
    generator, the modules in turn, each ``randn * scale``: the order matters)."""
    return module_states(weights_spec(), HALLO, family="Hallo")


def regenerate(out: str | Path) -> Path:
    """Write the harness's weight folder: net.pth, sd-vae-ft-mse/ and tiny_config.json."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec, regenerated = weights_spec(), states()
    net, vae = (next(m for m in spec["modules"] if m["name"] == n) for n in ("net", "vae"))
    torch.save(regenerated["net"], out / net["file"])
    vae_dir = out / vae["file"]
    vae_dir.mkdir(parents=True, exist_ok=True)
    # diffusers' save_pretrained: sorted-key, 2-space json and safetensors with {"format": "pt"}
    (vae_dir / "config.json").write_text(json.dumps(vae["config"], indent=2, sort_keys=True) + "\n")
    save_file({k: v.contiguous() for k, v in regenerated["vae"].items()},
              str(vae_dir / "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
    (out / "tiny_config.json").write_text((HALLO / "tiny_config.json").read_text())
    return out


def inputs() -> dict[str, Any]:
    """The harness's inputs.pt: the same names, dtypes and values (lists of masks per level)."""
    run = run_settings()
    h, w, frames = run["H"], run["W"], run["clip"] * 2
    rng = np.random.default_rng(INPUT_SEED)  # the harness's draws, in its order
    src = rng.uniform(-1, 1, (3, h, w)).astype(np.float32)
    face_emb = rng.standard_normal((1, 512)).astype(np.float32)
    audio_emb = rng.standard_normal((frames, 5, 12, 768)).astype(np.float32)
    drawn = {"src": src, "face_emb": face_emb, "audio_emb": audio_emb}
    with np.load(HALLO / "inputs.npz") as stored:
        kept = {k: stored[k] for k in stored.files}
    result: dict[str, Any] = {k: torch.from_numpy(v) for k, v in drawn.items()}
    result["face_region"] = torch.from_numpy(kept["face_region"])
    for kind in ("full", "face", "lip"):
        levels = sorted((k for k in kept if k.startswith(f"{kind}_mask_")), key=lambda k: int(k.rsplit("_", 1)[1]))
        result[f"{kind}_mask"] = [torch.from_numpy(kept[k]) for k in levels]
    for name, digest in run["input_sha256"].items():
        if array_sha256(result[name].numpy()) != digest:
            raise RegenerationError(f"regenerated Hallo input {name} differs from the official run's")
    return result


def initial_noise() -> list[torch.Tensor]:
    """Each clip's initial latents (1, 4, 16, h/8, w/8), in order, as the official run drew them."""
    run = run_settings()
    shape = (1, 4, run["clip"], run["H"] // 8, run["W"] // 8)
    g = torch.Generator().manual_seed(NOISE_SEED)  # the same stream as the harness's global generator
    noise = [torch.randn(shape, generator=g) for _ in run["noise_sha256"]]
    if [array_sha256(n.numpy()) for n in noise] != run["noise_sha256"]:
        raise RegenerationError("regenerated Hallo initial noise differs from the official run's")
    return noise


def trace(run: str = "asis") -> dict[str, np.ndarray]:
    """The official per-step trace: "asis" (the harness) or "bank32" (reference bank in fp32)."""
    with np.load(HALLO / "runs" / run / "trace.npz") as stored:
        return {k: stored[k] for k in stored.files}
