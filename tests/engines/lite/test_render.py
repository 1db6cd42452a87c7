"""Rendering single frames: exactness at rest, locality, and that each weight shows."""

from __future__ import annotations

import numpy as np
import pytest

from genhuman.engines.lite.render import FrameWeights, Renderer
from genhuman.face import landmark_indices as idx

LOUD = FrameWeights(open=1.0, widen=0.5, press=0.3, teeth=1.0, blink=1.0, roll=2.0, shift_x=0.03,
                    shift_y=0.02)


def field_at(basis, points: np.ndarray) -> np.ndarray:
    local = np.round(points - [basis.x0, basis.y0]).astype(int)
    return basis.data[local[:, 1], local[:, 0]]


def pale_in_lips(image: np.ndarray, landmarks: np.ndarray) -> int:
    """Nearly colourless pixels (teeth) inside the outer lip contour."""
    from genhuman.eval.realism import polygon_mask

    pixels = image[polygon_mask(landmarks[list(idx.LIPS_OUTER)], image.shape)].astype(int)
    return int((np.ptp(pixels, axis=1) < 40).sum())


def outside(renderer: Renderer) -> np.ndarray:
    mask = np.ones(renderer.base.shape[:2], bool)
    y0, y1, x0, x1 = renderer.roi
    mask[y0:y1, x0:x1] = False
    return mask


def box_of(points: np.ndarray, margin: float, shape) -> tuple[slice, slice]:
    (x0, y0), (x1, y1) = points.min(0) - margin, points.max(0) + margin
    return (slice(max(int(y0), 0), min(int(y1) + 1, shape[0])),
            slice(max(int(x0), 0), min(int(x1) + 1, shape[1])))


def test_rest_frame_is_the_photo_exactly(renderer, portrait):
    frame = renderer.render(FrameWeights())
    assert frame.dtype == np.uint8 and frame.shape == portrait.shape
    assert np.array_equal(frame, portrait)  # "keep": the smile and its teeth stay


def test_neutral_closes_the_smile_and_changes_nothing_else(portrait, landmarks):
    neutral = Renderer(portrait, landmarks, expression="neutral")
    frame = neutral.render(FrameWeights())
    mouth = box_of(landmarks[list(idx.LIPS_OUTER)], 10, portrait.shape)
    same = frame.copy()
    same[mouth] = portrait[mouth]
    assert np.array_equal(same, portrait)
    # Teeth are nearly colourless, lips are not: the pale pixels inside the lips mostly go.
    assert pale_in_lips(frame, landmarks) < 0.5 * pale_in_lips(portrait, landmarks)


def test_a_bad_expression_is_refused(portrait, landmarks):
    with pytest.raises(ValueError, match="expression"):
        Renderer(portrait, landmarks, expression="smirk")


def test_the_head_never_moves_pixels_outside_the_person(portrait, landmarks):
    from genhuman.face import person_mask

    from genhuman.engines.lite.deform import smoothstep

    real = person_mask(portrait, landmarks)
    assert real.min() == 0.0 and real.max() == 1.0
    # A person edge through the side of the head (as a raised hand or a doorway would make):
    cut = landmarks[:, 0].min() + 15.0
    xs = np.arange(portrait.shape[1], dtype=np.float32)
    person = np.broadcast_to(smoothstep((xs - cut) / 10.0), portrait.shape[:2]).astype(np.float32)
    frame = Renderer(portrait, landmarks, person=person).render(LOUD)
    outside_person = person == 0.0
    assert np.array_equal(frame[outside_person], portrait[outside_person])
    free = Renderer(portrait, landmarks).render(LOUD)  # without the mask the head drags it
    assert not np.array_equal(free[outside_person], portrait[outside_person])


def test_eyes_move_by_whole_pixels_and_keep_every_pixel(renderer, portrait, landmarks):
    frame = renderer.render(FrameWeights(roll=1.3, shift_x=0.013, shift_y=-0.007))
    for contour in (idx.RIGHT_EYE, idx.LEFT_EYE):
        rows, cols = box_of(landmarks[list(contour)], 3, portrait.shape)
        patch = portrait[rows, cols]
        matches = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
                   if np.array_equal(frame[rows.start + dy:rows.stop + dy, cols.start + dx:cols.stop + dx], patch)]
        assert len(matches) == 1 and matches[0] != (0, 0)


def test_a_grey_photo_gets_a_grey_mouth(portrait, landmarks):
    import cv2

    grey = np.repeat(cv2.cvtColor(portrait, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    for expression in ("keep", "neutral"):
        frame = Renderer(grey, landmarks, expression=expression).render(FrameWeights(open=1.0, teeth=1.0))
        assert np.array_equal(frame[..., 0], frame[..., 1]) and np.array_equal(frame[..., 1], frame[..., 2])


def test_f_v_lifts_the_upper_lip_and_shows_teeth_on_the_lower(portrait, landmarks):
    neutral = Renderer(portrait, landmarks, expression="neutral")
    lift = neutral.mouth_bases["lift"]
    upper, lower = field_at(lift, landmarks[[idx.UPPER_LIP_OUTER, idx.LOWER_LIP_OUTER]])
    assert upper[1] > 0.01 * neutral.face_height and abs(lower[1]) < 1e-3  # the upper lip comes up
    frame = neutral.render(FrameWeights(lift=1.0, teeth=1.0)).astype(np.float32)
    rest = neutral.render(FrameWeights()).astype(np.float32)
    width = float(np.ptp(landmarks[list(idx.LIPS_OUTER)][:, 0]))
    assert pale_in_lips(frame, landmarks) > pale_in_lips(rest, landmarks) + width  # a row of teeth


def test_rounded_lips_grow_about_their_centre(renderer, landmarks):
    pout = renderer.mouth_bases["pout"]
    corners = landmarks[[idx.MOUTH_CORNER_RIGHT, idx.MOUTH_CORNER_LEFT]]
    right, left = field_at(pout, corners)
    # Backward offsets towards the centre: the corners show lip from nearer the middle, so the lips look larger.
    assert right[0] > 0.5 and left[0] < -0.5


def test_state_round_trip_renders_the_same_frames(portrait, landmarks):
    from genhuman.face import person_mask

    for expression in ("keep", "neutral"):
        original = Renderer(portrait, landmarks, expression=expression, person=person_mask(portrait, landmarks))
        copy = Renderer.from_state(original.state())
        assert copy.expression == expression
        assert np.array_equal(copy.render(LOUD), original.render(LOUD))


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


def test_a_closed_lid_under_head_motion_shows_no_eye_white(renderer, portrait, landmarks):
    from genhuman.eval.realism import eyes_mask, sclera_level

    moved = FrameWeights(blink=1.0, roll=1.1, shift_x=0.011, shift_y=0.006)  # sub-pixel head motion
    frame = renderer.render(moved)
    # The eye moved by whole pixels: find by how much, then look inside the moved eye contour.
    rows, cols = box_of(landmarks[list(idx.RIGHT_EYE) + list(idx.LEFT_EYE)], 12, portrait.shape)
    still = renderer.render(FrameWeights(blink=1.0))
    shift = min(((dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)),
                key=lambda d: np.abs(frame[rows.start + d[0]:rows.stop + d[0], cols.start + d[1]:cols.stop + d[1]]
                                     .astype(int) - still[rows, cols]).mean())
    eyes = np.roll(eyes_mask(landmarks, portrait.shape), shift, axis=(0, 1))
    grey = frame.astype(np.float32).mean(2)
    assert (grey[eyes] > sclera_level(portrait, landmarks, 99.0)).sum() == 0
