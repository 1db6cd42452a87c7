"""Peak memory of ``genhuman animate`` (lite) against the length of the audio.

Makes speech-like audio of each length (examples/speech.wav, 22.05 kHz 16-bit, looped with a
gain that changes per repeat so no two seconds are alike in level), then runs
``python -m genhuman animate examples/astronaut.png <audio> -o <mp4> --max-size 128`` once per
length, each in a fresh process, and reads that process's peak RSS from ``os.wait4``.

``--src DIR`` runs another checkout's ``src`` (e.g. ``git worktree add /tmp/before <commit>``)
with this venv, for before/after figures. Usage:

    OMP_NUM_THREADS=1 python benchmarks/bench_memory_audio_length.py [--minutes 2 60] [--src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_audio(path: Path, minutes: float) -> None:
    """examples/speech.wav looped to ``minutes``, written repeat by repeat (flat memory here too)."""
    with wave.open(str(ROOT / "examples" / "speech.wav"), "rb") as source:
        rate = source.getframerate()
        speech = np.frombuffer(source.readframes(source.getnframes()), "<i2").astype(np.float32)
    total = int(minutes * 60 * rate)
    rng = np.random.default_rng(0)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        written = 0
        while written < total:
            piece = speech[: total - written] * rng.uniform(0.5, 1.0)
            out.writeframes(np.clip(piece, -32768, 32767).astype("<i2").tobytes())
            written += len(piece)


def run_animate(audio: Path, output: Path, src: Path | None, max_size: int) -> dict:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
    command = [sys.executable, "-m", "genhuman", "animate", str(ROOT / "examples" / "astronaut.png"),
               str(audio), "-o", str(output), "--max-size", str(max_size)]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"animate failed (exit {code}): {stderr.strip()[-500:]}")
    return {"peak_rss_mb": usage.ru_maxrss / 1024.0, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "mp4_mb": output.stat().st_size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[2.0, 60.0])
    parser.add_argument("--max-size", type=int, default=128)
    parser.add_argument("--src", type=Path, default=None, help="another checkout's src/ to run")
    parser.add_argument("--label", default="")
    args = parser.parse_args()

    import av
    import torch

    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
          f"{platform.system()} {platform.release()}, load {os.getloadavg()[0]:.1f}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, av {av.__version__}, "
          f"torch {torch.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"source: {args.src or ROOT / 'src'} {args.label}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="genhuman-bench-") as tmp:
        for minutes in args.minutes:
            audio = Path(tmp) / f"speech_{minutes:g}min.wav"
            make_audio(audio, minutes)
            figures = run_animate(audio, Path(tmp) / "out.mp4", args.src, args.max_size)
            figures["minutes"] = minutes
            rows.append(figures)
            print(f"{minutes:g} min: peak RSS {figures['peak_rss_mb']:.1f} MB, wall {figures['wall_s']:.1f} s, "
                  f"CPU {figures['cpu_s']:.1f} s, mp4 {figures['mp4_mb']:.1f} MB", flush=True)
            audio.unlink()
    if len(rows) > 1:
        print(f"ratio longest/shortest peak RSS: {rows[-1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.3f}")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    name = "memory_audio_length" + (f"_{args.label}" if args.label else "") + ".json"
    (results / name).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
