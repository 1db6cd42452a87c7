from __future__ import annotations

import numpy as np
import pytest

from genhuman.cli import main
from genhuman.errors import InputError
from genhuman.pose.extract import (MESH_TO_68, FrameDetection, MediaPipePoseDetector, OneEuroFilter,
                                   assign_hands, body_to_openpose, detections_to_pose, extract_video_pose,
                                   resample_indices)
from genhuman.pose.format import load_pose_dir

FPS = 24


def test_body_mapping_to_openpose18():
    body33 = np.zeros((33, 3))
    body33[:, 0] = np.arange(33) / 100
    body33[:, 1] = 0.5
    body33[:, 2] = 0.9
    body33[11, 2] = 0.4  # left shoulder less visible
    points, scores = body_to_openpose(body33)
    assert points[0, 0] == 0.0  # nose
    assert points[1, 0] == pytest.approx((0.11 + 0.12) / 2) and scores[1] == 0.4  # neck = mid-shoulder
    assert points[2, 0] == 0.12 and points[5, 0] == 0.11  # right / left shoulder
    assert points[4, 0] == 0.16 and points[7, 0] == 0.15  # right / left wrist
    assert points[14, 0] == 0.05 and points[17, 0] == 0.07  # right eye, left ear
    assert len(set(MESH_TO_68)) == 68 and max(MESH_TO_68) < 468


def _hand(x: float, y: float) -> np.ndarray:
    return np.array([x, y]) + np.linspace(0, 0.05, 21)[:, None]


def test_hands_go_to_the_nearest_wrist_slot():
    body = np.zeros((18, 2))
    body[7] = (0.7, 0.8)  # left wrist on the image's right
    body[4] = (0.3, 0.8)
    points, scores = assign_hands([(_hand(0.31, 0.8), 0.9), (_hand(0.69, 0.8), 0.8)], body)
    assert points[0, 0, 0] == pytest.approx(0.69) and scores[0, 0] == 0.8
    assert points[1, 0, 0] == pytest.approx(0.31) and scores[1, 0] == 0.9
    # no body: by image side; one hand only leaves the other slot empty
    points, scores = assign_hands([(_hand(0.2, 0.5), 0.9)], None)
    assert scores[1, 0] == 0.9 and scores[0].sum() == 0


def _detections(n: int, missing: set[int]) -> list[FrameDetection]:
    """A body standing still and a left hand moving right 0.01 per frame (a mocked detector:
    no real hand imagery is available offline)."""
    body33 = np.zeros((33, 3))
    body33[:, :2] = 0.5
    body33[:, 2] = 0.99
    body33[15, :2] = (0.6, 0.8)  # MediaPipe left wrist
    out = []
    for i in range(n):
        hands = () if i in missing else ((_hand(0.6 + 0.01 * i, 0.8), 0.95),)
        out.append(FrameDetection(body33=body33.copy(), hands=hands))
    return out


def test_short_hand_gaps_are_bridged_long_ones_left_empty():
    pose = detections_to_pose(_detections(12, {3, 4}), smooth=False)
    assert pose.hands_score[3, 0, 0] == pytest.approx(0.95)
    assert pose.hands[3, 0, 0, 0] == pytest.approx(0.63)  # interpolated, not held
    pose = detections_to_pose(_detections(20, set(range(4, 14))), smooth=False, max_gap=6)
    assert (pose.hands_score[4:14, 0] == 0).all() and (pose.hands[4:14, 0] == 0).all()
    assert (pose.hands_score[:, 1] == 0).all()  # the right hand was never seen
    with pytest.raises(InputError, match="no person"):
        detections_to_pose([FrameDetection()])


def test_one_euro_removes_jitter_but_follows_motion():
    rng = np.random.default_rng(0)
    still = 0.5 + rng.normal(0, 0.003, size=(200, 1, 2))
    smoothed = OneEuroFilter(FPS)(still)
    assert smoothed[20:].std() < still[20:].std() / 2.5
    ramp = np.linspace(0, 1, 48)[:, None, None].repeat(2, axis=2)  # 0.5 frame-widths per second
    lag = np.abs(OneEuroFilter(FPS)(ramp) - ramp)[10:].max()
    assert lag < 0.03


def test_resample_to_24_fps():
    assert resample_indices(10, 24, 24) == list(range(10))
    assert resample_indices(6, 12, 24) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert resample_indices(50, 50, 24)[:4] == [0, 2, 4, 6]


@pytest.fixture(scope="module")
def driving_video(tmp_path_factory, portrait_path):
    """The astronaut photo sliding right by 6 px a frame: MediaPipe must track the body."""
    from genhuman.media import VideoWriter, load_image

    image = load_image(portrait_path)
    image = np.pad(image, ((0, 0), (64, 64), (0, 0)))
    path = tmp_path_factory.mktemp("drive") / "drive.mp4"
    with VideoWriter(path, fps=FPS) as writer:
        for i in range(8):
            writer.write(np.roll(image, 6 * i, axis=1)[:, 64:-64])
    return path


def test_extract_from_a_real_video_tracks_the_body(driving_video):
    detector = MediaPipePoseDetector(video=True, face=False)
    try:
        pose, (h, w) = extract_video_pose(driving_video, detector=detector)
    finally:
        detector.close()
    assert (h, w) == (512, 512) and len(pose) == 8
    assert (pose.body_score[:, :3] > 0.9).all()  # nose, neck, right shoulder
    neck_px = pose.body[:, 1, 0] * w
    speed = np.diff(neck_px)
    assert 3.0 < np.median(speed) < 9.0  # the body moves ~6 px per frame
    assert (pose.hands_score == 0).all()  # the astronaut's hands are out of frame


def test_cli_extract_then_render(driving_video, tmp_path, capsys):
    out = tmp_path / "pose"
    assert main(["pose", "extract", str(driving_video), str(out), "--max-frames", "4", "--size", "256"]) == 0
    pose = load_pose_dir(out)
    assert len(pose) == 4
    assert pose.draw_params[0] == 256  # the crop is taller than wide: full height
    assert 0.3 < pose.body[0, 1, 0] < 0.7  # the neck is centred in the aligned crop
    movie = tmp_path / "pose.mp4"
    assert main(["pose", "render", str(out), str(movie), "--size", "128"]) == 0
    from genhuman.media import read_video_info

    assert read_video_info(movie).frames == 4
    assert main(["pose", "render", str(tmp_path / "nope"), str(movie)]) == 2
    assert "does not exist" in capsys.readouterr().err
