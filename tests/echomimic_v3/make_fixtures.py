"""Make tests/echomimic_v3/fixtures from an official harness run (not run by the tests).

    python /work/shared/tools/parity/official_echomimic_v3_ref.py WORKTREE OUT float32   (its own venv;
    a copy that also saves each transformer call's inputs and the parameter order: official_calls.pt,
    param_order.pt)
    .venv/bin/python tests/echomimic_v3/make_fixtures.py OUT

Committed: numbers only. The weights are NOT committed: they are regenerated from the harness's seed and the
official parameter order (``weights.py``); the audio inputs and the noise are regenerated from their seeds.
What is kept: the tiny config, the parameter order, the conditioning tensors the official pipeline built from
its tiny umT5 / CLIP / VAE (text embeddings, CLIP tokens, condition latents, face-box mask), the timesteps,
and per step the guided model output and the latents at 2048 fixed positions plus the final latents in full.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent / "fixtures"
VARIANTS = ("preview", "preview_long", "flash", "flash_teacache")
SAMPLES = 2048


def sample_index(numel: int) -> torch.Tensor:
    return torch.randperm(numel, generator=torch.Generator().manual_seed(0))[:SAMPLES]


def main(out: Path) -> None:
    HERE.mkdir(exist_ok=True)
    for kind in ("preview", "flash"):
        order = torch.load(out / kind / "param_order.pt")
        tiny = json.loads((out / kind / "tiny_config.json").read_text())
        spec = {"transformer": tiny["transformer"], "params": [[n, list(s)] for n, s in order]}
        if kind == "preview":  # the harness draws the VAE's weights, then umT5's, after the transformer's
            base = out / kind / "Wan2.1-Fun-V1.1-1.3B-InP"
            vae = torch.load(base / "Wan2.1_VAE.pth", weights_only=True)
            t5 = torch.load(base / "models_t5_umt5-xxl-enc-bf16.pth", weights_only=True)
            spec["vae_params"] = [["model." + n, list(t.shape)] for n, t in vae.items()]
            spec["t5_params"] = [[n, list(t.shape)] for n, t in t5.items()]
            spec["t5"] = tiny["t5"]
            clip = torch.load(base / "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth", weights_only=True)
            spec["clip_params"] = [["model." + n, list(t.shape)] for n, t in clip.items()]
        (HERE / f"{kind}_params.json").write_text(json.dumps(spec))
    raw_negative = torch.load(out / "preview_long" / "official_calls.pt")[0]["text"][0]  # never rescaled there
    for v in VARIANTS:
        calls = torch.load(out / v / "official_calls.pt")
        trace = torch.load(out / v / "official_trace.pt")
        c0 = calls[0]
        flash = v.startswith("flash")
        tensors = {"clip": c0["clip_fea"][:1].contiguous(), "condition": c0["y"][:1].contiguous(),
                   "prompt": c0["text"][0 if flash else 1].contiguous()}
        if not flash:
            tensors["negative"] = raw_negative.contiguous()
            tensors["face_mask"] = c0["ip_mask"][:1].contiguous()
        idx = sample_index(trace["steps"][0]["latents"].numel())
        tensors["index"] = idx
        for i, s in enumerate(trace["steps"]):
            tensors[f"model_output_{i}"] = s["model_output"].flatten()[idx].contiguous()
            tensors[f"latents_{i}"] = s["latents"].flatten()[idx].contiguous()
        tensors["final_latents"] = trace["steps"][-1]["latents"].contiguous()
        if v == "preview":  # the decoded video at fixed positions (VAE decode parity)
            video = torch.load(out / v / "official_video.pt")
            tensors["video_index"] = sample_index(video.numel())
            tensors["video_samples"] = video.flatten()[tensors["video_index"]].contiguous()
        np.savez_compressed(HERE / f"{v}.npz", **{k: t.numpy() for k, t in tensors.items()})
        meta = {"timesteps": trace["timesteps"], "steps": len(trace["steps"]),
                "transformer_calls": len(trace["transformer_outputs"]),
                "teacache_should_calc_after_call": trace["teacache_should_calc"]}
        (HERE / f"{v}.json").write_text(json.dumps(meta, indent=1))
        print(v, {k: tuple(t.shape) for k, t in tensors.items() if not k[-1].isdigit()})


if __name__ == "__main__":
    main(Path(sys.argv[1]))
