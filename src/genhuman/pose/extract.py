"""Pose from images and driving videos with MediaPipe (bundled; no DWPose ONNX files).

MediaPipe Pose gives 33 body points, MediaPipe Hands 21 points per hand (the same
topology as DWPose's hands), Face Mesh 468 points. They become the official V2 format:

* body: the 33 points mapped to OpenPose-18; the neck, which MediaPipe lacks, is the
  shoulders' midpoint; score = MediaPipe visibility (the neck's: the lower shoulder's);
* hands: slot 0 is the person's left hand, slot 1 the right (DWPose's order). Each
  detected hand goes to the slot whose body wrist is nearer, so a mirrored video or a
  wrong handedness label cannot swap them; score = the handedness confidence;
* face: 68 points picked from the mesh (iBUG order: jaw, brows, nose, eyes, lips);
  they only set the top of the alignment crop, as in the official code.

Then, over the whole track: hand gaps of up to ``max_gap`` frames are filled by linear
interpolation (a hand lost for a few frames to motion blur should not blink), longer gaps
stay empty (score 0, drawn as nothing); and every point is smoothed by a One-Euro filter,
which removes jitter at rest without lagging fast gestures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from genhuman.errors import InputError
from genhuman.pose.format import DEFAULT_FPS, FACE_POINTS, HAND_POINTS, PoseSequence
from genhuman.progress import CancelFn, ProgressFn, check_cancel, report

log = logging.getLogger(__name__)

# OpenPose-18 index -> MediaPipe Pose index (the neck, 1, is computed).
MEDIAPIPE_TO_OPENPOSE = {0: 0, 2: 12, 3: 14, 4: 16, 5: 11, 6: 13, 7: 15, 8: 24, 9: 26, 10: 28,
                         11: 23, 12: 25, 13: 27, 14: 5, 15: 2, 16: 8, 17: 7}
MP_LEFT_SHOULDER, MP_RIGHT_SHOULDER = 11, 12
OP_LEFT_WRIST, OP_RIGHT_WRIST = 7, 4
# iBUG-68 -> Face Mesh index: jaw (17), brows (5+5), nose (4+5), eyes (6+6), lips (12+8).
MESH_TO_68 = (162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
              71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
              168, 197, 5, 4, 75, 97, 2, 326, 305,
              33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
              61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
              78, 82, 13, 312, 308, 317, 14, 87)
assert len(MESH_TO_68) == FACE_POINTS


@dataclass
class FrameDetection:
    """What the detectors saw in one frame, normalised to that frame (x by width, y by height)."""

    body33: Optional[np.ndarray] = None  # (33, 3): x, y, visibility
    hands: tuple[tuple[np.ndarray, float], ...] = ()  # ((21, 2) points, confidence) per hand
    face_mesh: Optional[np.ndarray] = None  # (468+, 2)


def body_to_openpose(body33: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """33 MediaPipe points (x, y, visibility) -> OpenPose-18 points (18, 2) and scores (18,)."""
    points, scores = np.zeros((18, 2)), np.zeros(18)
    for op, mp_index in MEDIAPIPE_TO_OPENPOSE.items():
        points[op], scores[op] = body33[mp_index, :2], body33[mp_index, 2]
    points[1] = (body33[MP_LEFT_SHOULDER, :2] + body33[MP_RIGHT_SHOULDER, :2]) / 2
    scores[1] = min(body33[MP_LEFT_SHOULDER, 2], body33[MP_RIGHT_SHOULDER, 2])
    return points, scores


def assign_hands(hands: Iterable[tuple[np.ndarray, float]],
                 body: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Put detected hands in DWPose slots (0 = left, 1 = right) by distance to the body's
    wrists; without a body, by image side (the left hand of a person facing the camera is
    on the image's right). Returns points (2, 21, 2) and scores (2, 21)."""
    points, scores = np.zeros((2, HAND_POINTS, 2)), np.zeros((2, HAND_POINTS))
    for pts, conf in sorted(hands, key=lambda h: -h[1])[:2]:
        wrist = pts[0]
        if body is not None:
            cost = [np.linalg.norm(wrist - body[OP_LEFT_WRIST]), np.linalg.norm(wrist - body[OP_RIGHT_WRIST])]
        else:
            cost = [1.0 - wrist[0], wrist[0]]
        order = np.argsort(cost)
        slot = int(order[0]) if scores[order[0], 0] == 0 else int(order[1])
        if scores[slot, 0] == 0:
            points[slot], scores[slot] = pts, conf
    return points, scores


