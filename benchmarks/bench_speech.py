"""Speech -> mouth track benchmark: speed on the 7 s example and on long audio, and how
well the opening follows loudness.

    .venv/bin/python benchmarks/bench_speech.py                 # prints, writes results
    .venv/bin/python benchmarks/bench_speech.py --long-minutes 0

Times exclude the one-off model loads (a warm-up call runs first; its time is reported
separately as "first call"). Correlation is Pearson's r between ``track.opening`` and the
per-frame loudness of the audio, both as linear RMS and through eval.lipsync's own
statistics (floored dB loudness, best lag, closed mouth in silences) on the track.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

from genhuman.eval.lipsync import lipsync_stats
from genhuman.eval.tracks import loudness_track
from genhuman.media import load_audio
from genhuman.speech import mouth_track

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "speech.md"
FPS = 25


def frame_rms(wave: np.ndarray, n_frames: int) -> np.ndarray:
    hop = 16000 / FPS
    return np.array([np.sqrt(np.mean(np.square(wave[int(k * hop) : int((k + 1) * hop)], dtype=np.float64)))
                     for k in range(n_frames)])


def timed(fn, repeats: int = 3) -> tuple[float, float, object]:
    """Best wall and best CPU seconds (CPU time is less disturbed by other work on a
    shared machine)."""
    wall, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--long-minutes", type=float, default=10.0)
    args = parser.parse_args()
    wave = load_audio(ROOT / "examples" / "speech.wav")
    text = (ROOT / "examples" / "speech.txt").read_text().strip()

    t0 = time.perf_counter()
    mouth_track(wave, FPS, text=text)
    first = time.perf_counter() - t0
    rows = []
    for label, kwargs in [("aligned (text)", {"text": text}), ("recognized (no text)", {}),
                          ("acoustic", {"mode": "acoustic"})]:
        seconds, cpu, track = timed(lambda kwargs=kwargs: mouth_track(wave, FPS, **kwargs))
        r_lin = np.corrcoef(track.opening, frame_rms(wave, track.n_frames))[0, 1]
        stats = lipsync_stats(track.opening, loudness_track(wave, FPS, track.n_frames), FPS)
        rows.append(f"| {label} | {track.source} | {seconds:.2f} s | {cpu:.2f} s | {r_lin:.3f} "
                    f"| {stats.correlation:.3f} "
                    f"| {stats.best_lag:+d} | {stats.closed_in_silence:.0%} |")

    lines = [
        "# Speech -> mouth track benchmark",
        "",
        f"- Date: {datetime.date.today()}; machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"2 cores (shared with other work while measured); Python {platform.python_version()}",
        "- Command: `.venv/bin/python benchmarks/bench_speech.py"
        + (f" --long-minutes {args.long_minutes:g}`" if args.long_minutes != 10 else "`"),
        f"- Clip: examples/speech.wav (7.0 s), {FPS} fps; first call incl. model loads: {first:.2f} s wall",
        f"- Load average while measured: {os.getloadavg()[0]:.1f} (the machine is shared)",
        "",
        "r(lipsync): eval.lipsync's correlation (floored dB loudness) applied to the track itself;",
        "closed: its share of closed frames inside silences >= 240 ms.",
        "",
        "| path | source | wall (best of 3) | CPU | r(opening, RMS) | r(lipsync) | best lag | closed |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    if args.long_minutes > 0:
        gap = np.zeros(8000, np.float32)
        reps = max(int(args.long_minutes * 60 / 7.5), 1)
        long_wave = np.concatenate([np.concatenate([wave, gap]) for _ in range(reps)])
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0, c0 = time.perf_counter(), time.process_time()
        track = mouth_track(long_wave, FPS)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        audio_s = len(long_wave) / 16000
        lines += ["", f"Long audio, no transcript (chunked recognition): {audio_s / 60:.1f} min of speech "
                  f"in {seconds:.1f} s wall, {cpu:.1f} s CPU ({audio_s / cpu:.1f}x real time per core), "
                  f"{track.n_frames} frames, "
                  f"{len(track.phones)} phones; peak RSS {rss0:.0f} -> {rss1:.0f} MB "
                  f"(the audio itself is {long_wave.nbytes / 2**20:.0f} MB)."]
    report = "\n".join(lines) + "\n"
    print(report)
    RESULTS.write_text(report)


if __name__ == "__main__":
    main()
