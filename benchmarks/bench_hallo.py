"""Hallo / Hallo2 speed: per-part milliseconds at a chosen geometry (random weights), the
projected cost of a second of video at 40 steps, and an end-to-end check through HalloPipeline.

    # full size on a GPU (the released net.pth geometry, 512x512, fp16 as the official):
    python benchmarks/bench_hallo.py --config sd15 --device cuda --dtype float16 --steps 40 --clips 2 --write
    # reduced size on a CPU (about 2 minutes on one core of the 2-core dev box):
    OMP_NUM_THREADS=1 python benchmarks/bench_hallo.py --config reduced --steps 1 --clips 1 --repeats 1 --write
    # the full-size denoiser and ReferenceNet on a CPU at 16x16 latents (a few minutes, ~11 GB):
    python benchmarks/bench_hallo.py --config sd15 --size 128 --skip vae,wav2vec --clips 0 --warmup 0 --repeats 1

Configs (``HalloNet`` with random weights; the VAE and wav2vec2 likewise random):

- ``sd15``: ``HalloConfig.sd15()``, the released ``net.pth`` (2.42 B parameters), the
  sd-vae-ft-mse VAE, wav2vec2-base; default 512x512 (64x64 latents).
- ``reduced``: the same channels (320, 640, 1280, 1280), heads, 768-wide image and audio
  tokens, audio and motion modules, face locator, audio projection, VAE and wav2vec2-base,
  but ONE layer per UNet block instead of two (both UNets; 1.60 B parameters instead of 2.42),
  and by default 64x64 frames (8x8 latents, 1/64 of the full size's pixels) instead of 512x512.
- ``tiny``: ``checkpoints.tiny.tiny_hallo_config()`` (the tiny official-layout folder's net),
  the tiny VAE and the tiny wav2vec2; 64x64.

Per clip the pipeline VAE-encodes the reference and 2 motion frames, runs the ReferenceNet on
them for both CFG halves (plus the K/V projection), projects the 16 frames' audio, runs
``--steps`` denoiser steps (one CFG-batched call each: batch 2 x 16 frames, the motion modules
also reading the 2 motion frames) and decodes 16 frames. wav2vec2 runs once over the audio.
"Projected" adds those parts up at 40 steps (the official count) at 25 fps, 16 frames a clip.
``--clips N`` times N real clips through ``HalloPipeline.clips`` at ``--steps`` and prints
them beside what the parts predict, so the projection can be checked.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import diffusers
import numpy as np
import torch
import transformers
from diffusers import AutoencoderKL
from transformers import Wav2Vec2Config

from genhuman.audio_features.wav2vec import FPS, SAMPLE_RATE, build_wav2vec, wav2vec_features
from genhuman.checkpoints.tiny import tiny_hallo_config, tiny_vae, tiny_wav2vec_config
from genhuman.models.audio_attention import HalloMasks
from genhuman.models.hallo import HalloConfig, HalloNet
from genhuman.pipelines.hallo import CLIP_LENGTH, MOTION_FRAMES, HalloPipeline, HalloPortrait
from genhuman.pipelines.hallo_conditions import attention_levels

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402
from timing import median_ms, sync  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PROJECTED_STEPS = 40  # the official inference steps
WAV2VEC_SECONDS = 10.0
DEFAULT_SIZE = {"tiny": 64, "reduced": 64, "sd15": 512}
SKIPPABLE = ("vae", "wav2vec")
GPU_COMMAND = ("python benchmarks/bench_hallo.py --config sd15 --device cuda --dtype float16 --steps 40 "
               "--clips 2 --write")


# ------------------------------------------------------------------ the networks

def hallo_config(name: str) -> HalloConfig:
    if name == "tiny":
        return tiny_hallo_config()
    config = HalloConfig.sd15()
    if name == "reduced":  # one layer per block in both UNets; everything else full size
        config.reference_unet = dataclasses.replace(config.reference_unet, layers_per_block=1)
        config.denoising_unet = dataclasses.replace(config.denoising_unet, layers_per_block=1)
    return config


def build_vae(name: str) -> AutoencoderKL:
    if name == "tiny":
        return tiny_vae()
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=2, norm_num_groups=32, sample_size=512, scaling_factor=0.18215)


def wav2vec_config(name: str) -> Wav2Vec2Config:
    return tiny_wav2vec_config() if name == "tiny" else Wav2Vec2Config()  # the defaults are wav2vec2-base


def build_pipeline(name: str, device: torch.device, dtype: torch.dtype) -> HalloPipeline:
    torch.manual_seed(0)
    with torch.device(device):  # initialised in place: no CPU copy of 2.4 B parameters on a GPU run
        net, vae = HalloNet(hallo_config(name)), build_vae(name)
    return HalloPipeline(vae, net, device=device, dtype=dtype)


def parameters(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e9


# ------------------------------------------------------------------ inputs

def random_portrait(pipe: HalloPipeline, size: int) -> HalloPortrait:
    """A random image with a centred face box and soft face / lip masks (what the conditions give)."""
    g = torch.Generator().manual_seed(1)
    pixels = torch.rand(3, size, size, generator=g) * 2 - 1
    region = torch.zeros(3, size, size)
    region[:, size // 5: size * 4 // 5, size // 4: size * 3 // 4] = 1.0
    face, lip = np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8)
    face[10:54, 14:50], lip[38:48, 24:40] = 200, 255
    masks = HalloMasks(attention_levels(255 - face, size), attention_levels(face, size), attention_levels(lip, size))
    return pipe.portrait(pixels, region, torch.randn(1, 512, generator=g), masks)


def random_windows(pipe: HalloPipeline, frames: int) -> torch.Tensor:
    """Per-frame wav2vec windows (frames, 5, layers, hidden) of the audio projection's geometry."""
    audio = pipe.net.config.audioproj
    return torch.randn(frames, audio.seq_len, audio.blocks, audio.channels, generator=torch.Generator().manual_seed(2))