class OneEuroFilter:
    """Casiez et al.'s One-Euro filter, vectorised: the cut-off rises with speed, so slow
    jitter is smoothed hard and fast motion follows with little lag."""

    def __init__(self, fps: float, min_cutoff: float = 0.8, beta: float = 5.0, d_cutoff: float = 1.0):
        self.rate, self.min_cutoff, self.beta, self.d_cutoff = fps, min_cutoff, beta, d_cutoff

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau * self.rate)

    def __call__(self, track: np.ndarray, valid: Optional[np.ndarray] = None) -> np.ndarray:
        """Filter ``track`` (T, ...) along time; a point restarts where ``valid`` (T, ...) was False."""
        out = track.astype(np.float64).copy()
        if valid is None:
            valid = np.ones(track.shape[:-1], dtype=bool)
        prev, dprev = out[0].copy(), np.zeros_like(out[0])
        for t in range(1, len(out)):
            restart = ~(valid[t] & valid[t - 1])
            dx = (track[t] - prev) * self.rate
            dhat = dprev + self._alpha(self.d_cutoff) * (dx - dprev)
            cutoff = self.min_cutoff + self.beta * np.linalg.norm(dhat, axis=-1, keepdims=True)
            smoothed = prev + self._alpha(cutoff) * (track[t] - prev)
            out[t] = np.where(restart[..., None], track[t], smoothed)
            dprev = np.where(restart[..., None], 0.0, dhat)
            prev = out[t]
        return out


def _fill_hand_gaps(hands: np.ndarray, scores: np.ndarray, max_gap: int) -> None:
    """Linearly bridge gaps of up to ``max_gap`` frames in each hand track, in place."""
    for slot in range(2):
        seen = np.flatnonzero(scores[:, slot, 0] > 0)
        for a, b in zip(seen[:-1], seen[1:]):
            if 1 < b - a <= max_gap + 1:
                for t in range(a + 1, b):
                    w = (t - a) / (b - a)
                    hands[t, slot] = (1 - w) * hands[a, slot] + w * hands[b, slot]
                    scores[t, slot] = (1 - w) * scores[a, slot] + w * scores[b, slot]


def detections_to_pose(frames: list[FrameDetection], fps: float = DEFAULT_FPS, smooth: bool = True,
                       max_gap: int = 6) -> PoseSequence:
    """Turn per-frame detections into a :class:`PoseSequence` normalised to the source frame."""
    if not frames:
        raise InputError("the video has no frames")
    n = len(frames)
    body, body_score = np.zeros((n, 18, 2)), np.zeros((n, 18))
    hands, hands_score = np.zeros((n, 2, HAND_POINTS, 2)), np.zeros((n, 2, HAND_POINTS))
    face, face_score = np.zeros((n, FACE_POINTS, 2)), np.zeros((n, FACE_POINTS))
    for i, det in enumerate(frames):
        if det.body33 is not None:
            body[i], body_score[i] = body_to_openpose(det.body33)
        hands[i], hands_score[i] = assign_hands(det.hands, body[i] if det.body33 is not None else None)
        if det.face_mesh is not None:
            face[i], face_score[i] = det.face_mesh[list(MESH_TO_68), :2], 1.0
    if not body_score.any():
        raise InputError("no person was found (MediaPipe Pose saw no body)")
    _fill_hand_gaps(hands, hands_score, max_gap)
    if smooth and n > 1:
        smoother = OneEuroFilter(fps)
        body = smoother(body, body_score > 0)
        hands = smoother(hands, hands_score > 0)
        face = smoother(face, face_score > 0)
    hands[hands_score <= 0] = 0.0
    return PoseSequence(body, body_score, hands, hands_score, face, face_score, fps=fps)


