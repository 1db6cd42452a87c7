"""EchoMimic V2 speed: ``python benchmarks/bench_diffusion.py --family v2 --size 768 ...``.

Same random-weight modules as the V1 benchmark (``bench_diffusion.build``) with a 3-channel
PoseEncoder, run through ``EchoMimicV2Pipeline`` from the portrait and speech only (the
reference is aligned with MediaPipe and the hand track generated from the speech).
Per-module milliseconds include the hands-only control rendering and the PoseEncoder.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from bench_diffusion import DTYPES, GEOMETRIES, ROOT, _machine, build, finish_report, median_ms, sync
from genhuman.audio_features.whisper import SAMPLE_RATE
from genhuman.media import load_audio, load_image
from genhuman.models import ConditionEncoder, ConditionEncoderConfig
from genhuman.pipelines.echomimic_v2 import EchoMimicV2Pipeline, EchoMimicV2Settings
from genhuman.pipelines.vae_io import decode_frames, encode_image
from genhuman.pose.generate import generate_pose
from genhuman.pose.render import control_frames


def _pose_encoder(channels: int, device, dtype) -> ConditionEncoder:
    encoder = ConditionEncoder(ConditionEncoderConfig.sd15(conditioning_channels=3, embedding_channels=channels))
    with torch.no_grad():
        for p in encoder.parameters():
            p.normal_(0, 0.02)
    return encoder.to(device, dtype)


@torch.inference_mode()
def module_timings(pipe: EchoMimicV2Pipeline, size: int, window_batch: int, decode_batch: int,
                   repeats: int) -> list[tuple[str, float]]:
    dev, dt, lat = pipe.device, pipe.dtype, size // 8
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    bank = pipe.reference_unet(encode_image(pipe.vae, image, dev, dt).to(dt), 0)
    kv = pipe.denoising_unet.prepare_reference(bank)
    pose = generate_pose(12, draw_params=(size, size, 0, size, 0, size))
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
        ("ReferenceNet (1 pass)", median_ms(lambda: pipe.reference_unet(encode_image(pipe.vae, image, dev, dt)
                                                                        .to(dt), 0), dev, repeats)),
        (f"denoiser forward ({window_batch} windows x 12 frames, CFG batched)", median_ms(
            lambda: pipe.denoising_unet(sample, 999, audio, cond, kv, flags), dev, repeats)),
        (f"VAE decode ({decode_batch} frames)", median_ms(
            lambda: sum(1 for _ in decode_frames(pipe.vae, latents, decode_batch, dt)), dev, repeats)),
    ]


def run_v2(args, argv: list[str] | None) -> None:
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    started = time.perf_counter()
    modules = build(args.geometry, device, dtype)
    modules["condition_encoder"] = _pose_encoder(GEOMETRIES[args.geometry][0][0], device, dtype)
    pipe = EchoMimicV2Pipeline(**modules, device=device, dtype=dtype, compile=args.compile)
    image = load_image(ROOT / "examples" / "astronaut.png")
    speech = load_audio(ROOT / "examples" / "speech.wav")
    seconds = args.frames / 24.0
    wave = np.tile(speech, int(np.ceil(seconds * SAMPLE_RATE / len(speech))))[: int(seconds * SAMPLE_RATE)]

    lines = [f"# EchoMimic V2 diffusion benchmark ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"- machine: {_machine(device)}",
             f"- command: `python {' '.join(['benchmarks/bench_diffusion.py'] + (argv or sys.argv[1:]))}`",
             f"- geometry: {args.geometry} (UNet channels {GEOMETRIES[args.geometry][0]}), {args.size}x{args.size}, "
             f"{args.frames} frames at 24 fps, dtype {str(dtype).replace('torch.', '')}, random weights",
             f"- window_batch {args.window_batch}, decode_batch {args.decode_batch}; photo + audio only "
             "(MediaPipe alignment, generated hand track)", "",
             "## Per module (median of %d)" % args.repeats, "", "| module | ms |", "|---|---:|"]
    for name, ms in module_timings(pipe, args.size, args.window_batch, args.decode_batch, args.repeats):
        lines.append(f"| {name} | {ms:.1f} |")
        print(lines[-1], flush=True)
    lines += ["", "## End to end (align, whisper + pose, reference, denoise, decode, MP4)", "",
              "| steps | cfg | frames | seconds | frames/s | align | denoise | decode |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        for pair in args.configs.split(","):
            steps, cfg = int(pair.split(":")[0]), float(pair.split(":")[1])
            settings = EchoMimicV2Settings(width=args.size, height=args.size, steps=steps, guidance_scale=cfg,
                                           window_batch=args.window_batch, decode_batch=args.decode_batch,
                                           max_frames=args.frames)
            sync(device)
            start = time.perf_counter()
            result = pipe(image, wave, Path(tmp) / "v2.mp4", settings)
            sync(device)
            total = time.perf_counter() - start
            t = result.timings
            lines.append(f"| {steps} | {cfg:g} | {result.frames} | {total:.1f} | {result.frames / total:.3f} "
                         f"| {t['align']:.1f} | {t['denoise']:.1f} | {t['decode']:.1f} |")
            print(lines[-1], flush=True)
    finish_report(lines, device, started, args.markdown)
