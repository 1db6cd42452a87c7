"""The soft person mask: exactly 0 outside the person, a smoothstep up to 1 inside it."""

from __future__ import annotations

import numpy as np
import pytest

from genhuman.face import _mediapipe, face_landmarks, landmark_indices as idx, person_mask, segment_person
from genhuman.face.segmentation import (PERSON_FEATHER, face_height, face_hull, fill_holes, mask_from_confidence,
                                        person_region)
from genhuman.media import load_image

SIZE = 200
CENTRE = (100, 100)
RADIUS = 60.5  # never a pixel's exact distance, so "inside" has no ties


@pytest.fixture(scope="module")
def portrait(portrait_path):
    return load_image(portrait_path)


@pytest.fixture(scope="module")
def landmarks(portrait):
    return face_landmarks(portrait).landmarks


@pytest.fixture(scope="module")
def confidence(portrait):
    return segment_person(portrait)


def radii(shape=(SIZE, SIZE), centre=CENTRE) -> np.ndarray:
    ys, xs = np.mgrid[:shape[0], :shape[1]]
    return np.hypot(xs - centre[0], ys - centre[1])


def disc_confidence(radius: float = RADIUS, centre=CENTRE) -> np.ndarray:
    """0.5 on the circle, rising inside and falling outside: only the threshold decides."""
    return np.clip(0.5 + (radius - radii(centre=centre)) / 10.0, 0.0, 1.0).astype(np.float32)


def ellipse_landmarks(centre=CENTRE, half_width: float = 20.0, half_height: float = 25.0) -> np.ndarray:
    """478 points on an ellipse: a face mesh 2 * half_height px tall."""
    angles = np.linspace(0.0, 2.0 * np.pi, idx.NUM_LANDMARKS, endpoint=False)
    points = np.stack([centre[0] + half_width * np.cos(angles), centre[1] + half_height * np.sin(angles)], axis=1)
    return points.astype(np.float32)


# --- on the bundled portrait ------------------------------------------------------------------

def test_the_astronaut_is_confidently_a_person_at_the_nose_and_not_in_the_top_corners(portrait, confidence,
                                                                                       landmarks):
    assert confidence.shape == portrait.shape[:2] and confidence.dtype == np.float32
    assert 0.0 <= confidence.min() and confidence.max() <= 1.0
    nose_x, nose_y = np.round(landmarks[idx.NOSE_TIP]).astype(int)
    assert confidence[nose_y, nose_x] > 0.9
    assert confidence[:20, :20].max() < 0.1 and confidence[:20, -20:].max() < 0.1
    assert _mediapipe.graphs_built()["selfie-segmentation"] >= 1  # a pooled graph, not one per call
    segment_person(np.ascontiguousarray(portrait[::-1]))
    assert np.array_equal(segment_person(portrait), confidence)  # a lent graph keeps nothing of its last image


def test_the_astronaut_mask_is_zero_off_the_person_and_rises_monotonically_to_one(portrait, confidence,
                                                                                    landmarks):
    mask = person_mask(portrait, landmarks)
    assert mask.shape == portrait.shape[:2] and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    nose_x, nose_y = np.round(landmarks[idx.NOSE_TIP]).astype(int)
    assert mask[nose_y, nose_x] == 1.0
    assert not mask[:40, :40].any()  # the flag's corner
    person = (confidence > 0.5) | (face_hull(landmarks, confidence.shape) > 0)
    assert not mask[~fill_holes(person)].any()  # every pixel off the silhouette is the photo's
    assert np.array_equal(mask > 0, person_region(confidence, landmarks))
    # Into the face from the left edge (along the nose's row) and from the top (its column):
    # 0 in the background, one smooth rise, then 1 with no dip.
    for profile in (mask[nose_y, :nose_x + 1], mask[:nose_y + 1, nose_x]):
        assert profile[0] == 0.0 and profile[-1] == 1.0
        assert np.all(np.diff(profile) >= 0.0), profile
        assert 0 < np.count_nonzero((profile > 0) & (profile < 1)) <= PERSON_FEATHER * face_height(landmarks) + 1