class MediaPipePoseDetector:
    """MediaPipe Pose + Hands + Face Mesh on RGB frames (tracking mode for videos)."""

    def __init__(self, video: bool = True, face: bool = True):
        import mediapipe as mp

        from genhuman.face._mediapipe import Graph, quiet_stderr

        static = not video
        with quiet_stderr():
            self.pose = Graph(mp.solutions.pose.Pose(static_image_mode=static, model_complexity=1,
                                                     smooth_landmarks=False, min_detection_confidence=0.5))
            self.hands = Graph(mp.solutions.hands.Hands(static_image_mode=static, max_num_hands=2,
                                                        min_detection_confidence=0.5))
            self.face = Graph(mp.solutions.face_mesh.FaceMesh(static_image_mode=static, max_num_faces=1)) \
                if face else None

    def __call__(self, frame_rgb: np.ndarray) -> FrameDetection:
        frame = np.ascontiguousarray(frame_rgb)
        det = FrameDetection()
        pose = self.pose.process(frame)
        if pose.pose_landmarks:
            det.body33 = np.array([[p.x, p.y, p.visibility] for p in pose.pose_landmarks.landmark])
        hands = self.hands.process(frame)
        if hands.multi_hand_landmarks:
            det.hands = tuple((np.array([[p.x, p.y] for p in lm.landmark]), float(h.classification[0].score))
                              for lm, h in zip(hands.multi_hand_landmarks, hands.multi_handedness))
        if self.face is not None:
            mesh = self.face.process(frame)
            if mesh.multi_face_landmarks:
                det.face_mesh = np.array([[p.x, p.y] for p in mesh.multi_face_landmarks[0].landmark])
        return det

    def close(self) -> None:
        for graph in (self.pose, self.hands, self.face):
            if graph is not None:
                graph.close()


def extract_image_pose(image_rgb: np.ndarray) -> PoseSequence:
    """A one-frame pose of the person in a photo (normalised to the photo)."""
    detector = MediaPipePoseDetector(video=False)
    try:
        return detections_to_pose([detector(image_rgb)], smooth=False)
    finally:
        detector.close()


def resample_indices(n_source: int, source_fps: float, fps: float) -> list[int]:
    """Source frame shown at each output frame time at ``fps`` (the official 24 fps conversion)."""
    if source_fps <= 0:
        return list(range(n_source))
    n_out = max(1, int(round(n_source * fps / source_fps)))
    return [min(n_source - 1, int(k * source_fps / fps + 1e-9)) for k in range(n_out)]


def extract_video_pose(path: str | Path, fps: float = DEFAULT_FPS, max_frames: Optional[int] = None,
                       progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
                       detector=None) -> tuple[PoseSequence, tuple[int, int]]:
    """Pose track of the person in a driving video, resampled to ``fps``.

    Returns the track (normalised to the video frame) and the frame size (height, width).
    """
    from genhuman.media import iter_video_frames, read_video_info

    info = read_video_info(path)
    wanted = resample_indices(info.frames, info.fps, fps)
    if max_frames is not None:
        wanted = wanted[:max_frames]
    own = detector is None
    detector = detector or MediaPipePoseDetector(video=True)
    detections: list[FrameDetection] = []
    try:
        cursor = 0
        for index, frame in enumerate(iter_video_frames(path)):
            while cursor < len(wanted) and wanted[cursor] == index:
                if not detections or wanted[cursor - 1] != index:
                    det = detector(frame)
                detections.append(det)
                cursor += 1
            if cursor >= len(wanted):
                break
            check_cancel(should_cancel)
            report(progress, cursor / len(wanted), "extracting pose")
    finally:
        if own:
            detector.close()
    log.info("pose: %d frames from %s", len(detections), path)
    return detections_to_pose(detections, fps=fps), (info.height, info.width)
