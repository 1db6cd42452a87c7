"""EchoMimic V1 speed: per-module milliseconds and end-to-end frames/s, ours vs a naive path.

    # full size on a GPU (SD-1.5 geometry, 512x512):
    python benchmarks/bench_diffusion.py --device cuda --dtype bf16
    # reduced size on a CPU (what fits in a couple of minutes):
    python benchmarks/bench_diffusion.py --device cpu --dtype fp32 --geometry reduced --size 256 \
        --frames 24 --configs 3:2.5,1:1.0

Random weights, real module sizes (``--geometry sd15``: the official SD-1.5 ReferenceNet,
denoiser with motion modules, FaceLocator, sd-vae-ft-mse VAE and whisper-tiny). Both paths
run the same networks and the same denoising loop, and write a real MP4 from the portrait:

- ours: ``EchoMimicEngine.animate`` over ``EchoMimicPipeline`` (the avatar's reference K/V
  projected once per video, ``--window-batch`` windows and both CFG halves in one UNet call,
  VAE decode in chunks of ``--decode-batch``);
- naive, the official structure: reference K/V re-projected on every UNet call, one
  window per call, separate unconditional and conditional calls, one frame per VAE decode.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import numpy as np
import torch
from diffusers import AutoencoderKL

from timing import median_ms, sync  # noqa: F401  (bench_diffusion_v2 imports them from here)

from genhuman.audio_features.whisper import (SAMPLE_RATE, build_whisper_encoder, frame_tokens, official_frame_count,
                                             whisper_config_from_dims, whisper_features)
from genhuman.checkpoints.layout import get_variant
from genhuman.engines.echomimic import EchoMimicEngine
from genhuman.media import VideoWriter, load_audio, load_image
from genhuman.models import (ConditionEncoder, ConditionEncoderConfig, EchoUNet3D, ReferenceUNet2D, UNet3DConfig,
                             UNetConfig)
from genhuman.pipelines import EchoMimicPipeline, ReferenceVideoPipeline
from genhuman.pipelines.face_crop import FaceCrop
from genhuman.request import AnimateRequest
from genhuman.sampling import WindowSchedule, denoise, echomimic_scheduler, initial_noise

ROOT = Path(__file__).resolve().parents[1]
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
WHISPER_TINY = dict(n_mels=80, n_audio_ctx=1500, n_audio_state=384, n_audio_head=6, n_audio_layer=4)
GEOMETRIES = {
    # UNet block channels, VAE block channels
    "sd15": ((320, 640, 1280, 1280), (128, 256, 512, 512)),
    "reduced": ((64, 128, 256, 256), (32, 64, 128, 128)),  # same depth and layout, ~1/25 of the FLOPs
}
FPS, SEED = 24, 420  # the official V1 fps and seed (what the engine fills in)
CONTEXT = WindowSchedule(12, 3, 2)  # the official audio-model windows (EchoMimicEngine.window_schedule)


def build(geometry: str, device: torch.device, dtype: torch.dtype) -> dict:
    unet_channels, vae_channels = GEOMETRIES[geometry]
    torch.manual_seed(0)
    with torch.device(device):  # initialise in place: no CPU copy of 2 B parameters on a GPU run
        modules = dict(
            vae=AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=vae_channels,
                              down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                              layers_per_block=2, norm_num_groups=32),
            reference_unet=ReferenceUNet2D(UNetConfig.sd15(block_out_channels=unet_channels)),
            denoising_unet=EchoUNet3D(UNet3DConfig.sd15(block_out_channels=unet_channels)),
            condition_encoder=ConditionEncoder(ConditionEncoderConfig.sd15(embedding_channels=unet_channels[0])),
        )
    for module in modules.values():
        module.to(dtype)
    modules["audio_encoder"] = build_whisper_encoder(whisper_config_from_dims(WHISPER_TINY)).to(device)
    return modules


def make_engine(engine_class, modules: dict, variant: str, device: torch.device, dtype: torch.dtype,
                compile: bool = False):
    """(engine over the in-process networks, its pipeline, its audio encoder)."""
    engine = engine_class.from_components(SimpleNamespace(**modules), get_variant(variant), device=device, dtype=dtype)
    loaded = engine.load(AnimateRequest())  # the networks given in-process: no weights folder is read
    if compile:
        loaded.pipeline.unet = torch.compile(loaded.pipeline.denoising_unet, dynamic=False)
    return engine, loaded.pipeline, loaded.audio_encoder


def check_size(pipe: ReferenceVideoPipeline, size: int) -> None:
    if size % pipe.size_multiple:
        raise SystemExit(f"--size must be a multiple of {pipe.size_multiple} for these networks, got {size}")


@torch.no_grad()
def vae_latent(pipe: ReferenceVideoPipeline, image: np.ndarray) -> torch.Tensor:
    """The VAE half of ``pipe.encode_reference``: the scaled posterior mean, no ReferenceNet."""
    pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0 * 2.0 - 1.0
    return pipe.vae.encode(pixels.to(pipe.device, pipe.dtype)).latent_dist.mean.float() * pipe.latent_scale


def speech_wave(frames: int) -> np.ndarray:
    """``examples/speech.wav`` repeated or cut to ``frames`` frames at 24 fps."""
    speech = load_audio(ROOT / "examples" / "speech.wav")
    samples = int(frames / FPS * SAMPLE_RATE)
    return np.tile(speech, int(np.ceil(samples / len(speech))))[:samples]


def parse_configs(text: str) -> list[tuple[int, float]]:
    return [(int(pair.split(":")[0]), float(pair.split(":")[1])) for pair in text.split(",")]


@torch.inference_mode()
def module_timings(pipe: EchoMimicPipeline, audio_encoder, size: int, window_batch: int, decode_batch: int,
                   repeats: int) -> list[tuple[str, float]]:
    dev, dt, lat = pipe.device, pipe.dtype, size // pipe.vae_factor
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    ref_latent = vae_latent(pipe, image).to(dt)
    bank = pipe.reference_unet(ref_latent, 0)
    kv = pipe.denoising_unet.prepare_reference(bank)
    rows = 2 * window_batch
    sample = torch.randn(rows, 4, 12, lat, lat, device=dev, dtype=dt)
    audio = torch.randn(rows, 12, 50, 384, device=dev, dtype=dt)
    cond = torch.randn(rows, pipe.denoising_unet.config.block_out_channels[0], 1, lat, lat, device=dev, dtype=dt)
    flags = torch.tensor([False] * window_batch + [True] * window_batch, device=dev)
    mask = np.ones((size, size), np.float32)
    latents = torch.randn(1, 4, decode_batch, lat, lat, device=dev)
    wave = np.random.default_rng(0).standard_normal(SAMPLE_RATE * 30).astype(np.float32) * 0.1
    return [
        ("VAE encode (1 image)", median_ms(lambda: vae_latent(pipe, image), dev, repeats)),
        ("encode_reference (VAE + ReferenceNet + K/V, once per avatar)", median_ms(
            lambda: pipe.encode_reference(image), dev, repeats)),
        (f"VAE decode ({decode_batch} frames)", median_ms(
            lambda: sum(1 for _ in pipe.decode(latents, decode_batch)), dev, repeats)),
        ("ReferenceNet (1 pass)", median_ms(lambda: pipe.reference_unet(ref_latent, 0), dev, repeats)),
        ("prepare_reference (K/V of 16 blocks)", median_ms(lambda: pipe.denoising_unet.prepare_reference(bank),
                                                           dev, repeats)),
        ("FaceLocator (mask_control)", median_ms(lambda: pipe.mask_control(mask), dev, repeats)),
        (f"denoiser forward ({window_batch} windows x 12 frames, CFG batched)", median_ms(
            lambda: pipe.denoising_unet(sample, 999, audio, cond, kv, flags), dev, repeats)),
        ("denoiser forward (1 window x 12 frames, 1 half)", median_ms(
            lambda: pipe.denoising_unet(sample[:1], 999, audio[:1], cond[:1], kv, flags[-1:]), dev, repeats)),
        ("whisper-tiny encoder (30 s of audio)", median_ms(lambda: whisper_features(audio_encoder, wave),
                                                           dev, repeats)),
    ]


@torch.inference_mode()
def naive_animate(pipe: EchoMimicPipeline, audio_encoder, image: np.ndarray, wave: np.ndarray, output: Path,
                  size: int, steps: int, guidance_scale: float, max_frames: Optional[int]) -> int:
    """The official pipeline's structure with the same networks (see the module docstring);
    the same frame counts, noise, windows and uncond semantics as the engine."""
    from genhuman.face import face_landmarks

    dev, dt = pipe.device, pipe.dtype
    face = face_landmarks(image)
    crop = FaceCrop.official(face.box, image.shape[1], image.shape[0])
    features = whisper_features(audio_encoder, wave)
    n = official_frame_count(features.shape[0], FPS)  # generated; the speech's frames are written
    written = min(n, max(1, round(len(wave) / SAMPLE_RATE * FPS)))
    if max_frames:
        n, written = min(n, max_frames), min(written, max_frames)
    tokens = frame_tokens(features, FPS, n).to(dev, dt)
    bank = pipe.reference_unet(vae_latent(pipe, crop.crop(image, size)).to(dt), 0)  # no K/V projection here
    control = pipe.mask_control(crop.mask(size))  # the face locator, once per video (as the official code)
    lat = size // pipe.vae_factor
    latents = initial_noise((1, 4, n, lat, lat), SEED, 1.5, dev)

    def predict(sample, t, frames, uncond):
        outs = []
        for is_uncond in ([True, False] if bool(uncond.any()) else [False]):
            rows = sample[uncond == is_uncond].to(dt)
            kv = pipe.denoising_unet.prepare_reference(bank)  # re-projected on every call
            keep = 0.0 if is_uncond else 1.0
            outs.append(pipe.denoising_unet(rows, t, audio_tokens=tokens[frames] * keep,
                                            cond=control.features(frames) * keep, reference=kv,
                                            use_reference=torch.tensor([not is_uncond], device=dev)))
        return torch.cat(outs)

    latents = denoise(latents, echomimic_scheduler(), predict, steps=steps, guidance_scale=guidance_scale,
                      schedule=CONTEXT, window_batch=1)
    with VideoWriter(output, FPS, size, size, audio=wave, sample_rate=SAMPLE_RATE) as writer:
        for frame in pipe.decode(latents[:, :, :written], 1):  # one frame per VAE call
            writer.write(frame)
    return written


def end_to_end(engine, pipe, audio_encoder, image, wave, request: AnimateRequest, naive: bool,
               out_dir: Path) -> tuple[float, int]:
    sync(pipe.device)
    start = time.perf_counter()
    if naive:
        frames = naive_animate(pipe, audio_encoder, image, wave, out_dir / "naive.mp4", request.width,
                               request.steps, request.cfg, request.extra.get("max_frames"))
    else:
        frames = engine.animate(image, wave, out_dir / "ours.mp4", request).frames
    sync(pipe.device)
    return time.perf_counter() - start, frames


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=list(DTYPES), default=None, help="default: bf16 on cuda, fp32 on cpu")
    parser.add_argument("--geometry", choices=list(GEOMETRIES), default="sd15")
    parser.add_argument("--size", type=int, default=512, help="a multiple of 64 (the networks' size multiple)")
    parser.add_argument("--frames", type=int, default=48, help="video length for the end-to-end runs")
    parser.add_argument("--configs", default="30:2.5,6:1.0", help="steps:cfg pairs, comma separated")
    parser.add_argument("--window-batch", type=int, default=4)
    parser.add_argument("--decode-batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="torch.compile the denoiser (ours only)")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--family", choices=["v1", "v2"], default="v1",
                        help="v2: EchoMimicV2Engine with a PoseEncoder (benchmarks/bench_diffusion_v2.py)")
    args = parser.parse_args(argv)
    if args.family == "v2":
        from bench_diffusion_v2 import run_v2

        return run_v2(args, argv)
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    torch.backends.cuda.matmul.allow_tf32 = True

    started = time.perf_counter()
    engine, pipe, audio_encoder = make_engine(EchoMimicEngine, build(args.geometry, device, dtype), "audio",
                                              device, dtype, args.compile)
    check_size(pipe, args.size)
    image = load_image(ROOT / "examples" / "astronaut.png")
    wave = speech_wave(args.frames)

    lines = [f"# EchoMimic V1 diffusion benchmark ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"- machine: {_machine(device)}",
             f"- command: `python {' '.join(['benchmarks/bench_diffusion.py'] + (argv or sys.argv[1:]))}`",
             f"- geometry: {args.geometry} (UNet channels {GEOMETRIES[args.geometry][0]}), {args.size}x{args.size}, "
             f"{args.frames} frames at {FPS} fps, dtype {str(dtype).replace('torch.', '')}, random weights",
             f"- ours: EchoMimicEngine.animate, window_batch {args.window_batch}, decode_batch {args.decode_batch}"
             + (", torch.compile" if args.compile else ""), "",
             "## Per module (median of %d)" % args.repeats, "", "| module | ms |", "|---|---:|"]
    for name, ms in module_timings(pipe, audio_encoder, args.size, args.window_batch, args.decode_batch,
                                   args.repeats):
        lines.append(f"| {name} | {ms:.1f} |")
        print(lines[-1], flush=True)
    lines += ["", "## End to end (face, whisper, reference, denoise, decode, MP4)", "",
              "| steps | cfg | path | frames | seconds | frames/s | speed-up |", "|---:|---:|---|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        for steps, cfg in parse_configs(args.configs):
            request = AnimateRequest(width=args.size, steps=steps, cfg=cfg, extra={
                "window_batch": args.window_batch, "decode_batch": args.decode_batch, "max_frames": args.frames})
            ours_s, frames = end_to_end(engine, pipe, audio_encoder, image, wave, request, False, Path(tmp))
            lines.append(f"| {steps} | {cfg:g} | ours | {frames} | {ours_s:.1f} | {frames / ours_s:.3f} | |")
            print(lines[-1], flush=True)
            if not args.skip_naive:
                naive_s, frames = end_to_end(engine, pipe, audio_encoder, image, wave, request, True, Path(tmp))
                lines.append(f"| {steps} | {cfg:g} | naive | {frames} | {naive_s:.1f} | {frames / naive_s:.3f} "
                             f"| x{naive_s / ours_s:.2f} |")
                print(lines[-1], flush=True)
    finish_report(lines, device, started, args.markdown)


def finish_report(lines: list[str], device: torch.device, started: float, markdown: Optional[Path]) -> None:
    """Peak GPU memory and wall time, printed and written to ``markdown``."""
    if device.type == "cuda":
        lines += ["", f"- peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"]
    lines += ["", f"- total benchmark wall time: {time.perf_counter() - started:.0f} s"]
    print("\n".join(lines))
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text("\n".join(lines) + "\n")


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


if __name__ == "__main__":
    main()
