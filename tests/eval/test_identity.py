import cv2
import numpy as np
import pytest

from genhuman.cli import main
from genhuman.eval import upper_face_psnr
from genhuman.face import detect_faces, landmark_indices as idx
from genhuman.media import VideoWriter, load_image

from .synthetic import burst_envelope, render


@pytest.fixture(scope="module")
def portrait(portrait_path):
    return load_image(portrait_path)


def moved(image: np.ndarray, dx: float, dy: float, angle: float) -> np.ndarray:
    matrix = cv2.getRotationMatrix2D((256, 256), angle, 1.02)
    matrix[:, 2] += (dx, dy)
    return cv2.warpAffine(image, matrix, (512, 512), borderMode=cv2.BORDER_REPLICATE)


def test_mouth_motion_and_head_motion_keep_identity(tmp_path, portrait):
    talking = render(tmp_path / "talk.mp4", portrait, burst_envelope(30, seed=2))
    report = upper_face_psnr(portrait, talking)
    assert report.frames == report.face_frames == 30
    assert report.min_psnr > 30
    head = tmp_path / "head.mp4"
    with VideoWriter(head, 25) as writer:
        for i in range(12):
            writer.write(moved(portrait, 4 * np.sin(i / 2), 3 * np.cos(i / 3), 3 * np.sin(i / 4)))
    assert upper_face_psnr(portrait, head).min_psnr > 28  # head motion is undone


def test_changed_upper_face_scores_low(tmp_path, portrait, capsys):
    face = detect_faces(portrait)[0]
    brow_y = int(face.landmarks[list(idx.RIGHT_EYEBROW), 1].mean())
    other = portrait.copy()
    band = other[brow_y - 25:brow_y + 5]
    other[brow_y - 25:brow_y + 5] = 255 - band  # a different forehead and brows
    path = tmp_path / "other.mp4"
    with VideoWriter(path, 25) as writer:
        for _ in range(5):
            writer.write(other)
    report = upper_face_psnr(portrait, path)
    assert report.mean_psnr < 20
    assert main(["eval", "identity", str(path.parent / "missing.png"), str(path)]) == 2
    assert "not found" in capsys.readouterr().err
