"""Face: exactly one dominant face, its area ratio, yaw and pitch from the 478-point mesh's
3-D landmarks, and a track that stays continuous across the segment.

Yaw: angle of the outer-eye-corner line (33 -> 263) out of the image plane; pitch: angle of
the forehead -> chin line (10 -> 152) out of it, less the mesh's own forward tilt of that
line on a frontal face (~10-12 deg on the example portrait looking at the camera: the
mesh's chin sits nearer the camera than its forehead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from genhuman.curate.config import FaceConfig
from genhuman.curate.verdict import Verdict
from genhuman.face import Face, FaceTracker
from genhuman.face import landmark_indices as idx

FOREHEAD, CHIN = 10, 152
FRONTAL_PITCH_DEG = 10.0  # the mesh's pitch on a frontal face (see module docstring)

Box = tuple[float, float, float, float]


def yaw_pitch(face: Face) -> tuple[float, float]:
    """Degrees; 0 looking at the camera."""
    points = np.concatenate([face.landmarks, face.z[:, None]], axis=1).astype(np.float64)
    across = points[idx.LEFT_EYE_CORNERS[0]] - points[idx.RIGHT_EYE_CORNERS[0]]
    down = points[CHIN] - points[FOREHEAD]
    yaw = math.degrees(math.atan2(across[2], abs(across[0]) + 1e-9))
    pitch = math.degrees(math.atan2(down[2], abs(down[1]) + 1e-9)) - FRONTAL_PITCH_DEG
    return yaw, pitch


@dataclass
class FaceTrack:
    """Per frame: the main face (None when none); per sampled frame: the faces detected."""

    faces: list[Optional[Face]] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # faces detected, in the sampled frames
    second_ratios: list[float] = field(default_factory=list)  # 2nd / 1st detected area (0: one face)

    @property
    def boxes(self) -> list[Optional[Box]]:
        return [None if f is None else f.box for f in self.faces]


def track_faces(frames: list[np.ndarray], count_every: int = 5) -> FaceTrack:
    """The mesh in tracking mode (up to two faces) follows the main face in every frame;
    every ``count_every``-th frame, MediaPipe's face detector also counts faces. The second
    face's size is the larger of the two measures: each misses faces the other finds."""
    from genhuman.face import _mediapipe

    track = FaceTrack()
    detector = _mediapipe.face_detection(full_range=False)
    try:
        with FaceTracker(max_faces=2) as tracker:
            for i, frame in enumerate(frames):
                faces = tracker.track_all(frame)
                track.faces.append(faces[0] if faces else None)
                if i % count_every == 0:
                    areas = sorted(_detected_areas(detector, frame), reverse=True)
                    track.counts.append(max(len(areas), len(faces)))
                    ratios = [faces[1].area / max(faces[0].area, 1e-6) if len(faces) > 1 else 0.0,
                              areas[1] / max(areas[0], 1e-6) if len(areas) > 1 else 0.0]
                    track.second_ratios.append(max(ratios))
    finally:
        detector.close()
    return track


def _detected_areas(detector, frame: np.ndarray) -> list[float]:
    height, width = frame.shape[:2]
    detections = detector.process(np.ascontiguousarray(frame)).detections or []
    return [d.location_data.relative_bounding_box.width * d.location_data.relative_bounding_box.height
            * width * height for d in detections]


def check_face(track: FaceTrack, frame_shape: tuple[int, ...], config: FaceConfig) -> Verdict:
    n = max(1, len(track.faces))
    found = [f for f in track.faces if f is not None]
    share = len(found) / n
    area = float(np.median([f.area for f in found])) / (frame_shape[0] * frame_shape[1]) if found else 0.0
    second = float(np.median(track.second_ratios)) if track.second_ratios else 0.0
    angles = np.array([yaw_pitch(f) for f in found]) if found else np.full((1, 2), np.nan)
    yaw, pitch = (float(np.median(angles[:, 0])), float(np.median(angles[:, 1])))
    jump = 0.0
    for a, b in zip(track.faces[:-1], track.faces[1:]):
        if a is not None and b is not None:
            width = max(a.box[2] - a.box[0], 1e-6)
            jump = max(jump, float(np.linalg.norm(a.landmarks.mean(0) - b.landmarks.mean(0))) / width)
    failures = []
    if share < config.min_face_share:
        failures.append("no face" if not found else f"face in {share:.0%} of frames < {config.min_face_share:.0%}")
    else:
        if second > config.max_second_face_ratio:
            failures.append(f"more than one face (2nd/1st area {second:.2f} > {config.max_second_face_ratio:g})")
        if area < config.min_area_ratio:
            failures.append(f"face too small ({area:.3f} of the frame < {config.min_area_ratio:g})")
        if abs(yaw) > config.max_abs_yaw_deg:
            failures.append(f"yaw {yaw:.0f} deg beyond {config.max_abs_yaw_deg:g}")
        if abs(pitch) > config.max_abs_pitch_deg:
            failures.append(f"pitch {pitch:.0f} deg beyond {config.max_abs_pitch_deg:g}")
        if jump > config.max_center_jump:
            failures.append(f"track breaks (jump {jump:.2f} face widths)")
    scores = {"face_share": share, "face_area_ratio": area, "face_second_ratio": second,
              "face_max_count": float(max(track.counts, default=0)), "face_yaw_deg": yaw,
              "face_pitch_deg": pitch, "face_max_jump": jump}
    return Verdict.check("face", scores, failures)


def union_box(track: FaceTrack) -> Optional[Box]:
    """The box holding the main face in every frame (the export crop is fixed per segment)."""
    boxes = np.array([b for b in track.boxes if b is not None])
    if not len(boxes):
        return None
    return (float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()), float(boxes[:, 3].max()))
