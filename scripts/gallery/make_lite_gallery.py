"""Contact sheets of the lite engine for issue 10's three test portraits.

    .venv/bin/python scripts/gallery/make_lite_gallery.py OUT_FOLDER [--example examples/astronaut.png]
    .venv/bin/python scripts/gallery/make_lite_gallery.py docs/img --cell 128 --palette   # the docs' copies

For each portrait of ``genhuman.eval.realism.gallery_portraits`` (example, 1024 px close-up,
grey) it writes ``OUT_FOLDER/<prefix><portrait>.png`` (prefix ``lite_``), three rows:

1. mouth moments, cropped around the mouth: the photo, an open vowel (AA/AE/AH), a rounded one
   (OW/UW/W), F/V, a closure (M/B/P) and a silence;
2. a blink, cropped around the eyes: the photo, then every frame of the first blink of the
   engine's motion track, one frame either side;
3. head motion: the photo and the frames of largest roll and shift either way, whole, with the
   difference to the photo x4 of the frame that moved most (the background should stay black).

The speech is synthesized with the bundled Piper voice (its output varies a little from run to
run), sentences separated by 0.6 s of silence, and aligned to its transcript; the frames come
from ``LiteEngine.stream``. ``OUT_FOLDER/<prefix>gallery.json`` names each cell's frame and time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SENTENCES = ("Father saw a large cart.", "Who knew you would go so soon?", "Five very fine violins.",
             "Bob may bump my map.")
PAUSE_S = 0.6
FPS = 25
CELL = 192
MOMENTS = (("open", {"AA", "AE", "AH", "AO"}), ("round", {"OW", "UW", "W"}), ("f/v", {"F", "V"}),
           ("closed", {"M", "B", "P"}))


def speech(folder: Path) -> tuple[np.ndarray, str]:
    """The sentences spoken one after another with a pause between, 16 kHz."""
    from genhuman.media import load_audio
    from genhuman.speech.tts import synthesize_to_file

    pieces = []
    pause = np.zeros(int(PAUSE_S * 16000), np.float32)
    for k, sentence in enumerate(SENTENCES):
        path = synthesize_to_file(sentence, folder / f"s{k}.wav")
        pieces += [pause, load_audio(path)]
    return np.concatenate([*pieces, pause]), " ".join(SENTENCES)


def moment_frames(phones, frames: int) -> dict[str, tuple[int, str]]:
    """Frame of the middle of the longest phone of each kind, and of the longest silence."""
    chosen = {}
    for name, kinds in MOMENTS:
        candidates = [p for p in phones if p.phone in kinds]
        if candidates:
            best = max(candidates, key=lambda p: p.end - p.start)
            chosen[name] = (min(frames - 1, int((best.start + best.end) / 2 * FPS)), f"{best.phone} {best.word}")
    quiet = [p for p in phones if not p.is_speech and 0 < p.start]
    if quiet:
        best = max(quiet, key=lambda p: p.end - p.start)
        chosen["silence"] = (min(frames - 1, int((best.start + best.end) / 2 * FPS)), "pause")
    return chosen


def head_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """Roll (degrees, the eye line) and the stable points' centre (x, y) of one face."""
    from genhuman.face import landmark_indices as idx

    right, left = landmarks[idx.RIGHT_EYE_CORNERS[0]], landmarks[idx.LEFT_EYE_CORNERS[0]]
    roll = float(np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0])))
    centre = landmarks[list(idx.STABLE)].mean(axis=0)
    return roll, float(centre[0]), float(centre[1])


def crop_square(image: np.ndarray, centre: np.ndarray, side: float) -> np.ndarray:
    half = side / 2.0
    x0, y0 = int(round(centre[0] - half)), int(round(centre[1] - half))
    padded = cv2.copyMakeBorder(image, int(side), int(side), int(side), int(side), cv2.BORDER_REPLICATE)
    piece = padded[y0 + int(side):y0 + int(side) + int(side), x0 + int(side):x0 + int(side) + int(side)]
    return cv2.resize(piece, (CELL, CELL), interpolation=cv2.INTER_AREA if side > CELL else cv2.INTER_CUBIC)


