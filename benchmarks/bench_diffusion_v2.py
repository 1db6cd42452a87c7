"""EchoMimic V2 speed: ``python benchmarks/bench_diffusion.py --family v2 --size 768 ...``.

Same random-weight modules as the V1 benchmark (``bench_diffusion.build``) with a 3-channel
PoseEncoder, run end to end through ``EchoMimicV2Engine.animate`` from the portrait and
speech only (the reference is aligned with MediaPipe and the hand track generated from the
speech). Per-module milliseconds include the hands-only control rendering and the PoseEncoder.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from bench_diffusion import (DTYPES, FPS, GEOMETRIES, ROOT, _machine, build, check_size, finish_report, make_engine,
                             median_ms, parse_configs, speech_wave, sync)
from genhuman.engines.echomimic_v2 import EchoMimicV2Engine
from genhuman.media import load_image
from genhuman.models import ConditionEncoder, ConditionEncoderConfig
from genhuman.pipelines import EchoMimicV2Pipeline
from genhuman.pose.generate import generate_pose
from genhuman.pose.render import control_frames
from genhuman.request import AnimateRequest


def _pose_encoder(channels: int, device, dtype) -> ConditionEncoder:
    encoder = ConditionEncoder(ConditionEncoderConfig.sd15(conditioning_channels=3, embedding_channels=channels))
    with torch.no_grad():
        for p in encoder.parameters():
            p.normal_(0, 0.02)
    return encoder.to(device, dtype)


@torch.inference_mode()
def module_timings(pipe: EchoMimicV2Pipeline, size: int, window_batch: int, decode_batch: int,
                   repeats: int) -> list[tuple[str, float]]:
    dev, dt, lat = pipe.device, pipe.dtype, size // pipe.vae_factor
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    kv = pipe.encode_reference(image).kv
    pose = generate_pose(12, draw_params=(size, size, 0, size, 0, size))
    window = torch.arange(12, device=dev)[None]
    rows = 2 * window_batch
    sample = torch.randn(rows, 4, 12, lat, lat, device=dev, dtype=dt)
    audio = torch.randn(rows, 12, 50, 384, device=dev, dtype=dt)
    controls = torch.from_numpy(control_frames(pose, range(12), size, size))[None].to(dev, dt)
    cond = pipe.condition_encoder(controls).repeat(rows, 1, 1, 1, 1)
    flags = torch.tensor([False] * window_batch + [True] * window_batch, device=dev)
    latents = torch.randn(1, 4, decode_batch, lat, lat, device=dev)
    return [
        ("hands-only rendering (12 frames, CPU)", median_ms(lambda: control_frames(pose, range(12), size, size),
                                                            torch.device("cpu"), repeats)),
        ("PoseEncoder (12 frames)", median_ms(lambda: pipe.condition_encoder(controls), dev, repeats)),
        ("pose_control features (1 window: render + encode, cache cold)", median_ms(
            lambda: pipe.pose_control(pose, size, size).features(window), dev, repeats)),
        ("encode_reference (VAE + ReferenceNet + K/V, once per avatar)", median_ms(
            lambda: pipe.encode_reference(image), dev, repeats)),
        (f"denoiser forward ({window_batch} windows x 12 frames, CFG batched)", median_ms(
            lambda: pipe.denoising_unet(sample, 999, audio, cond, kv, flags), dev, repeats)),
        (f"VAE decode ({decode_batch} frames)", median_ms(
            lambda: sum(1 for _ in pipe.decode(latents, decode_batch)), dev, repeats)),
    ]


class DenoiseClock:
    """A progress callback that remembers when the last denoising step was reported."""

    def __init__(self) -> None:
        self.denoised: float | None = None

    def __call__(self, fraction: float, message: str) -> None:
        if message.startswith("denoising step"):
            self.denoised = time.perf_counter()


def run_v2(args, argv: list[str] | None) -> None:
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    torch.backends.cuda.matmul.allow_tf32 = True
    started = time.perf_counter()
    modules = build(args.geometry, device, dtype)
    modules["condition_encoder"] = _pose_encoder(GEOMETRIES[args.geometry][0][0], device, dtype)
    engine, pipe, _ = make_engine(EchoMimicV2Engine, modules, "v2", device, dtype, args.compile)
    check_size(pipe, args.size)
    image = load_image(ROOT / "examples" / "astronaut.png")
    wave = speech_wave(args.frames)

    lines = [f"# EchoMimic V2 diffusion benchmark ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"- machine: {_machine(device)}",
             f"- command: `python {' '.join(['benchmarks/bench_diffusion.py'] + (argv or sys.argv[1:]))}`",
             f"- geometry: {args.geometry} (UNet channels {GEOMETRIES[args.geometry][0]}), {args.size}x{args.size}, "
             f"{args.frames} frames at {FPS} fps, dtype {str(dtype).replace('torch.', '')}, random weights",
             f"- EchoMimicV2Engine.animate, window_batch {args.window_batch}, decode_batch {args.decode_batch}"
             + (", torch.compile" if args.compile else "")
             + "; photo + audio only (MediaPipe alignment, generated hand track)", "",
             "## Per module (median of %d)" % args.repeats, "", "| module | ms |", "|---|---:|"]
    for name, ms in module_timings(pipe, args.size, args.window_batch, args.decode_batch, args.repeats):
        lines.append(f"| {name} | {ms:.1f} |")
        print(lines[-1], flush=True)
    lines += ["", "## End to end (align, whisper + pose, reference, denoise, decode, MP4)", "",
              "avatar: alignment + reference encoding; denoise: whisper, hand track and sampling; "
              "decode: VAE decode and MP4 writing.", "",
              "| steps | cfg | frames | seconds | frames/s | avatar | denoise | decode |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        for steps, cfg in parse_configs(args.configs):
            request = AnimateRequest(width=args.size, height=args.size, steps=steps, cfg=cfg, extra={
                "window_batch": args.window_batch, "decode_batch": args.decode_batch, "max_frames": args.frames})
            clock = DenoiseClock()
            sync(device)
            start = time.perf_counter()
            result = engine.animate(image, wave, Path(tmp) / "v2.mp4", request, progress=clock)
            sync(device)
            total = time.perf_counter() - start
            avatar = result.timings["load"] + result.timings["avatar"]
            denoised = (clock.denoised - start) if clock.denoised is not None else float("nan")
            lines.append(f"| {steps} | {cfg:g} | {result.frames} | {total:.1f} | {result.frames / total:.3f} "
                         f"| {avatar:.1f} | {denoised - avatar:.1f} | {total - denoised:.1f} |")
            print(lines[-1], flush=True)
    finish_report(lines, device, started, args.markdown)
