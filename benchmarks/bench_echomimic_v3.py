"""EchoMimicV3-Flash sampling on the CPU, official code vs GenHuman, in one run, at equal output.

    .venv/bin/python benchmarks/bench_echomimic_v3.py [--official-repo WORKTREE --official-python VENV/bin/python]
        [--geometry tiny,reduced] [--repeats 2]

For each geometry: the official ``WanTransformerAudioMask3DModel`` (``_2512``, Flash) is built in ITS venv
(diffusers 0.32.2; a subprocess running this same file with ``--official-side``) with seeded weights, runs the
8-step Flash loop (FlowUniPC shift 5, audio CFG 3.0: 16 transformer calls) on seeded inputs and saves weights,
inputs and the final latents; then GenHuman loads those weights through its conversion map and runs its own loop.
Printed: machine, versions, seconds per 8-step sample (best of --repeats), transformer calls/s, and the max
difference of the final latents. Without ``--official-repo`` only GenHuman's side runs (own seeded weights).
Geometries: tiny = the parity harness (dim 128, 2 layers, 128x128, 9 frames); reduced = dim 384 (3 heads of
128, as the real model's head size), 4 layers, 256x256, 17 frames.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

GEOMETRIES = {
    "tiny": dict(dim=128, heads=4, ffn=256, layers=2, size=128, frames=9, text_dim=64, clip_dim=64, inter=32),
    "reduced": dict(dim=384, heads=3, ffn=1024, layers=4, size=256, frames=17, text_dim=256, clip_dim=128, inter=64),
    # the released Flash model at its README maximum (GPU only: benchmarks/gpu_echomimic_v3.sh)
    "full": dict(dim=1536, heads=12, ffn=8960, layers=30, size=768, frames=81, text_dim=4096, clip_dim=1280, inter=512),
}
STEPS, AUDIO_SCALE = 8, 3.0


def official_config(g: dict) -> dict:
    return dict(model_type="i2v", in_dim=36, dim=g["dim"], ffn_dim=g["ffn"], freq_dim=256, num_heads=g["heads"],
                num_layers=g["layers"], out_dim=16, text_len=512, eps=1e-6, text_dim=g["text_dim"])


def inputs(g: dict) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    lat = (g["frames"] - 1) // 4 + 1
    s = g["size"] // 8
    return {"noise": torch.randn(1, 16, lat, s, s, generator=gen), "y": torch.randn(1, 20, lat, s, s, generator=gen),
            "text": torch.randn(22, g["text_dim"], generator=gen), "clip": torch.randn(1, 257, g["clip_dim"], generator=gen),
            "audio": torch.randn(1, g["frames"], 5, 12, 768, generator=gen)}


def official_side(repo: str, name: str, out: Path, repeats: int) -> None:
    """Runs in the official venv: nothing from genhuman is imported here."""
    sys.path.insert(0, repo)
    from safetensors.torch import save_file

    import src.wan_transformer3d_audio_2512 as m
    from src.fm_solvers_unipc import FlowUniPCMultistepScheduler

    g = GEOMETRIES[name]
    ap = m.AudioProjModel
    m.AudioProjModel = lambda **kw: ap(**dict(kw, intermediate_dim=g["inter"], output_dim=g["dim"]))
    mlp = m.MLPProj
    m.MLPProj = lambda in_dim, out_dim: mlp(g["clip_dim"], out_dim)
    cfg = official_config(g)
    torch.manual_seed(0)
    model = m.WanTransformerAudioMask3DModel(**dict(cfg, in_channels=36, hidden_size=g["dim"])).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    x = inputs(g)
    lat_t = x["noise"].shape[2]
    seq_len = lat_t * (g["size"] // 16) ** 2

    def sample() -> torch.Tensor:
        sched = FlowUniPCMultistepScheduler(num_train_timesteps=1000, shift=1.0)
        sched.set_timesteps(STEPS, shift=5.0)
        latents = x["noise"].clone()
        for t in sched.timesteps:
            tt = t.expand(1)
            kw = dict(x=latents, t=tt, seq_len=seq_len, y=x["y"], clip_fea=x["clip"])
            cond = model(context=([x["text"]], x["audio"], lat_t, None), **kw)
            un = model(context=([x["text"]], torch.zeros_like(x["audio"]), lat_t, None), **kw)
            latents = sched.step(un + AUDIO_SCALE * (cond - un), t, latents, return_dict=False)[0]
        return latents

    with torch.no_grad():
        best = min(_timed(sample) for _ in range(repeats))
        final = sample()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "weights.safetensors"))
    torch.save({"final": final, "seconds": best, "config": cfg, "torch": str(torch.__version__)}, out / "official.pt")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ours_direct(name: str, device: str, dtype: torch.dtype, repeats: int) -> dict:
    """Full size: built on the device with seeded weights (no file round trip), peak memory recorded."""
    from genhuman.models.echomimic_v3 import EchoMimicV3Config, EchoMimicV3Transformer
    from genhuman.pipelines.echomimic_v3 import EchoMimicV3Pipeline, FlashOptions, V3Conditions

    g = GEOMETRIES[name]
    config = EchoMimicV3Config(flash=True, dim=g["dim"], num_heads=g["heads"], ffn_dim=g["ffn"],
                               num_layers=g["layers"], text_dim=g["text_dim"], image_dim=g["clip_dim"],
                               audio_intermediate=g["inter"])
    with torch.device(device):
        model = EchoMimicV3Transformer(config)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.05)
    model = model.to(dtype).eval()
    x = {k: v.to(device, dtype) for k, v in inputs(g).items()}
    text = torch.cat([x["text"], x["text"].new_zeros(512 - x["text"].shape[0], x["text"].shape[1])])[None]
    cond = V3Conditions(text, text, x["clip"], x["y"])
    pipe = EchoMimicV3Pipeline(model)

    def sample() -> torch.Tensor:
        out = pipe.sample_flash(cond, x["audio"], x["noise"], FlashOptions(steps=STEPS, audio_scale=AUDIO_SCALE))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return out

    sample()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    best = min(_timed(sample) for _ in range(repeats))
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
    return {"seconds": best, "peak_gib": peak, "frames": g["frames"]}


def ours_side(name: str, folder: Path | None, repeats: int) -> dict:
    from safetensors.torch import load_file, save_file

    from genhuman.checkpoints.echomimic_v3 import load_transformer, official_state_names
    from genhuman.models.echomimic_v3 import EchoMimicV3Config, EchoMimicV3Transformer
    from genhuman.pipelines.echomimic_v3 import EchoMimicV3Pipeline, FlashOptions, V3Conditions

    g = GEOMETRIES[name]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = root / "Wan2.1-Fun-V1.1-1.3B-InP"
        base.mkdir()
        (root / "transformer").mkdir()
        (base / "config.json").write_text(json.dumps(official_config(g)))
        if folder is not None:
            state = load_file(str(folder / "weights.safetensors"))
        else:
            config = EchoMimicV3Config(flash=True, dim=g["dim"], num_heads=g["heads"], ffn_dim=g["ffn"],
                                       num_layers=g["layers"], text_dim=g["text_dim"], image_dim=g["clip_dim"],
                                       audio_intermediate=g["inter"])
            model = EchoMimicV3Transformer(config)
            gen = torch.Generator().manual_seed(1)
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            names = official_state_names(model)
            own = model.state_dict()
            state = {k: own[v].contiguous() for k, v in names.items()}
        save_file({k: v for k, v in state.items() if "audio" not in k}, str(base / "diffusion_pytorch_model.safetensors"))
        save_file(state, str(root / "transformer/diffusion_pytorch_model.safetensors"))
        model = load_transformer(root, flash=True)
    x = inputs(g)
    text = torch.cat([x["text"], x["text"].new_zeros(512 - x["text"].shape[0], x["text"].shape[1])])[None]
    cond = V3Conditions(text, text, x["clip"], x["y"])
    pipe = EchoMimicV3Pipeline(model)

    def sample() -> torch.Tensor:
        return pipe.sample_flash(cond, x["audio"], x["noise"], FlashOptions(steps=STEPS, audio_scale=AUDIO_SCALE))

    best = min(_timed(sample) for _ in range(repeats))
    return {"seconds": best, "final": sample()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official-repo")
    ap.add_argument("--official-python")
    ap.add_argument("--geometry", default="tiny,reduced")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="ours only, for --geometry full (cuda)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--official-side", nargs=2, metavar=("GEOMETRY", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.official_side:
        official_side(args.official_repo, args.official_side[0], Path(args.official_side[1]), args.repeats)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    import diffusers

    from machine import machine

    print(machine())
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, threads {torch.get_num_threads()}")
    print(f"Flash: {STEPS} steps, audio CFG {AUDIO_SCALE} (2 transformer calls per step), fp32")
    for name in args.geometry.split(","):
        g = GEOMETRIES[name]
        if name == "full":
            r = ours_direct(name, args.device, getattr(torch, args.dtype), args.repeats)
            print(f"full     Flash transformer {args.dtype} on {args.device}, {g['size']}x{g['size']}, {g['frames']} "
                  f"frames, {STEPS} steps x 2 calls: {r['seconds']:.2f} s per sample, "
                  f"{r['frames'] / r['seconds']:.2f} frames/s, peak {r['peak_gib']:.2f} GiB", flush=True)
            continue
        row = f"{name:8s} dim {g['dim']} x {g['layers']} layers, {g['size']}x{g['size']}, {g['frames']} frames:"
        with tempfile.TemporaryDirectory() as tmp:
            official = None
            if args.official_repo:
                subprocess.run([args.official_python, __file__, "--official-repo", args.official_repo,
                                "--repeats", str(args.repeats), "--official-side", name, tmp], check=True,
                               stderr=subprocess.DEVNULL)
                official = torch.load(Path(tmp) / "official.pt", weights_only=True)
            ours = ours_side(name, Path(tmp) if official else None, args.repeats)
        calls = 2 * STEPS
        row += f" ours {ours['seconds']:.2f} s ({calls / ours['seconds']:.1f} calls/s)"
        if official is not None:
            diff = float((ours["final"] - official["final"]).abs().max())
            row += (f", official {official['seconds']:.2f} s ({calls / official['seconds']:.1f} calls/s), "
                    f"speed-up {official['seconds'] / ours['seconds']:.2f}x, max |final latents diff| {diff:.1e}")
        print(row, flush=True)


if __name__ == "__main__":
    main()
