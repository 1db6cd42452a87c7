"""Lite engine benchmark: rendering speed, whole-demo wall time, lip sync and identity.

    .venv/bin/python benchmarks/bench_lite.py            # speed + quality, writes results
    .venv/bin/python benchmarks/bench_lite.py --no-quality
    .venv/bin/python benchmarks/bench_lite.py --realism --label before   # issue 10's table only

Speed: the render loop at 512x512 (the example portrait) with a real mouth track,
excluding model load (face mesh, speech analysis) and excluding encoding; then the same
loop streaming into the MP4 writer; then ``genhuman animate`` on the demo as a
subprocess (everything: imports, models, speech, render, encode).

Quality: ``genhuman eval lipsync`` and ``genhuman eval identity`` on the demo and on a
second sample: the astronaut mirrored, cropped off-centre and enlarged to 480x640 (a
different framing and face scale: the face is ~2.3x larger than in the demo), speaking
a different sentence synthesized with the bundled Piper voice, animated WITHOUT a
transcript (phone recognition instead of alignment).

Realism (``--realism``, issue 10): the three test portraits of ``genhuman.eval.realism``
(the example, a 1024 px close-up, greyscale) speak ``examples/speech.wav`` through the
engine's ``stream`` (frames as arrays, before encoding) and through ``VideoWriter`` + decoding
(the MP4); every frame is scored by ``realism.score_frame``. Writes
benchmarks/results/lite_realism_LABEL.md and .json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from genhuman.engines.base import AnimateRequest
from machine import machine  # benchmarks/machine.py (this script's folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
RESULTS = ROOT / "benchmarks" / "results" / "lite.md"
REALISM_FPS = 25
STILL_FRAMES = 50  # the reference: the photo written this many times by the same writer
GENHUMAN = [sys.executable, "-m", "genhuman"]
SECOND_TEXT = ("The weather on the station is calm today. We checked the solar panels, "
               "then we had lunch together. Tomorrow we will repeat the experiment.")


def versions() -> str:
    import mediapipe

    return (f"python {platform.python_version()}, numpy {np.__version__}, opencv {cv2.__version__}, "
            f"mediapipe {mediapipe.__version__}")


def render_speed(frames: int) -> dict:
    from genhuman.engines.lite.engine import frame_weights
    from genhuman.engines.lite.motion import blink_weights, head_motion
    from genhuman.engines.lite.render import Renderer
    from genhuman.face import face_landmarks, person_mask
    from genhuman.media import VideoWriter, load_audio, load_image
    from genhuman.speech import mouth_track

    image = load_image(EXAMPLES / "astronaut.png")
    wave = load_audio(EXAMPLES / "speech.wav")
    track = mouth_track(wave, 25, text=(EXAMPLES / "speech.txt").read_text())
    landmarks = face_landmarks(image).landmarks
    started = time.perf_counter()
    renderer = Renderer(image, landmarks, person=person_mask(image, landmarks))  # as LiteEngine builds it
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


def realism_scores(photo: np.ndarray, wave: np.ndarray, text: str, folder: Path) -> dict:
    """Issue 10's figures for one portrait: per-frame scores before and after encoding, summarised."""
    from genhuman.engines.lite.engine import LiteEngine
    from genhuman.engines.lite.motion import MotionStream
    from genhuman.engines.output import audio_chunks
    from genhuman.eval import realism
    from genhuman.eval.lipsync import lipsync_stats, measure_lipsync, silence_mask
    from genhuman.eval.tracks import mouth_opening
    from genhuman.eval.tracks import loudness_track
    from genhuman.face import FaceTracker, face_landmarks
    from genhuman.media import VideoWriter, iter_video_frames
    from genhuman.speech.track import plan_phones

    engine = LiteEngine()
    request = engine.validate(AnimateRequest(text=text))
    avatar = engine.prepare_avatar(photo)
    face = np.asarray(avatar.arrays["landmarks"])
    ref = realism.reference_of(photo, face, realism.segment_person(photo))
    plan = plan_phones(wave, text)
    video, still = folder / "talk.mp4", folder / "still.mp4"
    rendered, landmarks = [], []
    render_s = 0.0
    with VideoWriter(video, REALISM_FPS, audio=wave) as writer, FaceTracker() as tracker:
        frames = engine.stream(avatar, audio_chunks(wave, 1.0), request, phones=plan)
        while True:
            started = time.perf_counter()
            frame = next(frames, None)
            render_s += time.perf_counter() - started
            if frame is None:
                break
            writer.write(frame.image)
            found = tracker.track(frame.image)
            landmarks.append(None if found is None else found.landmarks)
            rendered.append(realism.score_frame(ref, frame.image, landmarks[-1]))
    encoded = [realism.score_frame(ref, image, landmarks[k] if k < len(landmarks) else None)
               for k, image in enumerate(iter_video_frames(video))]
    with VideoWriter(still, REALISM_FPS, audio=None) as writer:
        for _ in range(STILL_FRAMES):
            writer.write(photo)
    stills = [realism.score_frame(ref, image, None) for image in iter_video_frames(still)]

    n = len(rendered)
    ratios = np.array([s.eye_ratio for s in rendered])
    open_ratio = float(np.nanmedian(ratios))
    silent, _ = silence_mask(loudness_track(wave, REALISM_FPS, n), REALISM_FPS)
    rest = silent & (np.nan_to_num(ratios, nan=0.0) >= realism.OPEN_EYES * open_ratio)
    # Calibration: the photo moved by each rest frame's head motion alone (what a perfect frame would score).
    rigid = []
    for k in np.nonzero(rest)[0]:
        moved = realism.rigidly_moved(photo, face, landmarks[k])
        rigid.append(realism.score_frame(ref, moved, face_landmarks(moved).landmarks))
    # The blinks the engine plays (its motion stream replayed: blinks depend on time and seed only).
    motion = MotionStream(REALISM_FPS, request.seed or 0)
    weights = np.array([motion.next(0.0).blink for _ in range(n)])
    spans, halves = realism.weight_runs(weights, 0.0), realism.weight_runs(weights, 0.5)
    seen = realism.blink_runs(ratios, open_ratio)  # what the face mesh sees on the frames
    deepest = [start + int(np.argmax(weights[start:stop])) for start, stop in spans]
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)[realism.lid_skin(face, photo.shape)]

    def pick(scores: list, field: str, where: np.ndarray | None = None) -> list[float]:
        values = [getattr(s, field) for k, s in enumerate(scores) if where is None or (k < len(where) and where[k])]
        return [v for v in values if np.isfinite(v)]

    def stats(values: list[float]) -> dict:
        worst, median = realism.worst_and_median(values)
        return {"worst": worst, "median": median, "frames": len(values)}

    sync = measure_lipsync(video)
    at_rest = lipsync_stats(sync.opening, sync.loudness_db, REALISM_FPS, mouth_opening(face))  # --portrait
    return {
        "lipsync": {"correlation": sync.correlation, "best_lag": sync.best_lag,
                    "best_correlation": sync.best_correlation, "closed_in_silence": sync.closed_in_silence,
                    "closed_silence_frames": sync.closed_silence_frames, "silence_frames": sync.silence_frames,
                    "closed_at_portrait_rest": at_rest.closed_in_silence, "portrait_opening": at_rest.rest_opening},
        "size": f"{photo.shape[1]}x{photo.shape[0]}", "frames": n, "rest_frames": int(rest.sum()),
        "background_px": int(ref.background.sum()),
        "background_rendered": stats(pick(rendered, "background_psnr")),
        "background_mp4": stats(pick(encoded, "background_psnr")),
        "background_still_mp4": stats(pick(stills, "background_psnr")),
        "sharpness_rendered_rest": stats(pick(rendered, "sharpness", rest)),
        "sharpness_mp4_rest": stats(pick(encoded, "sharpness", rest)),
        "sharpness_still_mp4": stats(pick(stills, "sharpness")),
        "sharpness_first_frame": rendered[0].sharpness,
        "teeth_px": int(ref.teeth.sum()),
        "teeth_rendered_rest": stats(pick(rendered, "teeth_psnr", rest)),
        "teeth_mp4_rest": stats(pick(encoded, "teeth_psnr", rest)),
        "teeth_rigid_rest": stats(pick(rigid, "teeth_psnr")),
        "sharpness_rigid_rest": stats(pick(rigid, "sharpness")),
        "mouth_chroma_max": float(max(s.mouth_chroma for s in rendered)),
        "photo_chroma_max": ref.photo_chroma,
        "blinks_ms": realism.run_durations_ms(spans, REALISM_FPS),
        "blinks_half_closed_ms": realism.run_durations_ms(halves, REALISM_FPS),
        "blinks_seen_ms": realism.run_durations_ms(seen, REALISM_FPS),
        "blink_frames": [list(r) for r in spans], "blink_weights": [float(w) for w in weights if w > 0],
        "blink_deepest_ratio": [float(ratios[k] / open_ratio) for k in deepest],
        "open_eye_ratio": open_ratio, "photo_eye_ratio": ref.open_ratio,
        "sclera_median": ref.sclera, "sclera_p99": ref.sclera_top,
        "blink_above_sclera": [rendered[k].above_sclera for k in deepest],
        "blink_above_sclera_p99": [rendered[k].above_sclera_top for k in deepest],
        "blink_off_lid_tones": [rendered[k].off_lid_tones for k in deepest],
        "photo_off_lid_tones": realism.off_tones(photo, ref.eyes, *ref.lid_tones),
        "lid_skin_above_sclera": float(np.mean(grey > ref.sclera)) if grey.size else float("nan"),
        "lid_skin_above_sclera_p99": float(np.mean(grey > ref.sclera_top)) if grey.size else float("nan"),
        "stream_fps": n / render_s if render_s > 0 else float("nan"),
    }


