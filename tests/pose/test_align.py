from __future__ import annotations

import numpy as np
import pytest

from genhuman.errors import InputError
from genhuman.pose.align import CropBox, align_image, crop_pose, enlarge_to, fit_params, pose_crop, retarget
from tests.pose.conftest import make_pose


def _framed(n: int = 1):
    """Face spans y 0.1..0.3; the lowest of body points 0-6 is the right wrist at y 0.9."""
    return make_pose(n)


def test_crop_matches_the_notebook_arithmetic():
    pose = _framed()
    # top 0.1, bottom 0.9, margin 0.2: top -> max(0.1 - 0.13, 0) = 0, bottom -> 0.91
    # notebook: rows h_min_real:h_max_real = 0:910, width_new = 910 - 0 + 1 = 911
    box = pose_crop(pose, 1000, 2000)
    assert box == CropBox(x0=1000 - 455, y0=0, x1=1000 - 455 + 911, y1=910)
    # narrow image: the left edge clips at 0 and the box narrows around the neck
    assert pose_crop(pose, 1000, 800) == CropBox(0, 0, 800, 910)
    wide = pose_crop(pose, 1000, 2000, aspect=16 / 9)
    assert wide.height == 910 and wide.width == round(911 * 16 / 9)


def test_crop_top_is_the_face_not_a_raised_arm():
    face_low = _framed()
    face_low.face[:, :, 1] += 0.3  # face 0.4..0.6, bottom 0.9: margin 0.125, top 0.4 - 0.08125
    face_low.body[:, 6, 1] = 0.3  # left elbow raised above the face: the notebook ignores it for the top
    assert pose_crop(face_low, 1000, 2000).y0 == int((0.4 - 0.125 * 0.65) * 1000)
    face_low.face_score[:] = 0.0  # no face seen: the top comes from the upper body instead
    top = min(face_low.body[0, :7, 1])
    margin = (0.9 - top) * 0.25
    assert pose_crop(face_low, 1000, 2000).y0 == int(max(top - margin * 0.65, 0) * 1000)


def test_photo_enlarged_like_the_notebook():
    small = np.zeros((512, 400, 3), np.uint8)
    assert enlarge_to(small, 768).shape == (int(768 / 400 * 512), 768, 3)  # (983, 768)
    big = np.zeros((800, 1200, 3), np.uint8)
    assert enlarge_to(big, 768) is big


def test_crop_resize_is_bilinear():
    # 6 -> 2 columns: bilinear samples source columns 1 and 4 (90, 30); area would average (30, 10)
    image = np.tile(np.array([0, 90, 0, 0, 30, 0], np.uint8)[None, :, None], (6, 1, 3))
    out = align_image(image, CropBox(0, 0, 6, 6), 2, 2)
    assert out[..., 0].tolist() == [[90, 30], [90, 30]]


def test_fit_params_equal_the_official_square_values():
    assert fit_params(911, 800, 768, 768) == (768, 674, 0, 768, 47, 721)
    assert fit_params(500, 500, 768, 768) == (768, 768, 0, 768, 0, 768)
    assert fit_params(400, 800, 768, 768) == (384, 768, 192, 576, 0, 768)  # the notebook's branch is buggy here
    assert fit_params(100, 100, 720, 1280) == (720, 720, 0, 720, 280, 1000)


def test_image_and_pose_stay_registered():
    pose = _framed()
    h, w = 600, 900
    image = np.zeros((h, w, 3), np.uint8)
    wrist = pose.hands[0, 0, 0] * (w, h)
    image[int(wrist[1]) - 3:int(wrist[1]) + 4, int(wrist[0]) - 3:int(wrist[0]) + 4] = 255
    box = pose_crop(pose, h, w)
    aligned = align_image(image, box, 256, 256)
    moved = crop_pose(pose, box, h, w, 256, 256)
    imh, imw, rb, _, cb, _ = moved.draw_params
    x, y = moved.hands[0, 0, 0] * (imw, imh) + (cb, rb)
    assert aligned[int(round(y)), int(round(x))].min() > 100


def test_retarget_undoes_scale_and_shift():
    reference = _framed(3)
    driving = reference.take(range(3))
    neck = reference.body[:, 1:2]
    for name in ("body", "hands", "face"):
        value = getattr(reference, name)
        centre = neck if value.ndim == 3 else neck[:, None]
        setattr(driving, name, (value - centre) * 0.5 + centre + 0.1)
    back = retarget(driving, reference)
    np.testing.assert_allclose(back.hands, reference.hands, atol=1e-9)
    np.testing.assert_allclose(back.body, reference.body, atol=1e-9)


def test_alignment_errors():
    pose = _framed()
    pose.body_score[:, [2, 5]] = 0.0
    with pytest.raises(InputError, match="shoulders are not visible"):
        retarget(pose, _framed())
    with pytest.raises(InputError, match="crop is empty"):
        align_image(np.zeros((10, 10, 3), np.uint8), CropBox(20, 20, 30, 30), 64, 64)
