"""Blinks as a lid that descends over the eye: where the lid samples, what stays put, and
what the face mesh sees on the warped portrait."""

from __future__ import annotations

import io
import time

import cv2
import numpy as np
import pytest

from genhuman.engines.lite import deform, motion
from genhuman.engines.lite.eyelids import EyeLids
from genhuman.eval import realism
from genhuman.face import FaceTracker, face_landmarks
from genhuman.face import landmark_indices as idx

CONTOURS = (idx.RIGHT_EYE, idx.LEFT_EYE)


@pytest.fixture(scope="module")
def lids(landmarks, portrait) -> EyeLids:
    return EyeLids(deform.face_frame(landmarks), landmarks, portrait.shape)


def full_field(lids: EyeLids, weight: float, shape: tuple[int, ...]) -> np.ndarray:
    field = np.zeros(shape[:2] + (2,), np.float32)
    for basis in lids.fields(weight):
        field[basis.y0:basis.y1, basis.x0:basis.x1] += basis.data
    return field


def warp(photo: np.ndarray, field: np.ndarray) -> np.ndarray:
    ys, xs = np.mgrid[0:photo.shape[0], 0:photo.shape[1]].astype(np.float32)
    return cv2.remap(photo, xs + field[..., 0], ys + field[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


class EyeCurves:
    """One eye's lid and brow lines in the face frame, from the mesh (independent of EyeLids)."""

    def __init__(self, landmarks: np.ndarray, eye: int):
        self.frame = deform.face_frame(landmarks)
        upper_ids, lower_ids, brow_ids = deform.EYES[eye]
        self.lines = [self.frame.to_face(landmarks[ids]) for ids in
                      (upper_ids, lower_ids, brow_ids[:len(brow_ids) // 2], brow_ids[len(brow_ids) // 2:])]
        u = np.linspace(*self.span, 64)
        self.height = float(np.max(self.lower(u) - self.upper(u)))

    @staticmethod
    def _at(line: tuple[np.ndarray, np.ndarray], u: np.ndarray) -> np.ndarray:
        order = np.argsort(line[0])
        return np.interp(u, line[0][order], line[1][order])

    @property
    def span(self) -> tuple[float, float]:
        return float(self.lines[0][0].min()), float(self.lines[0][0].max())

    def upper(self, u: np.ndarray) -> np.ndarray:
        return self._at(self.lines[0], u)

    def lower(self, u: np.ndarray) -> np.ndarray:
        return self._at(self.lines[1], u)

    def brow_low(self, u: np.ndarray) -> np.ndarray:
        return np.maximum(self._at(self.lines[2], u), self._at(self.lines[3], u))

    def edge(self, u: np.ndarray, weight: float, past_lower: float) -> np.ndarray:
        """The lid edge at ``weight``: that share of the way to ``past_lower`` below the lower lid."""
        closed = self.lower(u) + past_lower
        return self.upper(u) + weight * (closed - self.upper(u))


def eye_pixels(landmarks: np.ndarray, eye: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs) of the pixels inside one eye contour of the photo."""
    return np.nonzero(realism.polygon_mask(landmarks[list(CONTOURS[eye])], shape))


def sources(field: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    return np.stack([xs + field[ys, xs, 0], ys + field[ys, xs, 1]], 1).astype(np.float64)


@pytest.fixture(scope="module")
def closeup(portrait, landmarks) -> tuple[np.ndarray, np.ndarray, EyeLids]:
    """The example's face cropped and scaled to 1024 px (issue 10's close-up), its mesh and lids."""
    image = realism.closeup(portrait, landmarks)
    mesh = face_landmarks(image).landmarks.astype(np.float64)
    return image, mesh, EyeLids(deform.face_frame(mesh), mesh, image.shape)


def test_open_eyes_have_no_field(lids, portrait):
    assert lids.fields(0.0) == [] and lids.fields(-0.5) == []
    assert len(lids.boxes) == 2
    for (y0, y1, x0, x1), basis in zip(lids.boxes, lids.fields(1.0)):
        assert 0 <= y0 < y1 <= portrait.shape[0] and 0 <= x0 < x1 <= portrait.shape[1]
        assert (basis.y0, basis.y1, basis.x0, basis.x1) == (y0, y1, x0, x1)
        assert basis.data.dtype == np.float32 and np.abs(basis.data).max() > 3.0  # the lid does move
    # A lid that has barely started moves the eye by about as little (no jump out of rest).
    assert max(np.abs(b.data).max() for b in lids.fields(0.01)) < 0.5


def test_a_closed_lid_shows_only_lid_skin(lids, landmarks, portrait):
    field = full_field(lids, 1.0, portrait.shape)
    for eye, contour in enumerate(CONTOURS):
        curves = EyeCurves(landmarks, eye)
        ys, xs = eye_pixels(landmarks, eye, portrait.shape)
        assert len(ys) > 50
        src = sources(field, ys, xs)
        u, v = curves.frame.to_face(src)
        # Above the photo's upper lid by at least a pixel (the lashes), below the brow.
        assert np.all(v <= curves.upper(u) - 0.99)
        assert np.all(v > curves.brow_low(u))
        # ... so outside the photo's eye: none of its sclera or iris.
        polygon = landmarks[list(contour)].astype(np.float32)
        assert max(cv2.pointPolygonTest(polygon, (float(x), float(y)), True) for x, y in src) < -0.5


def test_a_half_closed_eye_shows_the_lower_half_of_the_real_eye(lids, landmarks, portrait):
    field = full_field(lids, 0.5, portrait.shape)
    for eye in range(2):
        curves = EyeCurves(landmarks, eye)
        ys, xs = eye_pixels(landmarks, eye, portrait.shape)
        u, v = curves.frame.to_face(np.stack([xs, ys], 1).astype(np.float64))
        # The closed edge is "a little below" the lower lid: between 0 and a third of the eye's
        # height plus 2 pixels (its anti-aliasing included). Pixels wholly on one side of the edge:
        below = v > curves.edge(u, 0.5, curves.height / 3 + 2.0) + 0.5
        above = v < curves.edge(u, 0.5, 0.0) - 0.5
        assert below.sum() >= 5 and above.sum() >= 20
        assert np.all(field[ys[below], xs[below]] == 0.0)  # unmoved, not compressed
        unmoved = np.mean(np.all(field[ys, xs] == 0.0, axis=1))
        assert 0.15 < unmoved < 0.6  # the lower half of the eye, short of the edge's own row, shows
        src = sources(field, ys[above], xs[above])
        su, sv = curves.frame.to_face(src)
        assert np.all(sv <= curves.upper(su) - 0.99)  # lid and lashes, never the eye


@pytest.mark.parametrize("weight", [0.1, 0.5, 1.0])
def test_no_moved_pixel_samples_inside_the_eye(lids, landmarks, portrait, weight):
    # The edge's anti-aliasing included: a blend of the offset towards zero there would
    # sample the middle of the eye (a bright line under a closed lid).
    field = full_field(lids, weight, portrait.shape)
    for eye, (y0, y1, x0, x1) in enumerate(lids.boxes):
        curves = EyeCurves(landmarks, eye)
        ys, xs = np.nonzero(np.any(field[y0:y1, x0:x1] != 0.0, axis=2))
        assert len(ys) > 20
        src = sources(field, ys + y0, xs + x0)
        polygon = landmarks[list(CONTOURS[eye])].astype(np.float32)
        depth = [cv2.pointPolygonTest(polygon, (float(x), float(y)), True) for x, y in src]
        assert max(depth) <= 0.5  # the lid margin's own blend of lash and eye at most
        u, v = curves.frame.to_face(src)
        within = (u >= curves.span[0]) & (u <= curves.span[1])
        assert np.all(v[within] <= curves.upper(u[within]) + 0.5)


def test_offsets_at_points_match_the_fields_and_keep_the_edge_under_a_head_motion(lids, landmarks, portrait):
    (y0, y1, x0, x1), _ = lids.boxes
    ys, xs = np.mgrid[y0 - 3:y1 + 3, x0 - 3:x1 + 3].astype(np.float32)
    field = full_field(lids, 0.7, portrait.shape)
    assert np.array_equal(lids.offsets_at(0.7, xs, ys), field[y0 - 3:y1 + 3, x0 - 3:x1 + 3])
    assert not lids.offsets_at(0.0, xs, ys).any()
    # A head motion moves the frame's pixels by a fraction of a pixel in the portrait: the
    # offsets there come from the lid drawn at those points, never from the eye. Interpolating
    # the fields instead (what a remap of the summed field does) samples the eye at the edge.
    moved_x, moved_y = xs + np.float32(0.4), ys + np.float32(0.3)
    polygon = landmarks[list(CONTOURS[0])].astype(np.float32)

    def deepest_in_eye(offsets: np.ndarray) -> float:
        moved = np.any(offsets != 0.0, axis=2)
        src = np.stack([moved_x[moved] + offsets[moved][:, 0], moved_y[moved] + offsets[moved][:, 1]], 1)
        return max(cv2.pointPolygonTest(polygon, (float(x), float(y)), True) for x, y in src)

    for weight in (0.5, 1.0):
        assert deepest_in_eye(lids.offsets_at(weight, moved_x, moved_y)) <= 0.5
        interpolated = cv2.remap(full_field(lids, weight, portrait.shape), moved_x, moved_y, cv2.INTER_LINEAR)
        assert deepest_in_eye(interpolated) > 1.0


def test_the_lid_never_folds_and_the_brows_never_move(lids, landmarks, portrait):
    brows = np.concatenate([landmarks[ids] for _, _, ids in deform.EYES])
    around = np.concatenate([np.floor(brows), np.ceil(brows), np.floor(brows) + [1, 0], np.floor(brows) + [0, 1]])
    bx, by = around.astype(int).T
    for weight in (0.1, 0.25, 0.5, 0.75, 1.0):
        field = full_field(lids, weight, portrait.shape)
        assert np.all(field[by, bx] == 0.0), weight
        # Down each column the source only moves down: no skin shown twice, nothing torn back up.
        for y0, y1, x0, x1 in lids.boxes:
            source_y = np.arange(y0, y1, dtype=np.float32)[:, None] + field[y0:y1, x0:x1, 1]
            assert np.diff(source_y, axis=0).min() > 0.0, weight


@pytest.mark.parametrize("weight", [0.5, 1.0])
def test_the_lashes_come_down_as_they_are_and_the_skin_above_stretches(closeup, weight):
    image, mesh, lids = closeup
    for eye in range(2):
        curves = EyeCurves(mesh, eye)
        (y0, y1, _, _), centre = lids.boxes[eye], mesh[list(CONTOURS[eye])].mean(0)
        column = full_field(lids, weight, image.shape)[y0:y1, int(round(centre[0])), 1]
        edge = y0 + int(np.nonzero(column)[0].max())  # the lowest moved row
        rows_up = (edge - y0 - np.array([0.9, 0.5, 0.3]) * curves.height).astype(int)
        skin, lashes = column[rows_up[0]:rows_up[1]], column[rows_up[2]:edge - y0 - 2]
        # The skin is stretched: each row down shows the photo further up. The lashes at the
        # edge move as one (the rows differ only as the tilted column crosses the lid curve).
        stretch = -np.diff(skin)
        assert stretch.min() > 0.1
        assert np.abs(np.diff(lashes)).max() < 0.05 * stretch.min()
        assert column.min() < -0.8 * weight * curves.height


def test_the_state_rebuilds_the_same_lids(lids):
    buffer = io.BytesIO()
    np.savez(buffer, **lids.state())
    buffer.seek(0)
    with np.load(buffer) as saved:
        rebuilt = EyeLids.from_state(dict(saved))
    assert rebuilt.boxes == lids.boxes
    for weight in (0.0, 0.3, 1.0):
        a, b = lids.fields(weight), rebuilt.fields(weight)
        assert len(a) == len(b)
        assert all((x.y0, x.x0) == (y.y0, y.x0) and np.array_equal(x.data, y.data) for x, y in zip(a, b))


def test_fields_take_well_under_a_millisecond(lids):
    lids.fields(0.5)
    started = time.perf_counter()
    for k in range(100):
        lids.fields(0.2 + 0.006 * k)
    assert (time.perf_counter() - started) / 100 < 3e-3  # ~0.15 ms here; 3 ms leaves room for a busy machine


def test_the_face_mesh_sees_the_warped_eyes_closed_and_no_sclera(lids, landmarks, portrait):
    open_ratio = realism.eye_aspect_ratio(landmarks)
    closed = warp(portrait, full_field(lids, 1.0, portrait.shape))
    assert realism.eye_aspect_ratio(face_landmarks(closed).landmarks) < 0.5 * open_ratio
    eyes = realism.eyes_mask(landmarks, portrait.shape)
    assert realism.brighter_than(closed, eyes, realism.sclera_level(portrait, landmarks, 99.0)) == 0
    assert np.array_equal(warp(portrait, full_field(lids, 0.0, portrait.shape)), portrait)


def test_a_blink_is_seen_closed_for_150_to_250_ms(lids, landmarks, portrait):
    fps = 25
    stream = motion.MotionStream(fps, seed=0)
    weights = np.array([stream.next(0.0).blink for _ in range(3 * fps)])
    start, stop = realism.weight_runs(weights, 0.0)[0]
    assert (stop - start) / fps <= 0.3
    open_ratio = realism.eye_aspect_ratio(landmarks)
    with FaceTracker() as tracker:  # video mode, as the realism benchmark reads the frames
        ratios = [realism.eye_aspect_ratio(tracker.track(warp(portrait, full_field(lids, float(w), portrait.shape)))
                                           .landmarks) for w in weights[start - 3:stop + 3]]
    seen = realism.blink_runs(np.array(ratios), open_ratio)
    assert len(seen) == 1
    assert 0.15 <= realism.run_durations_ms(seen, fps)[0] / 1000 <= 0.25
