"""Lite engine benchmark: rendering speed, whole-demo wall time, lip sync and identity.

    .venv/bin/python benchmarks/bench_lite.py            # speed + quality, writes results
    .venv/bin/python benchmarks/bench_lite.py --no-quality

Speed: the render loop at 512x512 (the example portrait) with a real mouth track,
excluding model load (face mesh, speech analysis) and excluding encoding; then the same
loop streaming into the MP4 writer; then ``genhuman animate`` on the demo as a
subprocess (everything: imports, models, speech, render, encode).

Quality: ``genhuman eval lipsync`` and ``genhuman eval identity`` on the demo and on a
second sample: the astronaut mirrored, cropped off-centre and enlarged to 480x640 (a
different framing and face scale: the face is ~2.3x larger than in the demo), speaking
a different sentence synthesized with the bundled Piper voice, animated WITHOUT a
transcript (phone recognition instead of alignment).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
RESULTS = ROOT / "benchmarks" / "results" / "lite.md"
GENHUMAN = [sys.executable, "-m", "genhuman"]
SECOND_TEXT = ("The weather on the station is calm today. We checked the solar panels, "
               "then we had lunch together. Tomorrow we will repeat the experiment.")


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", load average %.1f (other work running)" % os.getloadavg()[0] if os.getloadavg()[0] > 0.5 else ""
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}{load}"


def versions() -> str:
    import mediapipe

    return (f"python {platform.python_version()}, numpy {np.__version__}, opencv {cv2.__version__}, "
            f"mediapipe {mediapipe.__version__}")


def render_speed(frames: int) -> dict[str, float]:
    from genhuman.engines.lite.engine import frame_weights
    from genhuman.engines.lite.motion import blink_weights, head_motion
    from genhuman.engines.lite.render import Renderer
    from genhuman.face import face_landmarks
    from genhuman.media import VideoWriter, load_audio, load_image
    from genhuman.speech import mouth_track

    image = load_image(EXAMPLES / "astronaut.png")
    wave = load_audio(EXAMPLES / "speech.wav")
    track = mouth_track(wave, 25, text=(EXAMPLES / "speech.txt").read_text())
    landmarks = face_landmarks(image).landmarks
    started = time.perf_counter()
    renderer = Renderer(image, landmarks)
    setup = time.perf_counter() - started
    rng = np.random.default_rng(0)
    blinks, head = blink_weights(track.n_frames, 25, rng), head_motion(track.loudness, 25, rng)
    weights = [frame_weights(track, blinks, head, k % track.n_frames) for k in range(frames)]
    renderer.render(weights[0])  # warm-up
    started = time.perf_counter()
    for w in weights:
        renderer.render(w)
    render_fps = frames / (time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with VideoWriter(Path(tmp) / "bench.mp4", 25, audio=None) as writer:
            for w in weights:
                writer.write(renderer.render(w))
        encode_fps = frames / (time.perf_counter() - started)
    return {"setup_ms": setup * 1000, "render_fps": render_fps, "render_encode_fps": encode_fps,
            "frames": frames, "size": f"{image.shape[1]}x{image.shape[0]}"}


def run(args: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([*GENHUMAN, *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - started, done.stdout.strip()


def demo_wall_time(out: Path) -> tuple[float, str]:
    return run(["animate", "examples/astronaut.png", "examples/speech.wav", "--text-file",
                "examples/speech.txt", "-o", str(out), "--no-progress"])


def second_sample(folder: Path) -> tuple[Path, Path]:
    from genhuman.media import load_image, save_image, save_wav
    from genhuman.speech import synthesize

    image = load_image(EXAMPLES / "astronaut.png")[20:290, 120:322][:, ::-1]  # crop, mirror
    portrait = folder / "second.png"
    save_image(portrait, cv2.resize(np.ascontiguousarray(image), (480, 640), interpolation=cv2.INTER_CUBIC))
    wave, rate = synthesize(SECOND_TEXT)
    wave16 = cv2.resize(wave[None, :], (int(len(wave) * 16000 / rate), 1), interpolation=cv2.INTER_AREA)[0]
    pause = np.zeros(int(0.6 * 16000), np.float32)  # silences inside the clip, not only at its ends
    half = len(wave16) // 2
    cut = half + int(np.argmin(np.abs(wave16[half:half + 8000])))
    speech = folder / "second.wav"
    save_wav(speech, np.concatenate([wave16[:cut], pause, wave16[cut:]]))
    return portrait, speech


def quality(portrait: Path, video: Path) -> dict:
    lipsync = json.loads(run(["eval", "lipsync", str(video), "--json"])[1])
    identity = json.loads(run(["eval", "identity", str(portrait), str(video), "--json"])[1])
    return {"lipsync": lipsync, "identity": identity}


def quality_rows(name: str, q: dict) -> list[str]:
    ls, ident = q["lipsync"], q["identity"]
    return [f"| {name} | {ls['best_correlation']:.3f} | {ls['best_lag']:+d} | {ls['correlation']:.3f} | "
            f"{ls['closed_in_silence']:.1%} ({ls['closed_silence_frames']}/{ls['silence_frames']}) | "
            f"{ident['mean_psnr']:.2f} / {ident['min_psnr']:.2f} | "
            f"{ident['mean_psnr_with_eyes']:.2f} / {ident['min_psnr_with_eyes']:.2f} |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=500, help="frames in the speed loops")
    parser.add_argument("--no-quality", action="store_true", help="speed only")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/lite.md")
    args = parser.parse_args()

    lines = [f"machine: {machine()}", f"versions: {versions()}"]
    print("\n".join(lines), flush=True)
    speed = render_speed(args.frames)
    print(f"render loop {speed['size']}: {speed['render_fps']:.1f} frames/s "
          f"(with encoding: {speed['render_encode_fps']:.1f} frames/s; setup {speed['setup_ms']:.0f} ms)",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        demo = ROOT / "out" / "demo.mp4"
        wall, said = demo_wall_time(demo)
        print(f"demo wall time: {wall:.1f} s ({said})", flush=True)
        rows = []
        if not args.no_quality:
            portrait, speech = second_sample(tmp)
            second = tmp / "second.mp4"
            run(["animate", str(portrait), str(speech), "-o", str(second), "--no-progress"])
            for name, picture, video in (("demo (astronaut, speech.wav, transcript)", EXAMPLES / "astronaut.png", demo),
                                         ("second (mirrored 480x640 crop, new Piper sentence, no transcript)",
                                          portrait, second)):
                q = quality(picture, video)
                rows += quality_rows(name, q)
                print(rows[-1], flush=True)
    if args.no_write:
        return
    text = [
        "# Lite engine benchmark", "",
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  ",
        f"machine: {machine()}  ", f"versions: {versions()}  ",
        "command: `.venv/bin/python benchmarks/bench_lite.py`", "",
        "## Speed", "",
        "| what | figure |", "|---|---|",
        f"| render loop, {speed['size']}, no model load, no encoding | {speed['render_fps']:.1f} frames/s |",
        f"| render loop + H.264 encoding (VideoWriter) | {speed['render_encode_fps']:.1f} frames/s |",
        f"| per-portrait setup (bases, lip sealing) | {speed['setup_ms']:.0f} ms |",
        f"| whole demo: `genhuman animate examples/astronaut.png examples/speech.wav --text-file "
        f"examples/speech.txt -o out/demo.mp4` (subprocess) | {wall:.1f} s for a 7.0 s clip |",
        "",
    ]
    if rows:
        text += [
            "## Quality", "",
            "Lip sync: `genhuman eval lipsync OUT.mp4` (targets: best r >= 0.6 within +-1 frame; "
            ">= 95% closed in silences >= 240 ms). Identity: `genhuman eval identity PORTRAIT OUT.mp4` "
            "(upper-face PSNR after undoing head motion, dB).", "",
            "| sample | best r | lag | r at 0 | closed in silence | PSNR mean / min | with eyes mean / min |",
            "|---|---|---|---|---|---|---|", *rows, "",
            "The second sample is the only other face available offline: the astronaut mirrored, "
            "cropped off-centre and enlarged (different framing, 2.3x face scale), with a new sentence.",
            "",
        ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(text))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
