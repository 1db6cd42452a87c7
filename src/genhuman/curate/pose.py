"""Optional pose of each kept clip: GenHuman's MediaPipe -> OpenPose-18 + hands + face
(genhuman.pose), saved as one .npz of the track's arrays next to the clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def save_clip_pose(frames: list[np.ndarray], fps: float, target: Path) -> Path:
    from genhuman.pose.extract import MediaPipePoseDetector, detections_to_pose

    detector = MediaPipePoseDetector(video=True)
    try:
        detections = [detector(frame) for frame in frames]
    finally:
        detector.close()
    pose = detections_to_pose(detections, fps=fps)
    np.savez_compressed(target, body=pose.body, body_score=pose.body_score, hands=pose.hands,
                        hands_score=pose.hands_score, face=pose.face, face_score=pose.face_score,
                        fps=np.float32(fps))
    return target