# ------------------------------------------------------------------ timing

@torch.inference_mode()
def part_timings(pipe: HalloPipeline, portrait: HalloPortrait, args: argparse.Namespace) -> dict[str, float]:
    """Milliseconds of each part, keyed as :func:`projected_clip_ms` reads them."""
    dev, dt, lat = pipe.device, pipe.dtype, portrait.size // pipe.vae_factor

    def timed(fn: Callable[[], Any]) -> float:
        return median_ms(fn, dev, args.repeats, args.warmup)

    images = portrait.pixels[None].repeat(1 + MOTION_FRAMES, 1, 1, 1).to(dev, dt)
    ms: dict[str, float] = {}
    if "vae" in args.skip:
        ref_latents = torch.randn(1 + MOTION_FRAMES, 4, lat, lat, device=dev, dtype=dt)
    else:
        ms["vae_encode"] = timed(lambda: pipe.vae.encode(images).latent_dist.mean)
        ref_latents = pipe.vae.encode(images).latent_dist.mean * pipe.latent_scale
    prepare = lambda: pipe.net.prepare_reference(ref_latents, portrait.image_tokens, bank_dtype=torch.float16)  # noqa: E731
    ms["reference"] = timed(prepare)
    reference = prepare()
    windows = random_windows(pipe, CLIP_LENGTH).to(dev, dt)
    ms["audioproj"] = timed(lambda: pipe.audioproj(windows[None]))
    audio = pipe.audioproj(windows[None])
    audio = torch.cat([torch.zeros_like(audio), audio])  # the CFG uncond half: zero audio tokens
    face = torch.cat([torch.zeros_like(portrait.face_features), portrait.face_features])
    sample = torch.randn(2, 4, CLIP_LENGTH, lat, lat, device=dev, dtype=dt)
    t = torch.tensor(500, device=dev)
    ms["denoiser"] = timed(lambda: pipe.unet(sample, t, portrait.image_tokens, audio_tokens=audio, face_features=face,
                                             masks=portrait.masks, motion_scale=(1.0, 1.0, 1.0), reference=reference,
                                             use_reference=[False, True]))
    if "vae" not in args.skip:
        latents = torch.randn(1, 4, args.decode_batch, lat, lat, device=dev)
        ms["decode_frame"] = timed(lambda: pipe.decode_pixels(latents, args.decode_batch)) / args.decode_batch
    if "wav2vec" not in args.skip:
        model = build_wav2vec(wav2vec_config(args.config)).to(dev)
        wave = np.random.default_rng(0).standard_normal(int(WAV2VEC_SECONDS * SAMPLE_RATE)).astype(np.float32) * 0.1
        ms["wav2vec_10s"] = timed(lambda: wav2vec_features(model, wave, clip_length=CLIP_LENGTH))
    return ms


