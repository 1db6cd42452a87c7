"""Per-frame signals measured from a video: mouth opening (face mesh) and audio loudness."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genhuman.face import FaceTracker
from genhuman.face import landmark_indices as idx
from genhuman.media import SAMPLE_RATE, iter_video_frames

LOUDNESS_FLOOR_DB = -100.0  # digital silence is clipped here so log(0) never appears


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip gap (13-14) over the outer-eye-corner distance (33-263): speech never
    changes the latter, so the ratio is independent of image size and head distance."""
    gap = float(np.linalg.norm(landmarks[idx.UPPER_LIP_INNER] - landmarks[idx.LOWER_LIP_INNER]))
    eyes = float(np.linalg.norm(landmarks[idx.RIGHT_EYE_CORNERS[0]] - landmarks[idx.LEFT_EYE_CORNERS[0]]))
    return float(gap / max(eyes, 1e-6))


def mouth_opening_track(video: str | Path) -> np.ndarray:
    """Opening per video frame (NaN where no face was found)."""
    values = []
    with FaceTracker() as tracker:
        for frame in iter_video_frames(video):
            face = tracker.track(frame)
            values.append(np.nan if face is None else mouth_opening(face.landmarks))
    return np.asarray(values, np.float64)


def loudness_track(wave: np.ndarray, fps: float, frames: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """RMS level in dB (re full scale) of the audio under each video frame's interval
    [i/fps, (i+1)/fps); frames past the end of the audio get the floor."""
    edges = np.round(np.arange(frames + 1) / fps * sample_rate).astype(np.int64)
    power = np.concatenate([[0.0], np.cumsum(np.square(wave.astype(np.float64)))])
    start = np.minimum(edges[:-1], len(wave))
    stop = np.minimum(edges[1:], len(wave))
    count = np.maximum(stop - start, 1)
    rms = np.sqrt((power[stop] - power[start]) / count)
    return np.maximum(20.0 * np.log10(np.maximum(rms, 1e-12)), LOUDNESS_FLOOR_DB)