def test_a_grey_picture_and_a_tiny_one_get_masks_of_their_size(portrait, landmarks):
    grey = np.repeat(portrait.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    mask = person_mask(grey, landmarks)
    nose_x, nose_y = np.round(landmarks[idx.NOSE_TIP]).astype(int)
    assert mask.shape == (512, 512) and mask[nose_y, nose_x] == 1.0 and not mask[:40, :40].any()
    tiny = np.ascontiguousarray(portrait[::16, ::16])
    assert segment_person(tiny).shape == (32, 32)
    tiny_mask = person_mask(tiny, landmarks / 16.0)
    assert tiny_mask.shape == (32, 32) and tiny_mask.dtype == np.float32
    assert 0.0 <= tiny_mask.min() and tiny_mask.max() <= 1.0 and tiny_mask.any()


# --- on synthetic confidence maps -------------------------------------------------------------

def test_a_disc_gives_zero_exactly_outside_it_and_one_a_feather_inside():
    face = ellipse_landmarks()  # 50 px tall
    mask = mask_from_confidence(disc_confidence(), face, feather=0.2)  # a 10 px ramp
    r = radii()
    assert np.array_equal(mask == 0.0, r >= RADIUS)
    depth = RADIUS - r
    assert np.all(mask[depth >= 10.5] == 1.0)
    assert np.all(mask[(depth > 0) & (depth <= 8.5)] < 1.0)
    assert 0.4 < mask[(depth > 4.5) & (depth < 5.5)].mean() < 0.6  # half way up half way in
    # Smooth: no neighbour step steeper than the smoothstep's 1.5 / ramp (distances are 1-Lipschitz).
    steepest = max(np.abs(np.diff(mask, axis=0)).max(), np.abs(np.diff(mask, axis=1)).max())
    assert 0.1 < steepest <= 1.5 / 10.0 + 1e-6


def test_across_a_straight_edge_the_mask_is_the_smoothstep_of_the_depth():
    confidence = np.zeros((SIZE, SIZE), np.float32)
    confidence[:, :101] = 1.0  # the person is columns 0..100; the edge runs at x = 100.5
    face = ellipse_landmarks(centre=(50, 100))
    mask = mask_from_confidence(confidence, face, feather=0.2)
    assert np.all(mask == mask[0])  # the same along the edge: a straight edge stays straight
    t = np.clip((100.5 - np.arange(SIZE)) / (0.2 * face_height(face)), 0.0, 1.0)  # a ~10 px ramp
    np.testing.assert_allclose(mask[0], t * t * (3.0 - 2.0 * t), atol=1e-6)
    assert mask[0, 100] < 0.01 and mask[0, 101] == 0.0  # flat at the edge, not a step


def test_the_ramp_scales_with_the_face_height_and_zero_feather_is_the_region_itself():
    wide = mask_from_confidence(disc_confidence(), ellipse_landmarks(half_height=50.0), feather=0.2)  # 20 px
    depth = RADIUS - radii()
    assert np.all(wide[depth >= 20.5] == 1.0) and np.all(wide[(depth > 0) & (depth <= 18.5)] < 1.0)
    hard = mask_from_confidence(disc_confidence(), ellipse_landmarks(), feather=0.0)
    assert np.array_equal(hard, (depth > 0).astype(np.float32))
    with pytest.raises(ValueError, match="feather must be at least 0 face heights, got -0.1"):
        mask_from_confidence(disc_confidence(), ellipse_landmarks(), feather=-0.1)


def test_a_separate_blob_is_dropped_and_a_hole_is_filled():
    face = ellipse_landmarks()
    plain = mask_from_confidence(disc_confidence(), face)
    blob = np.maximum(disc_confidence(), disc_confidence(radius=6.5, centre=(185, 15)))
    assert (blob > 0.5).sum() > (disc_confidence() > 0.5).sum()
    assert np.array_equal(mask_from_confidence(blob, face), plain)
    holed = disc_confidence() * (radii(centre=(100, 140)) > 8.5)  # below the 25 px half-height face
    assert (holed <= 0.5).sum() > (disc_confidence() <= 0.5).sum()
    assert np.array_equal(mask_from_confidence(holed.astype(np.float32), face), plain)


def test_the_face_hull_is_part_of_the_person_even_where_the_segmentation_misses_it():
    face = ellipse_landmarks(centre=(100, 100))
    mask = mask_from_confidence(np.zeros((SIZE, SIZE), np.float32), face)
    assert np.array_equal(mask > 0, face_hull(face, (SIZE, SIZE)) > 0)
    assert mask[100, 100] == 1.0
    chin_out = mask_from_confidence(disc_confidence(radius=20.5), face)  # the 25 px half-height pokes out
    assert chin_out[123, 100] > 0 and chin_out[100, 100] == 1.0


def test_landmarks_off_the_picture_keep_the_whole_segmentation():
    off = ellipse_landmarks(centre=(-500, -500))
    both = np.maximum(disc_confidence(), disc_confidence(radius=6.5, centre=(185, 15)))
    assert np.array_equal(mask_from_confidence(both, off, feather=0.0) > 0, both > 0.5)