def _fmt(stat: dict, digits: int = 1) -> str:
    if not stat["frames"]:
        return "n/a"
    return f"{stat['worst']:.{digits}f} / {stat['median']:.{digits}f}"


def realism_table(results: dict[str, dict], render_fps: float) -> list[str]:
    names = list(results)
    rows = [("background PSNR outside the person, rendered frames: worst / median (dB)", "background_rendered", 1,
             ">= 45"),
            ("background PSNR, through the MP4: worst / median (dB)", "background_mp4", 1,
             "within 1 dB of the still"),
            ("background PSNR, the still photo written by VideoWriter: worst / median (dB)",
             "background_still_mp4", 1, "(reference)"),
            ("eye sharpness frame / photo at rest, rendered: worst / median", "sharpness_rendered_rest", 3,
             ">= 0.95"),
            ("eye sharpness at rest, through the MP4: worst / median", "sharpness_mp4_rest", 3, ">= 0.9"),
            ("eye sharpness, the still photo through the MP4: worst / median", "sharpness_still_mp4", 3,
             "(reference)"),
            ("teeth PSNR at rest, rendered: worst / median (dB)", "teeth_rendered_rest", 1, ">= 35 (close-up)"),
            ("teeth PSNR at rest, through the MP4: worst / median (dB)", "teeth_mp4_rest", 1, ""),
            ("calibration, the photo moved by each rest frame's head motion alone (one cubic warp): teeth PSNR",
             "teeth_rigid_rest", 1, "(reference)"),
            ("calibration, the same: eye sharpness", "sharpness_rigid_rest", 3, "(reference)")]
    lines = ["| figure | " + " | ".join(names) + " | target |", "|---|" + "---|" * len(names) + "---|"]

    def sync(n: str) -> str:
        ls = results[n]["lipsync"]
        return (f"r {ls['correlation']:.3f} at lag 0, best {ls['best_correlation']:.3f} at {ls['best_lag']:+d}; "
                f"{ls['closed_in_silence']:.0%} ({ls['closed_silence_frames']}/{ls['silence_frames']}); "
                f"{ls['closed_at_portrait_rest']:.0%} with the portrait's rest ({ls['portrait_opening']:.3f})")

    lines.append("| lip sync through the MP4 (genhuman eval lipsync): correlation; closed in silence; the same "
                 "with --portrait (its own opening counts as closed) | "
                 + " | ".join(sync(n) for n in names) + " | r >= 0.6 at lag within 1; >= 95% |")
    for label, key, digits, target in rows:
        lines.append(f"| {label} | " + " | ".join(_fmt(results[n][key], digits) for n in names) + f" | {target} |")

    def row(label: str, cells: list[str], target: str) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {target} |")

    row("eye sharpness, first frame, rendered", [f"{results[n]['sharpness_first_frame']:.3f}" for n in names], "")
    row("max chroma in the mouth region (all frames, rendered) / the photo's max chroma",
        [f"{results[n]['mouth_chroma_max']:.1f} / {results[n]['photo_chroma_max']:.1f}" for n in names],
        "<= the photo's (grey)")
    def ms(values: list[float]) -> str:
        return ", ".join(f"{v:.0f}" for v in values) or "none"

    row("blink durations (ms): frames with any lid weight / with the lid half closed or more (motion track)",
        [f"{ms(results[n]['blinks_ms'])} / {ms(results[n]['blinks_half_closed_ms'])}" for n in names],
        "(the lid moves 240-280)")
    row("blinks the face mesh sees on the frames (eye-aspect ratio < 0.8 x open, ms); deepest ratio / open",
        [f"{ms(results[n]['blinks_seen_ms'])}; " + ", ".join(f"{v:.2f}" for v in results[n]["blink_deepest_ratio"])
         for n in names], "150-250")
    row("deepest blink frames: share of the eye pixels above the sclera median / above its 99th pct",
        [", ".join(f"{a:.1%}/{b:.1%}" for a, b in zip(results[n]["blink_above_sclera"],
                                                      results[n]["blink_above_sclera_p99"])) or "n/a"
         for n in names], "0 above the sclera")
    row("deepest blink frames: share of the eye pixels outside the photo's lid-skin tones (1st-99th pct); "
        "the open eye in the photo",
        [", ".join(f"{v:.1%}" for v in results[n]["blink_off_lid_tones"]) + f"; {results[n]['photo_off_lid_tones']:.1%}"
         for n in names], "near 0 (only skin and lid tones)")
    row("the photo's lid skin above the sclera median / 99th pct (what a skin lid gives)",
        [f"{results[n]['lid_skin_above_sclera']:.1%}/{results[n]['lid_skin_above_sclera_p99']:.1%}" for n in names],
        "(reference)")
    row("stream (mouth tracking + render), frames/s", [f"{results[n]['stream_fps']:.0f}" for n in names], "")
    row("render loop 512x512, encoding excluded, frames/s", [f"{render_fps:.0f}", "", ""], ">= 150")
    row("frames (rest frames: silence >= 240 ms, eyes open) / size",
        [f"{results[n]['frames']} ({results[n]['rest_frames']}) / {results[n]['size']}" for n in names], "")
    row("background pixels / photo's teeth pixels",
        [f"{results[n]['background_px']} / {results[n]['teeth_px']}" for n in names], "")
    return lines


