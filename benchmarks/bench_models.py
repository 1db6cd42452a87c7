"""Per-forward milliseconds of the EchoMimic networks at a given geometry (random weights).

    python benchmarks/bench_models.py --config tiny --latent 32 --frames 12 [--dtype bfloat16]

CFG batch of 2 (uncond without reference + cond with reference) in one forward, as the
pipelines call it. Prints ReferenceNet, prepare_reference and denoiser medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from genhuman.models import EchoUNet3D, ReferenceUNet2D, UNet3DConfig, UNetConfig


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", choices=["tiny", "sd15"], default="tiny")
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, args.dtype)
    make = (UNetConfig.tiny, UNet3DConfig.tiny) if args.config == "tiny" else (UNetConfig.sd15, UNet3DConfig.sd15)
    ref = ReferenceUNet2D(make[0]()).to(device, dtype).eval()
    den = EchoUNet3D(make[1]()).to(device, dtype).eval()
    s = args.latent
    latent = torch.randn(1, 4, s, s, device=device, dtype=dtype)
    x = torch.randn(2, 4, args.frames, s, s, device=device, dtype=dtype)
    audio = torch.randn(2, args.frames, 50, 384, device=device, dtype=dtype)
    flags = [False, True]
    with torch.no_grad():
        bank = ref(latent)
        kv = den.prepare_reference(bank)
        print(f"{args.config} {args.dtype} {device} latent {s}x{s}, CFG batch 2 x {args.frames} frames")
        print(f"  ReferenceNet:      {median_ms(lambda: ref(latent), args.repeats):8.1f} ms")
        print(f"  prepare_reference: {median_ms(lambda: den.prepare_reference(bank), args.repeats):8.1f} ms")
        print(f"  denoiser forward:  {median_ms(lambda: den(x, 500, audio, None, kv, flags), args.repeats):8.1f} ms")


if __name__ == "__main__":
    main()
