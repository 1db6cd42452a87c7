"""Streaming schedule of the diffusion engines: flat memory and time to the first frame.

Runs the tiny EchoMimic V1 networks (tests/pipelines/tiny_echomimic.py, random weights) in
the ``streaming`` schedule on speech that arrives in 40 ms chunks (examples/speech.wav,
looped, generated chunk by chunk so the whole waveform never exists), once per duration, each
in a fresh process, and prints peak RSS, time from the first chunk to the first frame, and
the frame rate. Usage: python benchmarks/bench_streaming.py [--minutes 1 10] [--size 64]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_one(minutes: float, size: int, steps: int) -> dict:
    sys.path.insert(0, str(ROOT / "tests" / "pipelines"))
    from types import SimpleNamespace

    import numpy as np
    import torch

    from genhuman.checkpoints.layout import get_variant
    from genhuman.engines.echomimic import EchoMimicEngine
    from genhuman.media import load_audio, load_image
    from genhuman.request import AnimateRequest
    from tiny_echomimic import tiny_components

    torch.set_num_threads(1)  # one thread: steady figures on a shared 2-core machine
    engine = EchoMimicEngine.from_components(SimpleNamespace(**tiny_components()), get_variant("audio"))
    request = AnimateRequest(width=size, steps=steps, cfg=1.0, schedule="streaming")
    avatar = engine.prepare_avatar(load_image(ROOT / "examples/astronaut.png"), request=request)
    speech = load_audio(ROOT / "examples/speech.wav")
    total = int(minutes * 60 * 16000)
    chunk = 640  # 40 ms
    first_chunk_at = []

    def chunks():
        for start in range(0, total, chunk):
            if not first_chunk_at:
                first_chunk_at.append(time.perf_counter())
            idx = np.arange(start, min(start + chunk, total)) % len(speech)
            yield speech[idx]

    frames, first_frame_s, checksum = 0, None, 0
    rss_at = {}
    for frame in engine.stream(avatar, chunks(), request):
        if first_frame_s is None:
            first_frame_s = time.perf_counter() - first_chunk_at[0]
        frames += 1
        checksum = (checksum + int(frame.image[::16, ::16].sum())) % 1_000_003
        if frames in (24 * 30, 24 * 60):
            rss_at[frames] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    elapsed = time.perf_counter() - first_chunk_at[0]
    return {"minutes": minutes, "frames": frames, "first_frame_s": round(first_frame_s, 3),
            "seconds": round(elapsed, 1), "fps": round(frames / elapsed, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_after_30s_60s_of_video_mb": rss_at}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.size, args.steps)))
        return
    import torch

    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"torch {torch.__version__}, 1 thread; tiny EchoMimic V1 (random weights), {args.size}x{args.size}, "
          f"{args.steps} step(s), no CFG, streaming schedule, audio in 40 ms chunks")
    for minutes in args.minutes:
        out = subprocess.run([sys.executable, __file__, "--one", str(minutes), "--size", str(args.size),
                              "--steps", str(args.steps)], capture_output=True, text=True, check=True)
        print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
