"""Peak memory of ``genhuman animate --engine hallo|hallo2`` against the length of the audio
(the tiny official-layout folder, CPU), and when the first clip reaches the MP4.

Builds the tiny folder (``save_tiny_hallo_folder``), makes speech-like audio of each length
(examples/speech.wav looped, a different gain per repeat), then runs the CLI once per length,
each in a fresh process (this script with ``--child``), and reads that process's peak RSS from
``os.wait4``. The child times every clip's start (``HalloPipeline._denoise_clip``) and every
frame written (``VideoWriter.write``) from the moment ``animate`` starts, so the output shows
that clip 1's 16 frames are in the file before clip 2 starts.

    OMP_NUM_THREADS=1 python benchmarks/bench_hallo_memory.py [--minutes 1 10] [--engine hallo2] [--steps 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_memory_audio_length import make_audio  # speech.wav looped (this folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
PORTRAIT = ROOT / "examples" / "astronaut.png"
SIZE = 64  # the tiny net's frames


def child(args: argparse.Namespace) -> None:
    """The CLI in this process, with clip starts and frame writes timed; JSON on stdout's last line."""
    from genhuman.cli import main as cli
    from genhuman.media import VideoWriter
    from genhuman.pipelines.hallo import HalloPipeline

    events: list[tuple[str, float]] = []
    denoise, write = HalloPipeline._denoise_clip, VideoWriter.write
    started = time.perf_counter()

    def clip_started(self, *a, **k):
        events.append(("clip", time.perf_counter() - started))
        return denoise(self, *a, **k)

    def frame_written(self, frame):
        events.append(("write", time.perf_counter() - started))
        return write(self, frame)

    HalloPipeline._denoise_clip = clip_started  # type: ignore[method-assign]
    VideoWriter.write = frame_written  # type: ignore[method-assign]
    code = cli(["animate", str(PORTRAIT), args.child, "-o", args.output, "--engine", args.engine, "--weights",
                args.weights, "--steps", str(args.steps), "--width", str(SIZE), "--no-progress"])
    clips = [t for kind, t in events if kind == "clip"]
    writes = [t for kind, t in events if kind == "write"]
    print(json.dumps({"code": code, "clips": len(clips), "frames": len(writes),
                      "first_clip_start_s": clips[0] if clips else None,
                      "first_frame_written_s": writes[0] if writes else None,
                      "clip1_last_frame_written_s": writes[15] if len(writes) > 15 else None,
                      "clip2_start_s": clips[1] if len(clips) > 1 else None}))


def peak_rss_of(command: list[str]) -> tuple[float, bytes]:
    """(peak RSS in MB, stdout) of a child, its usage read with os.wait4 (output via files, so
    no pipe can fill up while we wait)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if code != 0:
            raise SystemExit(f"animate failed (exit {code}): {err.read().decode(errors='replace')[-800:]}")
        return usage.ru_maxrss / 1024.0, out.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--engine", default="hallo2", choices=("hallo", "hallo2"))
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    import torch

    from genhuman.checkpoints import save_tiny_hallo_folder

    print(f"machine: {platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"torch {torch.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"engine {args.engine}, tiny official-layout folder, {SIZE}x{SIZE}, {args.steps} step(s), CFG 3.5")
    rows = []
    with tempfile.TemporaryDirectory(prefix="genhuman-bench-hallo-") as tmp:
        weights = save_tiny_hallo_folder(Path(tmp) / "pretrained_models", "hallo")
        (weights / "hallo2").mkdir()
        shutil.copyfile(weights / "hallo" / "net.pth", weights / "hallo2" / "net.pth")
        for minutes in args.minutes:
            audio, output = Path(tmp) / f"speech_{minutes:g}min.wav", Path(tmp) / "out.mp4"
            make_audio(audio, minutes)
            started = time.perf_counter()
            peak, stdout = peak_rss_of([sys.executable, __file__, "--child", str(audio), "--output", str(output),
                                           "--weights", str(weights), "--engine", args.engine,
                                           "--steps", str(args.steps)])
            figures = json.loads(stdout.decode().strip().splitlines()[-1])
            figures.update(minutes=minutes, peak_rss_mb=peak, wall_s=time.perf_counter() - started,
                           mp4_mb=output.stat().st_size / 1e6)
            rows.append(figures)
            print(f"{minutes:g} min: peak RSS {peak:.1f} MB, {figures['clips']} clips, {figures['frames']} frames, "
                  f"wall {figures['wall_s']:.1f} s, mp4 {figures['mp4_mb']:.2f} MB; clip 1 started at "
                  f"{figures['first_clip_start_s']:.3f} s, its first frame written at "
                  f"{figures['first_frame_written_s']:.3f} s and its 16th at {figures['clip1_last_frame_written_s']:.3f} s, "
                  f"clip 2 started at {figures['clip2_start_s']:.3f} s", flush=True)
            audio.unlink()
    if len(rows) > 1:
        print(f"ratio longest/shortest peak RSS: {rows[-1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.3f}")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / f"hallo_memory_{args.engine}.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
