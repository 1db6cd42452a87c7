"""A talking-head stand-in rendered in-test: the portrait's jaw drops by a remap and a dark
mouth cavity is drawn, in step with tone bursts on the audio track."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from genhuman.face import detect_faces, landmark_indices as idx
from genhuman.media import SAMPLE_RATE, VideoWriter

FPS = 25


def burst_envelope(frames: int, seed: int = 0) -> np.ndarray:
    """Syllable-like bursts (3-7 frames) separated by gaps, with two long pauses."""
    rng = np.random.default_rng(seed)
    envelope = np.zeros(frames)
    i = 3
    while i < frames - 8:
        length = rng.integers(3, 8)
        envelope[i:i + length] = rng.uniform(0.4, 1.0) * np.hanning(length + 2)[1:-1]
        i += length + (rng.integers(10, 15) if rng.random() < 0.2 else rng.integers(1, 4))
    return envelope


def tone_audio(envelope: np.ndarray) -> np.ndarray:
    samples = int(len(envelope) / FPS * SAMPLE_RATE)
    t = np.arange(samples) / SAMPLE_RATE
    gain = np.interp(t, (np.arange(len(envelope)) + 0.5) / FPS, envelope)
    return (0.6 * gain * np.sin(2 * np.pi * 180 * t)).astype(np.float32)


def open_mouth(portrait: np.ndarray, landmarks: np.ndarray, amount: float) -> np.ndarray:
    """Drop everything below the lip line by up to ``amount`` x 40% of the mouth width."""
    if amount <= 0:
        return portrait
    left, right = landmarks[idx.MOUTH_CORNER_RIGHT], landmarks[idx.MOUTH_CORNER_LEFT]
    width = np.linalg.norm(right - left)
    lip_y = (landmarks[idx.UPPER_LIP_INNER, 1] + landmarks[idx.LOWER_LIP_INNER, 1]) / 2
    cx = (left[0] + right[0]) / 2
    drop = amount * 0.4 * width
    height, w = portrait.shape[:2]
    ys, xs = np.mgrid[0:height, 0:w].astype(np.float32)
    horizontal = np.clip(1 - np.abs(xs - cx) / (1.6 * width), 0, 1)
    vertical = np.clip((ys - lip_y) / drop, 0, 1) * np.clip(1 - (ys - lip_y - 2 * width) / width, 0, 1)
    shift = drop * horizontal * vertical
    out = cv2.remap(portrait, xs, ys - shift, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    cv2.ellipse(out, (int(cx), int(lip_y + drop / 2)), (int(width * 0.38), max(1, int(drop / 2))), 0, 0, 360,
                (35, 12, 15), -1, cv2.LINE_AA)
    return out


def render(path: Path, portrait: np.ndarray, envelope: np.ndarray, mouth_delay: int = 0) -> Path:
    landmarks = detect_faces(portrait)[0].landmarks
    mouth = np.roll(envelope, mouth_delay)
    if mouth_delay > 0:
        mouth[:mouth_delay] = 0
    with VideoWriter(path, FPS, audio=tone_audio(envelope)) as writer:
        for amount in mouth:
            writer.write(open_mouth(portrait, landmarks, amount))
    return path
