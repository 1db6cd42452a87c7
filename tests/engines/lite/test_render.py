"""Rendering single frames: exactness at rest, locality, and that each weight shows."""

from __future__ import annotations

import numpy as np

from genhuman.engines.lite.render import FrameWeights, Renderer
from genhuman.face import landmark_indices as idx

LOUD = FrameWeights(open=1.0, widen=0.5, press=0.3, teeth=1.0, blink=1.0, roll=2.0, shift_x=0.03,
                    shift_y=0.02)


def outside(renderer: Renderer) -> np.ndarray:
    mask = np.ones(renderer.base.shape[:2], bool)
    y0, y1, x0, x1 = renderer.roi
    mask[y0:y1, x0:x1] = False
    return mask


def box_of(points: np.ndarray, margin: float, shape) -> tuple[slice, slice]:
    (x0, y0), (x1, y1) = points.min(0) - margin, points.max(0) + margin
    return (slice(max(int(y0), 0), min(int(y1) + 1, shape[0])),
            slice(max(int(x0), 0), min(int(x1) + 1, shape[1])))


def test_rest_frame_is_the_sealed_portrait_exactly(renderer):
    frame = renderer.render(FrameWeights())
    assert frame.dtype == np.uint8 and frame.shape == renderer.base.shape
    assert np.array_equal(frame, renderer.base)


def test_the_sealed_portrait_differs_from_the_photo_only_at_the_mouth(renderer, portrait, landmarks):
    mouth = box_of(landmarks[list(idx.LIPS_OUTER)], 10, portrait.shape)
    same = renderer.base.copy()
    same[mouth] = portrait[mouth]
    assert np.array_equal(same, portrait)


def test_pixels_outside_the_head_region_never_change(renderer, portrait):
    frame = renderer.render(LOUD)
    keep = outside(renderer)
    assert keep.mean() > 0.3  # the region is a real part of the picture, not all of it
    assert np.array_equal(frame[keep], portrait[keep])


def test_opening_darkens_the_mouth_more_and_more(renderer, landmarks):
    mouth = box_of(landmarks[list(idx.LIPS_OUTER)], 4, renderer.base.shape)
    dark = []
    for opening in (0.0, 0.3, 0.6, 1.0):
        gray = renderer.render(FrameWeights(open=opening)).astype(np.float32).mean(2)
        dark.append(int((gray[mouth] < 80).sum()))
    # At rest: the photo's own mouth (a smile whose corners are a little dark).
    assert dark[0] == int((renderer.base.astype(np.float32).mean(2)[mouth] < 80).sum())
    assert dark[0] < 0.1 * dark[3] and dark[0] < dark[1] < dark[2] < dark[3]
    face_height = np.linalg.norm(landmarks[idx.CHIN] - landmarks[idx.FACE_OVAL[0]])
    assert dark[3] > 0.3 * face_height * 0.05 * face_height  # a real hole, not a crease


def test_opening_leaves_the_eyes_alone_and_blinking_the_mouth(renderer, landmarks):
    eyes = box_of(landmarks[list(idx.RIGHT_EYE) + list(idx.LEFT_EYE)], 2, renderer.base.shape)
    mouth = box_of(landmarks[list(idx.LIPS_OUTER)], 2, renderer.base.shape)
    opened = renderer.render(FrameWeights(open=1.0, teeth=1.0))
    blinked = renderer.render(FrameWeights(blink=1.0))
    assert np.array_equal(opened[eyes], renderer.base[eyes])
    assert np.array_equal(blinked[mouth], renderer.base[mouth])
    assert np.abs(blinked[eyes].astype(int) - renderer.base[eyes]).mean() > 5


def test_a_closed_blink_hides_the_iris(renderer, landmarks):
    gray = renderer.render(FrameWeights(blink=1.0)).astype(np.float32).mean(2)
    base = renderer.base.astype(np.float32).mean(2)
    for center in (idx.RIGHT_IRIS_CENTER, idx.LEFT_IRIS_CENTER):
        x, y = np.round(landmarks[center]).astype(int)
        assert gray[y - 1:y + 2, x - 1:x + 2].mean() > base[y - 1:y + 2, x - 1:x + 2].mean() + 30


def test_head_motion_shifts_the_face_by_the_requested_amount(renderer, landmarks):
    face_height = renderer.face_height
    frame = renderer.render(FrameWeights(shift_x=0.04))
    nose = box_of(landmarks[list(idx.NOSE)], 6, frame.shape)
    expected = 0.04 * face_height
    patch = renderer.base[nose].astype(np.float32)
    errors = {}
    for dx in range(0, int(expected) + 3):
        moved = frame[nose[0], slice(nose[1].start + dx, nose[1].stop + dx)].astype(np.float32)
        errors[dx] = np.abs(moved - patch).mean()
    assert abs(min(errors, key=errors.get) - expected) <= 1.0


def test_same_weights_same_frame(renderer):
    assert np.array_equal(renderer.render(LOUD), renderer.render(LOUD))


def test_small_portrait_renders(portrait, landmarks):
    import cv2

    small = cv2.resize(portrait, (128, 128), interpolation=cv2.INTER_AREA)
    frame = Renderer(small, landmarks / 4.0).render(LOUD)
    assert frame.shape == (128, 128, 3)