def realism(label: str, frames: int, write: bool) -> None:
    from genhuman.eval.realism import gallery_portraits
    from genhuman.media import load_audio

    wave = load_audio(EXAMPLES / "speech.wav")
    text = (EXAMPLES / "speech.txt").read_text()
    speed = render_speed(frames)
    print(f"render loop {speed['size']}: {speed['render_fps']:.1f} frames/s", flush=True)
    results = {}
    for name, photo in gallery_portraits(EXAMPLES / "astronaut.png").items():
        with tempfile.TemporaryDirectory() as tmp:
            results[name] = realism_scores(photo, wave, text, Path(tmp))
        print(name, json.dumps({k: v for k, v in results[name].items() if not isinstance(v, dict)}), flush=True)
    table = realism_table(results, speed["render_fps"])
    print("\n".join(table))
    if not write:
        return
    stem = ROOT / "benchmarks" / "results" / f"lite_realism_{label}"
    text_out = [
        f"# Lite engine realism ({label})", "",
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  ",
        f"machine: {machine()}  ", f"versions: {versions()}  ",
        f"command: `.venv/bin/python benchmarks/bench_lite.py --realism --label {label}`", "",
        "Portraits (`genhuman.eval.realism.gallery_portraits`): example = examples/astronaut.png; closeup = "
        "a tight crop around the face mesh scaled to 1024 px; grey = the example in grey (3 channels). "
        "Speech: examples/speech.wav with its transcript, streamed through `LiteEngine.stream`, 25 fps, seed 0.",
        "", *table, "",
    ]
    stem.with_suffix(".md").write_text("\n".join(text_out))
    payload = {"label": label, "render_fps_512": speed["render_fps"], "portraits": results}
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {stem.relative_to(ROOT)}.md/.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=500, help="frames in the speed loops")
    parser.add_argument("--no-quality", action="store_true", help="speed only")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/lite.md")
    parser.add_argument("--realism", action="store_true", help="issue 10's realism table only")
    parser.add_argument("--label", default="before", help="results name for --realism (before, after)")
    args = parser.parse_args()
    if args.realism:
        print(f"machine: {machine()}\nversions: {versions()}", flush=True)
        realism(args.label, args.frames, not args.no_write)
        return

    lines = [f"machine: {machine()}", f"versions: {versions()}"]
    print("\n".join(lines), flush=True)
    speed = render_speed(args.frames)
    print(f"render loop {speed['size']}: {speed['render_fps']:.1f} frames/s "
          f"(with encoding: {speed['render_encode_fps']:.1f} frames/s; setup {speed['setup_ms']:.0f} ms)",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
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
