from __future__ import annotations

import numpy as np
import pytest

from genhuman.errors import InputError
from genhuman.pose.align import CropBox, align_image, crop_pose, fit_params, pose_crop, retarget
from tests.pose.conftest import make_pose


def _framed(n: int = 1):
    """Face spans y 0.1..0.3; the lowest of body points 0-6 is the right wrist at y 0.9."""
    return make_pose(n)


def test_crop_matches_the_notebook_arithmetic():
    pose = _framed()
    # top 0.1, bottom 0.9, margin 0.2: top -> max(0.1 - 0.13, 0) = 0, bottom -> 0.91
    box = pose_crop(pose, 1000, 2000)
    assert box == CropBox(x0=1000 - 455, y0=0, x1=1000 - 455 + 911, y1=910 + 1)
    # narrow image: the left edge clips at 0 and the box narrows around the neck
    assert pose_crop(pose, 1000, 800) == CropBox(0, 0, 800, 911)
    wide = pose_crop(pose, 1000, 2000, aspect=16 / 9)
    assert wide.height == 911 and wide.width == round(911 * 16 / 9)


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
