from __future__ import annotations

import numpy as np

from genhuman.pose.render import control_frame, control_frames, render_debug, render_hands
from tests.pose.conftest import make_pose


def _one_hand(points: dict[int, tuple[float, float, float]]):
    """A pose whose left hand has only the given points (x, y, score); everything else unseen."""
    pose = make_pose(1)
    pose.hands[:] = 0.0
    pose.hands_score[:] = 0.0
    for i, (x, y, s) in points.items():
        pose.hands[0, 0, i] = (x, y)
        pose.hands_score[0, 0, i] = s
    return pose


def test_hand_pixels_match_hand_computation():
    # 800x800 with ref_w=800: scale 1, so no resize blurs the pixels.
    pose = _one_hand({0: (0.25, 0.5, 1.0), 1: (0.5, 0.5, 1.0), 2: (0.5, 0.75, 0.5)})
    img = render_hands(pose, 0, 800, 800)
    assert img.shape == (800, 800, 3) and img.dtype == np.uint8
    # points: filled radius-4 circles, BGR (0,0,int(s*255)) shown as RGB red
    assert tuple(img[400, 200]) == (255, 0, 0)
    assert tuple(img[400, 203]) == (255, 0, 0)
    assert tuple(img[600, 400]) == (127, 0, 0)
    # edge 0 (points 0-1): hsv(0/20)=(1,0,0) * int(1*1*255), drawn as BGR -> RGB (0,0,255)
    assert tuple(img[400, 300]) == (0, 0, 255)
    # edge 1 (points 1-2): hsv(1/20)=(1,0.3,0) * int(1*0.5*255)=127 -> (127, 38.1, 0) -> RGB (0,38,127)
    assert tuple(img[500, 400]) == (0, 38, 127)
    # 2 px lines: 3 rows away from the line is black; edges to unseen points (pixel x 0) are skipped
    assert tuple(img[404, 300]) == (0, 0, 0)
    assert img[:, :150].sum() == 0
    lit = (img.sum(axis=2) > 0)
    assert 400 < lit.sum() < 2000


def test_points_at_pixel_zero_are_skipped():
    pose = _one_hand({0: (0.0005, 0.5, 1.0), 1: (0.5, 0.5, 1.0)})
    img = render_hands(pose, 0, 800, 800)
    assert img[:, :100].sum() == 0  # neither the point nor the edge to it is drawn
    assert tuple(img[400, 400]) == (255, 0, 0)


def test_rendering_is_drawn_at_ref_width_then_resized():
    pose = make_pose(1)
    small = render_hands(pose, 0, 400, 400)
    big = render_hands(pose, 0, 800, 800)
    import cv2

    np.testing.assert_array_equal(small, cv2.resize(big, (400, 400)))


def test_non_square_canvas_and_paste():
    pose = make_pose(2)
    frame = control_frame(pose, 0, 256, 512, draw_params=(200, 200, 28, 228, 156, 356))
    assert frame.shape == (256, 512, 3)
    ys, xs = np.nonzero(frame.sum(axis=2))
    assert len(ys) and ys.min() >= 28 and ys.max() < 228 and xs.min() >= 156 and xs.max() < 356
    np.testing.assert_array_equal(frame[28:228, 156:356], render_hands(pose, 0, 200, 200))
    stack = control_frames(pose, [0, 1], 96, 64)
    assert stack.shape == (3, 2, 96, 64) and stack.dtype == np.float32
    assert 0.0 <= stack.min() and stack.max() <= 1.0 and stack.max() > 0


def test_debug_view_draws_body():
    pose = make_pose(1)
    img = render_debug(pose, 0, 128, 128)
    assert img.shape == (128, 128, 3)
    neck = (pose.body[0, 1] * 128).astype(int)
    assert img[neck[1], neck[0]].sum() > 0


def test_draw_params_move_to_another_canvas():
    from genhuman.pose.render import scale_draw_params

    assert scale_draw_params((768, 768, 0, 768, 0, 768), 128, 96) == (128, 96, 0, 128, 0, 96)
    assert scale_draw_params((768, 674, 0, 768, 47, 721), 384, 384) == (384, 337, 0, 384, 24, 361)
