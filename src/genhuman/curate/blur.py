"""Blur: variance of the Laplacian of the grey frame and of the face region (median over
sampled frames; the face box comes from the face stage)."""

from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from genhuman.curate.config import BlurConfig
from genhuman.curate.verdict import Verdict

SAMPLES = 8  # frames scored per segment: blur changes slowly


def laplacian_variance(image: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def check_blur(frames: list[np.ndarray], boxes: Sequence[Optional[tuple[float, float, float, float]]],
               config: BlurConfig) -> Verdict:
    picks = np.unique(np.linspace(0, len(frames) - 1, min(SAMPLES, len(frames))).round().astype(int))
    frame_scores, face_scores = [], []
    for i in picks:
        frame_scores.append(laplacian_variance(frames[i]))
        box = boxes[i] if i < len(boxes) else None
        if box is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            crop = frames[i][max(0, y0):max(0, y1), max(0, x0):max(0, x1)]
            if crop.shape[0] >= 8 and crop.shape[1] >= 8:
                face_scores.append(laplacian_variance(crop))
    frame_value = float(np.median(frame_scores))
    face_value = float(np.median(face_scores)) if face_scores else float("nan")
    failures = []
    if frame_value < config.min_frame_laplacian:
        failures.append(f"blurred frame (Laplacian variance {frame_value:.1f} < {config.min_frame_laplacian:g})")
    if np.isfinite(face_value) and face_value < config.min_face_laplacian:
        failures.append(f"blurred face (Laplacian variance {face_value:.1f} < {config.min_face_laplacian:g})")
    return Verdict.check("blur", {"blur_frame_laplacian": frame_value, "blur_face_laplacian": face_value}, failures)
