"""A synthetic raw video with known truth, for tests and the benchmark: shots cut from a
lite-engine render of a portrait (hard cuts at known frames), each shot clean or spoiled
in one known way (dark, blurred, frozen, shaken, no face, two faces, silent, audio shifted).

Consecutive shots alternate their zoom and tint so that every cut is a real change of
content, as between two camera set-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from genhuman.media import SAMPLE_RATE, VideoWriter, iter_video_frames, load_audio

FPS = 25
SHIFT_FRAMES = 10
DRIFT = 0.35

VARIANTS = ("clean", "dark", "blurred", "frozen", "shaken", "noface", "twofaces", "silent", "shifted", "duplicate")

# Stage decisions each variant must produce (True = passes); stages left out are not judged
# for that variant (e.g. a shaken camera may or may not also blur the face).
TRUTH: dict[str, dict[str, bool]] = {
    "clean": {"luminance": True, "blur": True, "motion": True, "face": True, "speech": True, "lipsync": True},
    "dark": {"luminance": False, "speech": True},
    "blurred": {"luminance": True, "blur": False, "speech": True},
    "frozen": {"luminance": True, "motion": False, "face": True, "speech": True},
    "shaken": {"luminance": True, "motion": False, "speech": True},
    "noface": {"luminance": True, "blur": True, "face": False, "speech": True},
    "twofaces": {"luminance": True, "face": False, "speech": True},
    "silent": {"luminance": True, "blur": True, "motion": True, "face": True, "speech": False},
    "shifted": {"luminance": True, "blur": True, "motion": True, "face": True, "speech": True, "lipsync": True},
    "duplicate": {"luminance": True, "blur": True, "motion": True, "face": True, "speech": True, "lipsync": True,
                  "dedup": False},
}
# Every kept-able variant must also survive near-duplicate removal, except "duplicate".
for _name in ("clean", "shifted"):
    TRUTH[_name]["dedup"] = True


def render_base(path: Path, portrait: Path, speech: Path, size: int = 256) -> Path:
    """The lite engine's render of ``portrait`` speaking ``speech`` (cached at ``path``)."""
    if path.is_file():
        return path
    from genhuman.engines.lite.engine import LiteEngine
    from genhuman.request import AnimateRequest

    LiteEngine().animate(str(portrait), str(speech), path, AnimateRequest(max_size=size))
    return path


@dataclass
class Base:
    frames: np.ndarray  # (T, H, W, 3)
    audio: np.ndarray  # 16 kHz

    face_box: tuple[float, float, float, float]

    @classmethod
    def load(cls, path: Path) -> "Base":
        from genhuman.face import detect_faces

        frames = np.stack(list(iter_video_frames(path)))
        return cls(frames, load_audio(path), detect_faces(frames[0])[0].box)

    def audio_for(self, start: int, count: int) -> np.ndarray:
        a, b = round(start / FPS * SAMPLE_RATE), round((start + count) / FPS * SAMPLE_RATE)
        out = np.zeros(b - a, np.float32)
        piece = self.audio[max(0, a):min(len(self.audio), b)]
        out[max(0, -a):max(0, -a) + len(piece)] = piece
        return out


@dataclass
class ShotTruth:
    start: int
    stop: int
    variant: str