def projected_clip_ms(ms: dict[str, float], steps: int) -> float | None:
    """One clip's milliseconds from its parts (None when a part was skipped)."""
    needed = ("vae_encode", "reference", "audioproj", "denoiser", "decode_frame")
    if any(k not in ms for k in needed):
        return None
    return ms["vae_encode"] + ms["reference"] + ms["audioproj"] + steps * ms["denoiser"] + CLIP_LENGTH * ms["decode_frame"]


def seconds_per_video_second(ms: dict[str, float], steps: int) -> float | None:
    clip = projected_clip_ms(ms, steps)
    if clip is None or "wav2vec_10s" not in ms:
        return None
    return (FPS / CLIP_LENGTH * clip + ms["wav2vec_10s"] / WAV2VEC_SECONDS) / 1000


@torch.inference_mode()
def end_to_end(pipe: HalloPipeline, portrait: HalloPortrait, clips: int, steps: int, decode_batch: int) -> list[float]:
    """Seconds of each of ``clips`` real clips through ``HalloPipeline.clips`` (CFG 3.5)."""
    windows = random_windows(pipe, clips * CLIP_LENGTH)
    seconds, start = [], time.perf_counter()
    for _ in pipe.clips(portrait, windows, steps=steps, decode_batch=decode_batch):
        sync(pipe.device)
        seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
    return seconds


# ------------------------------------------------------------------ report

PART_ROWS = (
    ("vae_encode", "VAE encode, reference + 2 motion frames (per clip)"),
    ("reference", "reference-net pass, 3 latents x 2 CFG halves + K/V (per clip)"),
    ("audioproj", "audio projection, 16 frames (per clip)"),
    ("denoiser", "denoiser CFG step: batch 2 x 16 frames (+ 2 motion frames)"),
    ("decode_frame", "VAE decode (per frame, {decode_batch} per call)"),
    ("wav2vec_10s", "wav2vec2 features (per 10 s of audio)"),
)


def describe(args: argparse.Namespace, pipe: HalloPipeline) -> list[str]:
    unet = pipe.net.config.denoising_unet
    lat = args.size // pipe.vae_factor
    threads = f", {torch.get_num_threads()} threads" if pipe.device.type == "cpu" else ""
    gpu = f", {torch.cuda.get_device_name(pipe.device)}" if pipe.device.type == "cuda" else ""
    return [f"# Hallo benchmark, config {args.config} ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
            f"- machine: {machine()}{threads}{gpu}",
            f"- torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}",
            f"- command: `python benchmarks/bench_hallo.py {' '.join(args.argv)}`",
            f"- geometry: {args.config}: UNet channels {tuple(unet.block_out_channels)}, "
            f"{unet.layers_per_block} layer(s) per block, HalloNet {parameters(pipe.net):.2f} B parameters, "
            f"VAE {parameters(pipe.vae) * 1000:.3g} M; {args.size}x{args.size} ({lat}x{lat} latents), "
            f"{str(pipe.dtype).replace('torch.', '')}, random weights", ""]


