"""The displacement bases: where they move, where they must not, and the lip sealing."""

from __future__ import annotations

import numpy as np
import pytest

from genhuman.engines.lite import deform
from genhuman.engines.lite.deform import Basis
from genhuman.engines.lite.render import FrameWeights
from genhuman.face import landmark_indices as idx


def field_at(basis: Basis, points: np.ndarray) -> np.ndarray:
    """The basis offset at the pixels nearest to ``points`` ((N, 2) x, y); 0 outside its box."""
    out = np.zeros((len(points), 2), np.float32)
    for i, (x, y) in enumerate(np.round(points).astype(int)):
        if basis.y0 <= y < basis.y1 and basis.x0 <= x < basis.x1:
            out[i] = basis.data[y - basis.y0, x - basis.x0]
    return out


def test_contour_halves_follow_the_mesh_order():
    assert deform.UPPER_INNER_LIP == [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
    assert deform.LOWER_INNER_LIP == [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
    upper, lower, _ = deform.EYES[0]
    assert upper[4] == 159 and lower[4] == 145 and upper[0] == lower[0] == 33


def test_mouth_bases_are_zero_at_stable_points(renderer, landmarks):
    anchors = landmarks[list(idx.STABLE) + [idx.NOSE_TIP] + list(idx.RIGHT_EYE) + list(idx.LEFT_EYE)]
    for name, basis in renderer.mouth_bases.items():
        assert np.abs(field_at(basis, anchors)).max() < 0.05, name


def test_closed_lids_leave_mouth_nose_and_brows_alone(renderer, landmarks):
    anchors = landmarks[list(idx.LIPS_OUTER) + [idx.NOSE_TIP] + list(idx.RIGHT_EYEBROW[5:])
                        + list(idx.LEFT_EYEBROW[5:])]
    for basis in renderer.eyelids.fields(1.0):
        assert np.abs(field_at(basis, anchors)).max() < 1e-3


def test_every_field_vanishes_on_the_edge_of_the_moving_region(renderer):
    source = renderer.backward_map(FrameWeights(open=1, widen=1, press=1, blink=1, roll=2.0,
                                                shift_x=0.03, shift_y=-0.02))
    offset = source - renderer.grid
    edges = [offset[0], offset[-1], offset[:, 0], offset[:, -1]]
    assert max(np.abs(e).max() for e in edges) < 1e-3


def test_jaw_drops_the_chin_by_the_configured_share_of_the_face(renderer, landmarks):
    face_height = np.linalg.norm(landmarks[idx.CHIN] - landmarks[idx.FACE_OVAL[0]])
    chin = field_at(renderer.mouth_bases["open"], landmarks[[idx.CHIN]])[0]
    # Backward offset: the chin shows content from above it, so it appears lower.
    assert chin[1] == pytest.approx(-deform.JAW_OPEN * face_height, rel=0.1)
    assert abs(chin[0]) < 0.05 * face_height


def test_upper_lip_lifts_while_the_lower_lip_drops(renderer, landmarks):
    basis = renderer.mouth_bases["open"]
    upper = field_at(basis, renderer.lip_upper[[16]])[0]
    lower = field_at(basis, renderer.lip_lower[[16]])[0]
    assert upper[1] > 0 > lower[1]
    assert upper[1] == pytest.approx(-deform.UPPER_LIP_LIFT * lower[1], rel=0.35)


def test_widen_and_round_move_the_corners_in_opposite_directions(renderer, landmarks):
    corners = landmarks[[idx.MOUTH_CORNER_RIGHT, idx.MOUTH_CORNER_LEFT]]
    widen = field_at(renderer.mouth_bases["widen"], corners)[:, 0]
    rounded = field_at(renderer.mouth_bases["round"], corners)[:, 0]
    # Image-left corner moves left when widening: it samples from its right (positive dx).
    assert widen[0] > 0 > widen[1]
    assert rounded[0] < 0 < rounded[1]


def test_seal_lips_closes_the_gap_and_touches_only_the_mouth(portrait, landmarks):
    sealed, sealed_landmarks = deform.seal_lips(portrait, landmarks)
    assert np.array_equal(sealed_landmarks[deform.UPPER_INNER_LIP], sealed_landmarks[deform.LOWER_INNER_LIP])
    lips = landmarks[list(idx.LIPS_OUTER)]
    changed = np.argwhere(np.any(sealed != portrait, axis=2))
    assert len(changed) > 0  # the example portrait smiles with its teeth showing
    (y0, x0), (y1, x1) = changed.min(0), changed.max(0)
    assert x0 >= lips[:, 0].min() - 1 and x1 <= lips[:, 0].max() + 1
    lip_height = lips[:, 1].max() - lips[:, 1].min()
    assert y0 >= lips[:, 1].min() - lip_height and y1 <= lips[:, 1].max() + lip_height


def test_seal_lips_leaves_a_closed_mouth_unchanged(portrait, landmarks):
    closed = landmarks.copy()
    closed[deform.LOWER_INNER_LIP] = closed[deform.UPPER_INNER_LIP]
    sealed, _ = deform.seal_lips(portrait, closed)
    assert sealed is portrait


def test_a_tilted_head_opens_its_jaw_along_its_own_axis(portrait):
    import cv2

    from genhuman.engines.lite.render import Renderer
    from genhuman.face import face_landmarks

    angle = 15.0  # degrees, counter-clockwise in the image
    rotation = cv2.getRotationMatrix2D((256.0, 256.0), angle, 1.0)
    tilted = cv2.warpAffine(portrait, rotation, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    landmarks = face_landmarks(tilted).landmarks.astype(np.float64)
    offset = field_at(Renderer(tilted, landmarks).mouth_bases["open"], landmarks[[idx.CHIN]])[0]
    # Upright, the chin samples straight up (0, -1); the face's "up" turns with it.
    up = np.array([-np.sin(np.deg2rad(angle)), -np.cos(np.deg2rad(angle))])
    cosine = offset @ up / np.linalg.norm(offset)
    assert cosine > np.cos(np.deg2rad(4.0))