@dataclass(frozen=True)
class Look:
    """A camera set-up: a crop (zoom, position), a mirror and a tint."""

    zoom: float
    x: float  # 0-1 of the room left by the crop
    y: float
    mirror: bool
    tint: tuple[float, float, float]

    def apply(self, frame: np.ndarray, i: int) -> np.ndarray:
        """The set-up's view of ``frame``, drifting DRIFT px per frame ``i`` (a held camera;
        the lite engine alone moves only the mouth)."""
        height, width = frame.shape[:2]
        step = DRIFT * (i - 28)
        frame = cv2.warpAffine(frame, np.array([[1, 0, step], [0, 1, step / 2]], np.float32), (width, height),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        cw, ch = int(width / self.zoom), int(height / self.zoom)
        x0, y0 = int(self.x * (width - cw)), int(self.y * (height - ch))
        frame = cv2.resize(frame[y0:y0 + ch, x0:x0 + cw], (width, height), interpolation=cv2.INTER_LINEAR)
        if self.mirror:
            frame = frame[:, ::-1]
        return np.clip(frame.astype(np.float32) * np.asarray(self.tint, np.float32), 0, 255).astype(np.uint8)


def _tint(rng: np.random.Generator) -> tuple[float, float, float]:
    r, g, b = (float(v) for v in rng.uniform(0.8, 1.0, 3))
    return r, g, b


class LookDraw:
    """Draws set-ups whose views differ: each new one is at least MIN_LOOK_BITS (pHash)
    from every earlier one, so that cuts are real and only intended duplicates repeat."""

    MIN_LOOK_BITS = 14

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.hashes: list[int] = []

    def draw(self, frame: np.ndarray) -> Look:
        from genhuman.curate.dedup import phash

        best: Optional[tuple[int, Look, int]] = None
        for _ in range(200):
            look = Look(float(self.rng.uniform(1.0, 1.45)), float(self.rng.uniform(0.2, 0.8)),
                        float(self.rng.uniform(0.1, 0.5)),
                        bool(self.rng.integers(2)), _tint(self.rng))
            value = phash(look.apply(frame, 28))
            gap = min((bin(value ^ h).count("1") for h in self.hashes), default=64)
            if best is None or gap > best[0]:
                best = (gap, look, value)
            if gap >= self.MIN_LOOK_BITS:
                break
        assert best is not None
        self.hashes.append(best[2])
        return best[1]


def _texture(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (shape[0] // 3 + 2, shape[1] // 3 + 2, 3)).astype(np.float32)
    big = cv2.resize(noise, (shape[1] * 2, shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    return np.clip(big, 0, 255).astype(np.uint8)


def spoil(frames: np.ndarray, audio: np.ndarray, variant: str, seed: int, base: Base, start: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """``frames``/``audio`` changed the way ``variant`` says."""
    rng = np.random.default_rng(seed)
    count, height, width = frames.shape[:3]
    if variant == "dark":
        frames = (frames.astype(np.float32) * 0.05).astype(np.uint8)
    elif variant == "blurred":
        frames = np.stack([cv2.GaussianBlur(f, (0, 0), 3.0) for f in frames])
    elif variant == "frozen":
        frames = np.repeat(frames[:1], count, axis=0)
    elif variant == "shaken":
        out = []
        for f in frames:
            dx, dy = rng.integers(-14, 15, 2)
            m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
            out.append(cv2.warpAffine(f, m, (width, height), borderMode=cv2.BORDER_REFLECT))
        frames = np.stack(out)
    elif variant == "noface":
        texture = _texture((height, width), seed)
        frames = np.stack([texture[i // 2:i // 2 + height, i:i + width] for i in range(count)])
    elif variant == "twofaces":  # the face-centred half of the frame, twice side by side
        x0, y0, x1, y1 = base.face_box
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, 2.2 * max(x1 - x0, y1 - y0)
        box = [int(max(0, cx - side / 2)), int(max(0, cy - side / 2))]
        # from the unzoomed render: the box is the render's, and a zoomed look may push the face out
        half = [cv2.resize(f[box[1]:box[1] + int(side), box[0]:box[0] + int(side)], (width // 2, height // 2))
                for f in base.frames[start:start + count]]
        canvas = np.full_like(frames, 90)
        top = height // 4
        canvas[:, top:top + height // 2, :width // 2] = half
        canvas[:, top:top + height // 2, width // 2:] = np.asarray(half)[:, :, ::-1]
        frames = canvas
    elif variant == "silent":
        audio = np.zeros_like(audio)
    elif variant == "shifted":  # the sound comes SHIFT_FRAMES early: the mouth follows it late
        audio = base.audio_for(start + SHIFT_FRAMES, count)
    return frames, audio


def build_video(path: Path, base: Base, variants: list[str], shot_frames: int = 56, seed: int = 0,
                looks: Optional[LookDraw] = None) -> list[ShotTruth]:
    """One video of ``len(variants)`` shots of ``shot_frames``, hard cuts between them.
    "duplicate" repeats the first shot's frames and sound (its set-up, another tint)."""
    rng = np.random.default_rng(seed)
    looks = looks or LookDraw(seed)
    usable = len(base.frames) - shot_frames - SHIFT_FRAMES
    frames_out, audio_out, truth = [], [], []
    first: Optional[tuple[int, Look]] = None
    for k, variant in enumerate(variants):
        start = int(rng.integers(0, usable))
        if variant == "duplicate" and first is not None:
            start, look = first[0], Look(first[1].zoom, first[1].x, first[1].y, first[1].mirror, (0.95, 0.95, 0.95))
        else:
            look = looks.draw(base.frames[start])
        if first is None:
            first = (start, look)
        frames = np.stack([look.apply(f, i) for i, f in enumerate(base.frames[start:start + shot_frames])])
        audio = base.audio_for(start, shot_frames)
        frames, audio = spoil(frames, audio, variant, seed * 100 + k, base, start)
        truth.append(ShotTruth(k * shot_frames, (k + 1) * shot_frames, variant))
        frames_out.append(frames)
        audio_out.append(audio)
    with VideoWriter(path, FPS, audio=np.concatenate(audio_out), crf=18) as writer:
        for frame in np.concatenate(frames_out):
            writer.write(frame)
    return truth
