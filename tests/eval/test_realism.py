"""The realism measures on synthetic pictures whose answers are known."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from genhuman.eval import realism
from genhuman.face import landmark_indices as idx


def landmarks_at(center: tuple[float, float]) -> np.ndarray:
    return np.tile(np.asarray(center, np.float32), (idx.NUM_LANDMARKS, 1))


def ring(points: tuple[int, ...], center: tuple[float, float], rx: float, ry: float, lm: np.ndarray) -> None:
    angles = np.linspace(0, 2 * np.pi, len(points), endpoint=False)
    lm[list(points)] = np.stack([center[0] + rx * np.cos(angles), center[1] + ry * np.sin(angles)], axis=1)


def test_psnr_equal_frame_is_capped_and_known_error_gives_the_formula():
    photo = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.ones((32, 32), bool)
    assert realism.psnr(photo, photo, mask) == realism.PSNR_CAP
    frame = photo.astype(np.int16)
    frame[:, :16] = np.clip(frame[:, :16] + 10, 0, 255)
    frame[:, :16][photo[:, :16] > 245] = photo[:, :16][photo[:, :16] > 245] - 10  # keep |error| = 10
    left = np.zeros((32, 32), bool)
    left[:, :16] = True
    assert realism.psnr(frame.astype(np.uint8), photo, left) == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)
    assert realism.psnr(frame.astype(np.uint8), photo, ~left) == realism.PSNR_CAP  # only the region counts


def test_person_region_is_the_hull_dilated_by_face_heights():
    lm = landmarks_at((50, 50))
    lm[:4] = [(40, 40), (60, 40), (60, 60), (40, 60)]  # face height 20
    none = np.zeros((100, 100), np.float32)
    tight = realism.person_region(none, lm, dilate=0.0)
    assert tight.sum() == 21 * 21 and tight[40, 40] and not tight[39, 50]
    wide = realism.person_region(none, lm, dilate=0.5)  # radius 10 px
    assert wide[50, 30] and not wide[50, 29] and wide[70, 50] and not wide[71, 50]
    seg = none.copy()
    seg[0:5, 0:5] = 0.9
    seg[90:, 90:] = 0.4  # below the threshold: background
    united = realism.person_region(seg, lm, dilate=0.0)
    assert united[2, 2] and not united[95, 95] and united.sum() == 21 * 21 + 25


def test_worst_and_median():
    assert realism.worst_and_median([40.0, 30.0, 50.0, 45.0]) == (30.0, 42.5)
    assert all(math.isnan(v) for v in realism.worst_and_median([]))


def test_laplacian_variance_of_a_sinusoid_matches_the_formula_and_halving_gives_a_quarter():
    period, amplitude = 8, 60.0
    x = np.arange(64)
    omega = 2 * np.pi / period
    stripes = np.tile(128 + amplitude * np.sin(omega * x), (64, 1))
    photo = np.repeat(np.round(stripes).astype(np.uint8)[:, :, None], 3, axis=2)
    mask = np.zeros((64, 64), bool)
    mask[8:56, 8:56] = True  # whole periods, away from the border
    expected = amplitude ** 2 * (2 - 2 * math.cos(omega)) ** 2 / 2
    assert realism.laplacian_variance(photo, mask) == pytest.approx(expected, rel=0.02)
    half = np.repeat(np.round(128 + amplitude / 2 * np.sin(omega * x)).astype(np.uint8), 64).reshape(64, 64).T
    frame = np.repeat(half[:, :, None], 3, axis=2)
    assert realism.sharpness_ratio(frame, photo, mask) == pytest.approx(0.25, rel=0.03)
    assert realism.sharpness_ratio(photo, photo, mask) == 1.0


def test_a_blurred_eye_region_lowers_the_sharpness_ratio_by_the_independently_computed_amount():
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)
    lm = landmarks_at((60, 40))
    ring(idx.RIGHT_EYE, (35, 40), 10, 4, lm)
    ring(idx.LEFT_EYE, (85, 40), 10, 4, lm)
    region = realism.eye_region(lm, photo.shape, margin=0.5)  # boxes 20 + 2 x 10 wide
    assert region[40, 15] and region[40, 55] and not region[40, 14] and not region[40, 60]
    assert region[26, 35] and region[54, 35] and not region[25, 35] and not region[55, 35]
    frame = photo.copy()
    frame[20:60, 10:110] = cv2.GaussianBlur(photo, (0, 0), 1.2)[20:60, 10:110]
    ratio = realism.sharpness_ratio(frame, photo, region)
    grey_f, grey_p = (cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in (frame, photo))
    ys, xs = np.nonzero(region)
    expected = (np.var(four_neighbour_laplacian_variance_map(grey_f)[ys, xs])
                / np.var(four_neighbour_laplacian_variance_map(grey_p)[ys, xs]))
    assert ratio < 0.2 and ratio == pytest.approx(expected, rel=1e-9)


def four_neighbour_laplacian_variance_map(grey: np.ndarray) -> np.ndarray:
    g = np.pad(grey.astype(np.float64), 1, mode="symmetric")
    return g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]


def test_teeth_mask_keeps_bright_colourless_pixels_inside_the_inner_lip_only():
    photo = np.zeros((60, 80, 3), np.uint8)
    photo[:] = (170, 60, 60)  # lips: bright but saturated
    photo[25:35, 30:50] = (235, 230, 220)  # teeth
    photo[25:35, 0:10] = (240, 240, 240)  # white outside the mouth: not teeth
    lm = landmarks_at((40, 30))
    ring(idx.LIPS_INNER, (40, 30), 15, 8, lm)
    mask = realism.teeth_mask(photo, lm)
    assert mask.sum() == 10 * 20 and mask[25:35, 30:50].all()
    photo[25:35, 30:50] = (90, 88, 85)  # dark: not teeth
    assert realism.teeth_mask(photo, lm).sum() == 0


def test_chroma_is_zero_for_grey_and_the_cielab_value_for_red():
    grey = np.repeat(np.arange(256, dtype=np.uint8).reshape(16, 16)[:, :, None], 3, axis=2)
    assert realism.max_chroma(grey) < 0.5
    red = np.zeros((4, 4, 3), np.uint8)
    red[1, 1] = (255, 0, 0)  # CIELAB (53.24, 80.09, 67.20): chroma 104.55
    assert realism.max_chroma(red) == pytest.approx(104.55, abs=0.1)
    away = np.zeros((4, 4), bool)
    away[3, 3] = True
    assert realism.max_chroma(red, away) == 0.0


def test_greyscale_has_three_equal_channels_of_the_luma():
    image = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    grey = realism.greyscale(image)
    assert grey.shape == image.shape and (grey[:, :, 0] == grey[:, :, 2]).all()
    assert (grey[:, :, 1] == cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)).all()


def test_closeup_is_a_tight_square_crop_scaled_to_1024():
    image = np.zeros((200, 300, 3), np.uint8)
    image[80:120, 130:170] = 255
    lm = landmarks_at((150, 100))
    lm[:2] = [(130, 80), (170, 120)]  # face box 40 px; crop 52 px from (124, 74)
    out = realism.closeup(image, lm)
    assert out.shape == (1024, 1024, 3)
    scale = 1024 / 52
    assert out[int(10 * scale), int(10 * scale)].min() == 255 and out[int(3 * scale), 512].max() == 0
    assert out[512, int(49 * scale)].max() == 0
    lm[:2] = [(0, 0), (40, 40)]  # at the corner: the crop stays inside the picture
    assert realism.closeup(image, lm).shape == (1024, 1024, 3)


def test_eye_aspect_ratio_and_blink_runs_in_milliseconds():
    lm = landmarks_at((50, 50))
    for lids, corners, x in ((idx.RIGHT_EYE_LIDS, idx.RIGHT_EYE_CORNERS, 30), (idx.LEFT_EYE_LIDS, idx.LEFT_EYE_CORNERS, 70)):
        lm[corners[0]], lm[corners[1]] = (x - 5, 50), (x + 5, 50)
        lm[lids[0]], lm[lids[1]] = (x, 48.5), (x, 51.5)
    assert realism.eye_aspect_ratio(lm) == pytest.approx(0.3)
    ratios = np.array([0.3, 0.3, 0.2, 0.05, 0.1, 0.3, np.nan, 0.3, 0.23, 0.3])
    runs = realism.blink_runs(ratios, open_ratio=0.3)  # closing below 0.24
    assert runs == [(2, 5), (8, 9)]
    assert realism.run_durations_ms(runs, 25) == [120.0, 40.0]
    assert realism.blink_runs(np.array([0.1, 0.1]), 0.3) == [(0, 2)]
    weights = np.array([0.0, 0.02, 0.7, 0.97, 0.5, 0.05, 0.0, 0.6])
    assert realism.weight_runs(weights, 0.0) == [(1, 6), (7, 8)]
    assert realism.weight_runs(weights, 0.5) == [(2, 5), (7, 8)]


def test_sclera_level_ignores_the_iris_and_bright_pixels_are_counted():
    photo = np.full((60, 100, 3), 120, np.uint8)
    lm = landmarks_at((50, 30))
    for contour, center, iris, ring_ids in ((idx.RIGHT_EYE, (30, 30), idx.RIGHT_IRIS_CENTER, idx.RIGHT_IRIS),
                                            (idx.LEFT_EYE, (70, 30), idx.LEFT_IRIS_CENTER, idx.LEFT_IRIS)):
        ring(contour, center, 12, 6, lm)
        lm[iris] = center
        ring(ring_ids, center, 4, 4, lm)
    eyes = realism.eyes_mask(lm, photo.shape)
    photo[eyes] = 210
    photo[realism.iris_disc(lm, photo.shape)] = 40
    assert realism.sclera_level(photo, lm) == 210.0
    assert realism.brighter_than(photo, eyes, 209.0) == int((eyes & ~realism.iris_disc(lm, photo.shape)).sum())
    assert realism.brighter_than(photo, eyes, 210.0) == 0
    iris = realism.iris_disc(lm, photo.shape)
    share = (eyes & iris).sum() / eyes.sum()  # the iris (40) is outside tones 100..200, the sclera (210) too
    assert realism.off_tones(photo, eyes, 100, 200) == 1.0
    assert realism.off_tones(photo, eyes, 100, 215) == pytest.approx(share)


def test_mouth_region_reaches_below_the_lips():
    lm = landmarks_at((50, 50))
    ring(idx.LIPS_OUTER, (50, 50), 10, 5, lm)  # mouth 20 wide, lips 45..55
    region = realism.mouth_region(lm, (120, 100))
    assert region[75, 50] and not region[76, 50] and region[50, 30] and not region[50, 29]
    assert region[40, 50] and not region[39, 50]


def test_gallery_portraits_and_the_person_mask_of_the_example():
    from pathlib import Path

    from genhuman.face import face_landmarks

    example = Path(__file__).resolve().parents[2] / "examples" / "astronaut.png"
    portraits = realism.gallery_portraits(example)
    assert {k: v.shape for k, v in portraits.items()} == {
        "example": (512, 512, 3), "closeup": (1024, 1024, 3), "grey": (512, 512, 3)}
    assert realism.max_chroma(portraits["grey"]) < 0.5 < realism.max_chroma(portraits["example"])
    face = face_landmarks(portraits["closeup"]).landmarks  # the face fills most of the close-up
    assert realism.face_height(face) > 0.6 * 1024
    person = realism.person_region(realism.segment_person(portraits["example"]),
                                   face_landmarks(portraits["example"]).landmarks)
    assert 0.4 < person.mean() < 0.9 and person[300, 256] and not person[5, 5]  # the flag corner is background
    assert realism.teeth_mask(portraits["closeup"], face).sum() > 2000  # she smiles with her teeth


def test_score_frame_of_the_photo_itself_and_of_a_frame_with_a_moved_background():
    from pathlib import Path

    from genhuman.face import face_landmarks

    photo = realism.gallery_portraits(Path(__file__).resolve().parents[2] / "examples" / "astronaut.png")["example"]
    face = face_landmarks(photo).landmarks
    ref = realism.reference_of(photo, face, realism.segment_person(photo))
    same = realism.score_frame(ref, photo, face)
    assert (same.background_psnr, same.sharpness, same.teeth_psnr) == (realism.PSNR_CAP, 1.0, realism.PSNR_CAP)
    assert same.eye_ratio == ref.open_ratio and same.mouth_chroma <= ref.photo_chroma
    assert 0.3 < same.above_sclera < 0.7 and same.above_sclera_top < 0.02  # half the sclera is above its median
    assert ref.lid_tones[0] < ref.sclera < ref.lid_tones[1] and 0.1 < same.off_lid_tones < 0.9  # iris, pupil
    moved = photo.copy()
    moved[ref.background] = np.roll(photo, 3, axis=1)[ref.background]
    scores = realism.score_frame(ref, moved, face)
    expected = realism.psnr(np.roll(photo, 3, axis=1), photo, ref.background)
    assert scores.background_psnr == pytest.approx(expected) and scores.background_psnr < 30
    assert scores.teeth_psnr == realism.PSNR_CAP and scores.sharpness == 1.0  # the person did not move
    assert math.isnan(realism.score_frame(ref, photo, None).teeth_psnr)  # no face in the frame: no alignment
    skin = realism.lid_skin(face, photo.shape)
    assert skin.any() and not (skin & ref.eyes).any()


def test_sharpness_of_an_enlarged_photo_is_measured_at_the_eye_width_it_was_taken_at():
    photo = np.random.default_rng(3).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[8:32, 8:32] = True
    big = np.repeat(np.repeat(photo, 4, axis=0), 4, axis=1)  # every pixel a 4x4 block
    big_mask = np.repeat(np.repeat(mask, 4, axis=0), 4, axis=1)
    assert realism.laplacian_variance(big, big_mask, 0.25) == pytest.approx(realism.laplacian_variance(photo, mask))
    assert realism.laplacian_variance(big, big_mask) < 0.3 * realism.laplacian_variance(photo, mask)
    lm = landmarks_at((0, 0))
    lm[idx.RIGHT_EYE_CORNERS[0]], lm[idx.RIGHT_EYE_CORNERS[1]] = (0, 0), (128, 0)
    assert realism.sharpness_scale(lm) == 0.25 and realism.sharpness_scale(lm, eye_width=200.0) == 1.0


def test_rigidly_moved_applies_the_stable_points_similarity():
    rng = np.random.default_rng(4)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), (0, 0), 2.0)
    lm = np.asarray(rng.uniform(10, 50, (idx.NUM_LANDMARKS, 2)), np.float32)
    assert (realism.rigidly_moved(photo, lm, lm) == photo).all()  # no motion: the photo itself
    moved = realism.rigidly_moved(photo, lm, lm + np.float32([3, -2]))  # a whole-pixel shift
    assert (moved[12:50, 13:51] == photo[14:52, 10:48]).all()


def test_teeth_of_the_closeup_moved_rigidly_are_found_kept():
    from pathlib import Path

    from genhuman.face import face_landmarks

    photo = realism.gallery_portraits(Path(__file__).resolve().parents[2] / "examples" / "astronaut.png")["closeup"]
    face = face_landmarks(photo).landmarks
    ref = realism.reference_of(photo, face, np.zeros(photo.shape[:2], np.float32))
    moved_face = face.copy()
    moved_face[:, 0] += 2.6  # the head moved right and down by a fraction of a pixel more than whole ones
    moved_face[:, 1] += 1.4
    moved = realism.rigidly_moved(photo, face, moved_face)
    kept = realism.score_frame(ref, moved, face_landmarks(moved).landmarks).teeth_psnr
    sealed = moved.copy()
    sealed[ref.teeth] = (150, 60, 70)  # teeth painted over with lip colour
    lost = realism.score_frame(ref, sealed, face_landmarks(moved).landmarks).teeth_psnr
    assert kept > 40 and lost < 20