def labelled(cell: np.ndarray, text: str) -> np.ndarray:
    cell = cell.copy()
    scale = 0.42
    while scale > 0.25 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > CELL - 6:
        scale -= 0.02  # long labels in small cells: a smaller font, not a cut one
    cv2.rectangle(cell, (0, CELL - 16), (CELL, CELL), (0, 0, 0), -1)
    cv2.putText(cell, text, (3, CELL - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return cell


def sheet(rows: list[list[np.ndarray]]) -> np.ndarray:
    width = max(len(r) for r in rows)
    blank = np.full((CELL, CELL, 3), 32, np.uint8)
    return np.vstack([np.hstack(r + [blank] * (width - len(r))) for r in rows])


def portrait_sheet(name: str, photo: np.ndarray, wave: np.ndarray, text: str) -> tuple[np.ndarray, dict]:
    from genhuman.engines.base import AnimateRequest
    from genhuman.engines.lite.engine import LiteEngine
    from genhuman.engines.lite.motion import MotionStream
    from genhuman.engines.output import audio_chunks
    from genhuman.face import FaceTracker, landmark_indices as idx
    from genhuman.speech.track import plan_phones

    engine = LiteEngine()
    request = engine.validate(AnimateRequest(text=text))
    avatar = engine.prepare_avatar(photo)
    face = np.asarray(avatar.arrays["landmarks"])
    plan = plan_phones(wave, text)

    def frames():
        return engine.stream(avatar, audio_chunks(wave, 1.0), request, phones=plan)

    poses = []
    with FaceTracker() as tracker:  # pass 1: where the head is in each frame
        for frame in frames():
            found = tracker.track(frame.image)
            poses.append(head_pose(found.landmarks) if found is not None else (np.nan,) * 3)
    n = len(poses)
    pose = np.asarray(poses, np.float64)
    moments = moment_frames(plan.phones, n)
    motion = MotionStream(FPS, request.seed or 0)
    weights = np.array([motion.next(0.0).blink for _ in range(n)])
    blinking = np.nonzero(weights > 0)[0]
    blink = []
    if blinking.size:
        first = blinking[0]
        last = first
        while last + 1 < n and weights[last + 1] > 0:
            last += 1
        blink = list(range(max(0, first - 1), min(n, last + 2)))
    extremes = {}
    for column, label in ((0, "roll"), (1, "x"), (2, "y")):
        if np.isfinite(pose[:, column]).any():
            extremes[f"{label} min"] = int(np.nanargmin(pose[:, column]))
            extremes[f"{label} max"] = int(np.nanargmax(pose[:, column]))
    wanted = {k for k, _ in moments.values()} | set(blink) | set(extremes.values())
    kept = {f.index: f.image for f in frames() if f.index in wanted}  # pass 2: the frames shown

    mouth = face[list(idx.LIPS_OUTER)]
    mouth_centre, mouth_side = mouth.mean(axis=0), 2.2 * float(np.ptp(mouth[:, 0]))
    eyes = face[[idx.RIGHT_EYE_CORNERS[0], idx.LEFT_EYE_CORNERS[0]]]
    eye_centre, eye_side = eyes.mean(axis=0), 1.5 * float(np.linalg.norm(eyes[1] - eyes[0]))
    whole = (np.array([photo.shape[1], photo.shape[0]]) / 2.0, float(max(photo.shape[:2])))
    rows = [[labelled(crop_square(photo, mouth_centre, mouth_side), "photo")],
            [labelled(crop_square(photo, eye_centre, eye_side), "photo")],
            [labelled(crop_square(photo, *whole), "photo")]]
    for label, (k, said) in moments.items():
        rows[0].append(labelled(crop_square(kept[k], mouth_centre, mouth_side), f"{label} {said} #{k}"))
    for k in blink:
        rows[1].append(labelled(crop_square(kept[k], eye_centre, eye_side), f"#{k} lid {weights[k]:.2f}"))
    for label, k in extremes.items():
        rows[2].append(labelled(crop_square(kept[k], *whole), f"{label} #{k}"))
    if extremes:
        moved = max(extremes.values(), key=lambda k: float(np.abs(kept[k].astype(int) - photo).mean()))
        diff = np.clip(np.abs(kept[moved].astype(np.int16) - photo.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
        rows[2].append(labelled(crop_square(diff, *whole), f"|#{moved} - photo| x4"))
    index = {"portrait": name, "size": f"{photo.shape[1]}x{photo.shape[0]}", "frames": n, "fps": FPS,
             "mouth": {label: {"frame": k, "time_s": round(k / FPS, 2), "phone": said}
                       for label, (k, said) in moments.items()},
             "blink": [{"frame": k, "lid_weight": round(float(weights[k]), 3)} for k in blink],
             "head": {label: {"frame": k, "roll_deg": round(pose[k, 0], 2), "centre_x": round(pose[k, 1], 1),
                              "centre_y": round(pose[k, 2], 1)} for label, k in extremes.items()}}
    return sheet(rows), index


def main() -> int:
    global CELL
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the PNG sheets (created)")
    parser.add_argument("--example", type=Path, default=ROOT / "examples" / "astronaut.png")
    parser.add_argument("--cell", type=int, default=CELL, help="side of one cell in px (default %(default)s)")
    parser.add_argument("--palette", action="store_true", help="write 256-colour PNGs (smaller files)")
    parser.add_argument("--prefix", default="lite_", help="file name prefix (default %(default)s; the docs' "
                        "sheets: lite_before_, lite_after_)")
    args = parser.parse_args()
    if not 64 <= args.cell <= 512:
        print("error: --cell must be between 64 and 512", file=sys.stderr)
        return 2
    CELL = args.cell
    from genhuman.errors import InputError
    from genhuman.eval.realism import gallery_portraits
    from genhuman.media import save_image

    try:
        portraits = gallery_portraits(args.example)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wave, text = speech(Path(tmp))
    indexes = []
    for name, photo in portraits.items():
        image, index = portrait_sheet(name, photo, wave, text)
        path = args.out / f"{args.prefix}{name}.png"
        if args.palette:  # 256 colours: a third of the bytes, for sheets kept in the repository
            from PIL import Image

            Image.fromarray(image).quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        else:
            save_image(path, image)
        indexes.append(index)
        print(f"{path}: {image.shape[1]}x{image.shape[0]}, {path.stat().st_size // 1024} KB", flush=True)
    (args.out / f"{args.prefix}gallery.json").write_text(json.dumps({"text": text, "sheets": indexes}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