def table(ms: dict[str, float], args: argparse.Namespace, clip_seconds: list[float]) -> list[str]:
    lines = [f"| part (median of {args.repeats}, {args.warmup} warm-up) | ms |", "|---|---:|"]
    lines += [f"| {label.format(decode_batch=args.decode_batch)} | {ms[key]:.1f} |" for key, label in PART_ROWS
              if key in ms]
    clip40, video40 = projected_clip_ms(ms, PROJECTED_STEPS), seconds_per_video_second(ms, PROJECTED_STEPS)
    lines += ["", "| projected / measured | s |", "|---|---:|"]
    if clip40 is not None:
        lines.append(f"| projected: one 16-frame clip at {PROJECTED_STEPS} steps | {clip40 / 1000:.1f} |")
    if video40 is not None:
        lines.append(f"| projected: seconds per second of video (25 fps) at {PROJECTED_STEPS} steps | {video40:.1f} |")
    if "denoiser" in ms:
        lines.append(f"| denoising alone, per second of video at {PROJECTED_STEPS} steps | "
                     f"{FPS / CLIP_LENGTH * PROJECTED_STEPS * ms['denoiser'] / 1000:.1f} |")
    predicted = projected_clip_ms(ms, args.steps)
    for i, seconds in enumerate(clip_seconds):
        guess = "" if predicted is None else f" (the parts predict {predicted / 1000:.1f})"
        lines.append(f"| measured: clip {i + 1} through HalloPipeline.clips at {args.steps} step(s){guess} | "
                     f"{seconds:.1f} |")
    return lines


def footer(device: torch.device, started: float) -> list[str]:
    lines = [""]
    if device.type == "cuda":
        lines.append(f"- peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    else:
        lines.append(f"- peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB")
    lines.append(f"- total benchmark wall time: {time.perf_counter() - started:.0f} s")
    lines.append(f"- full size on a GPU: `{GPU_COMMAND}`")
    return lines


# ------------------------------------------------------------------ main

def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=list(DEFAULT_SIZE), default="reduced")
    parser.add_argument("--size", type=int, help="frame side, a multiple of 64 (default: 64 / 128 / 512)")
    parser.add_argument("--steps", type=int, default=PROJECTED_STEPS, help="denoising steps of the --clips run")
    parser.add_argument("--clips", type=int, default=1, help="clips through HalloPipeline.clips (0: none)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    parser.add_argument("--decode-batch", type=int, default=8, help="frames per VAE decode call (the pipeline's)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", default="", help=f"comma list of parts not to time: {', '.join(SKIPPABLE)}")
    parser.add_argument("--write", action="store_true", help="write benchmarks/results/hallo_<config>_<device>.md")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.size = args.size or DEFAULT_SIZE[args.config]
    args.skip = {s for s in args.skip.split(",") if s}
    if args.skip - set(SKIPPABLE):
        parser.error(f"--skip takes {', '.join(SKIPPABLE)}, got {', '.join(sorted(args.skip - set(SKIPPABLE)))}")
    if args.skip and args.clips:
        parser.error("--clips runs every part; use --clips 0 with --skip")
    if args.size % 64 or args.size <= 0:
        parser.error(f"--size must be a positive multiple of 64, got {args.size}")
    if args.repeats < 1 or args.warmup < 0 or args.steps < 1 or args.clips < 0:
        parser.error("--repeats and --steps must be at least 1, --warmup and --clips at least 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    device, dtype, started = torch.device(args.device), getattr(torch, args.dtype), time.perf_counter()
    torch.backends.cuda.matmul.allow_tf32 = True
    print(f"full size on a GPU: {GPU_COMMAND}", flush=True)
    pipe = build_pipeline(args.config, device, dtype)
    portrait = random_portrait(pipe, args.size)
    header = describe(args, pipe)
    print("\n".join(header), flush=True)
    ms = part_timings(pipe, portrait, args)
    clip_seconds = end_to_end(pipe, portrait, args.clips, args.steps, args.decode_batch) if args.clips else []
    body = table(ms, args, clip_seconds) + footer(device, started)
    print("\n".join(body))
    lines = header + body
    if args.write:
        path = RESULTS / f"hallo_{args.config}_{device.type}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
