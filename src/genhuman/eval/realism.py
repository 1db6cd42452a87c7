"""Does a talking portrait still look like the photo? The measures of issue 10.

Pure functions on arrays (so they are tested on synthetic images with known answers), plus
the two that need a model: :func:`segment_person` (MediaPipe's bundled selfie segmentation)
and :func:`gallery_portraits` (the three test portraits, found with the face mesh).

- background: PSNR of a frame against the photo outside the person (:func:`person_region`).
- sharpness: Laplacian variance in the eye region, frame / photo (:func:`sharpness_ratio`).
- teeth: the photo's visible teeth (:func:`teeth_mask`), compared by PSNR.
- chroma: the largest CIELAB chroma in a region (:func:`max_chroma`), 0 for a grey picture.
- blinks: eye-aspect ratio per frame (:func:`eye_aspect_ratio`), runs of closed frames as
  durations (:func:`blink_runs`), and pixels brighter than the photo's sclera (:func:`sclera_level`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from genhuman.eval.identity import psnr, refine_alignment
from genhuman.face import landmark_indices as idx
from genhuman.face.segmentation import segment_person  # re-exported: the measures' person confidence

PSNR_CAP = 100.0  # dB for identical pixels (genhuman.eval.identity.psnr)
CLOSEUP_SIZE = 1024
CLOSEUP_MARGIN = 0.15  # of the face box's larger side, on each side: a tight crop
PERSON_THRESHOLD = 0.5  # selfie-segmentation confidence above which a pixel is the person
PERSON_DILATE = 0.06  # face heights: the segmentation's soft edge (hair) and the head's own few-% motion
EYE_MARGIN = 0.35  # eye widths around each eye contour: lids, lashes, the crease
TEETH_MIN_VALUE = 140  # HSV value (0..255): teeth are bright...
TEETH_MAX_SATURATION = 90  # ... and nearly colourless (lips and gums are saturated)
BLINK_CLOSED = 0.8  # a frame's eyes are closing when their aspect ratio is below this x the open one
OPEN_EYES = 0.9  # ... and open (a rest frame) above this x the open one
SHARPNESS_EYE_WIDTH = 32.0  # px: sharpness is measured with the eye at most this wide


# --- the test portraits ----------------------------------------------------------------------

def closeup(image: np.ndarray, landmarks: np.ndarray, size: int = CLOSEUP_SIZE,
            margin: float = CLOSEUP_MARGIN) -> np.ndarray:
    """A tight square crop around the face mesh, scaled to ``size`` px (cubic)."""
    x0, y0 = landmarks.min(axis=0)
    x1, y1 = landmarks.max(axis=0)
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    side = min(side, image.shape[0], image.shape[1])
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    left = int(round(np.clip(cx - side / 2.0, 0, image.shape[1] - side)))
    top = int(round(np.clip(cy - side / 2.0, 0, image.shape[0] - side)))
    crop = image[top:top + int(side), left:left + int(side)]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)


def greyscale(image: np.ndarray) -> np.ndarray:
    """The picture in grey, three equal channels (a black-and-white photo as users send it)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))


def gallery_portraits(example: str | Path) -> dict[str, np.ndarray]:
    """The three portraits of issue 10 from one photo: itself, a 1024 px close-up, greyscale."""
    from genhuman.face import face_landmarks
    from genhuman.media import load_image

    image = load_image(example)
    landmarks = face_landmarks(image, name="the example").landmarks
    return {"example": image, "closeup": closeup(image, landmarks), "grey": greyscale(image)}


# --- background ------------------------------------------------------------------------------

def face_height(landmarks: np.ndarray) -> float:
    return float(landmarks[:, 1].max() - landmarks[:, 1].min())


def person_region(segmentation: np.ndarray, landmarks: np.ndarray, dilate: float = PERSON_DILATE) -> np.ndarray:
    """Boolean mask of the person: segmentation > 0.5, united with the face mesh's hull,
    dilated by ``dilate`` face heights. Its complement is the background that must not move."""
    mask = (segmentation > PERSON_THRESHOLD).astype(np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(landmarks).astype(np.int32)), 1)
    radius = int(round(dilate * face_height(landmarks)))
    if radius > 0:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    return mask > 0


def worst_and_median(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return float(np.min(values)), float(np.median(values))


# --- sharpness -------------------------------------------------------------------------------

def eye_region(landmarks: np.ndarray, shape: tuple[int, ...], margin: float = EYE_MARGIN) -> np.ndarray:
    """Boolean mask: a box around each eye contour, ``margin`` eye widths wider on every side."""
    mask = np.zeros(shape[:2], bool)
    for contour in (idx.RIGHT_EYE, idx.LEFT_EYE):
        points = landmarks[list(contour)]
        (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
        pad = margin * (x1 - x0)
        top, bottom = max(0, int(np.floor(y0 - pad))), min(shape[0], int(np.ceil(y1 + pad)) + 1)
        left, right = max(0, int(np.floor(x0 - pad))), min(shape[1], int(np.ceil(x1 + pad)) + 1)
        mask[top:bottom, left:right] = True
    return mask


def laplacian_variance(image: np.ndarray, mask: np.ndarray, scale: float = 1.0) -> float:
    """Variance of the 4-neighbour Laplacian of the grey picture over ``mask``, the picture
    first reduced by ``scale`` (< 1: area averaging) when given."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    if scale < 1.0:
        size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    laplacian = cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F, ksize=1, borderType=cv2.BORDER_REFLECT)
    return float(np.var(laplacian[mask]))


def sharpness_scale(landmarks: np.ndarray, eye_width: float = SHARPNESS_EYE_WIDTH) -> float:
    """The reduction that brings the eye to at most ``eye_width`` px: an enlarged photo is smooth
    at its own pixel scale, where the encoder's noise would be all the Laplacian sees."""
    width = float(np.linalg.norm(landmarks[idx.RIGHT_EYE_CORNERS[0]] - landmarks[idx.RIGHT_EYE_CORNERS[1]]))
    return min(1.0, eye_width / width) if width > 0 else 1.0


def sharpness_ratio(frame: np.ndarray, photo: np.ndarray, mask: np.ndarray, scale: float = 1.0) -> float:
    """Laplacian variance of ``frame`` / that of ``photo`` on the same region: 1 = as sharp."""
    reference = laplacian_variance(photo, mask, scale)
    return laplacian_variance(frame, mask, scale) / reference if reference > 0 else float("nan")


# --- mouth -----------------------------------------------------------------------------------

def polygon_mask(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask > 0


def teeth_mask(photo: np.ndarray, landmarks: np.ndarray, min_value: int = TEETH_MIN_VALUE,
               max_saturation: int = TEETH_MAX_SATURATION) -> np.ndarray:
    """The photo's visible teeth: inside the inner lip contour, bright and nearly colourless."""
    inside = polygon_mask(landmarks[list(idx.LIPS_INNER)], photo.shape)
    hsv = cv2.cvtColor(photo, cv2.COLOR_RGB2HSV)
    return inside & (hsv[:, :, 2] >= min_value) & (hsv[:, :, 1] <= max_saturation)


def mouth_region(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean box around the lips, widened by half a mouth width and lowered by one (the jaw
    drops when the mouth opens): where a synthesised interior can appear."""
    points = landmarks[list(idx.LIPS_OUTER)]
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    width = x1 - x0
    mask = np.zeros(shape[:2], bool)
    mask[max(0, int(y0 - 0.25 * width)):min(shape[0], int(y1 + width) + 1),
         max(0, int(x0 - 0.5 * width)):min(shape[1], int(x1 + 0.5 * width) + 1)] = True
    return mask


def chroma(image: np.ndarray) -> np.ndarray:
    """CIELAB chroma sqrt(a^2 + b^2) per pixel (0 for grey, ~104.6 for pure sRGB red)."""
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return np.hypot(lab[:, :, 1], lab[:, :, 2])


def max_chroma(image: np.ndarray, mask: Optional[np.ndarray] = None) -> float:
    if mask is None:
        return float(chroma(image).max())
    if not mask.any():
        return 0.0
    ys, xs = np.nonzero(mask)  # only the mask's bounding box is converted
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    return float(chroma(image[box])[mask[box]].max())


# --- eyes ------------------------------------------------------------------------------------

def eye_aspect_ratio(landmarks: np.ndarray) -> float:
    """Lid gap / eye width, averaged over both eyes (about 0.3 open, near 0 closed)."""
    ratios: list[float] = []
    for lids, corners in ((idx.RIGHT_EYE_LIDS, idx.RIGHT_EYE_CORNERS), (idx.LEFT_EYE_LIDS, idx.LEFT_EYE_CORNERS)):
        gap = np.linalg.norm(landmarks[lids[0]] - landmarks[lids[1]])
        width = np.linalg.norm(landmarks[corners[0]] - landmarks[corners[1]])
        ratios.append(float(gap / width) if width > 0 else float("nan"))
    return float(np.mean(ratios))


def blink_runs(ratios: np.ndarray, open_ratio: float, closed: float = BLINK_CLOSED) -> list[tuple[int, int]]:
    """(first, last + 1) frame of each run where the eye-aspect ratio is below ``closed`` x
    ``open_ratio`` (frames without a face, NaN, count as open)."""
    shut = np.nan_to_num(np.asarray(ratios, np.float64), nan=np.inf) < closed * open_ratio
    return true_runs(shut)


def weight_runs(weights: np.ndarray, at_least: float) -> list[tuple[int, int]]:
    """(first, last + 1) frame of each run where a blink weight (0 open .. 1 closed, e.g. the
    engine's motion track) is at least ``at_least``; ``at_least`` 0 or less: above 0."""
    values = np.asarray(weights, np.float64)
    return true_runs(values > 0 if at_least <= 0 else values >= at_least)


def true_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    runs, start = [], None
    for k, value in enumerate(np.append(np.asarray(flags, bool), False)):
        if value and start is None:
            start = k
        elif not value and start is not None:
            runs.append((start, k))
            start = None
    return runs


def run_durations_ms(runs: list[tuple[int, int]], fps: float) -> list[float]:
    return [1000.0 * (stop - start) / fps for start, stop in runs]


def iris_disc(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    for center, ring in ((idx.RIGHT_IRIS_CENTER, idx.RIGHT_IRIS), (idx.LEFT_IRIS_CENTER, idx.LEFT_IRIS)):
        radius = np.mean(np.linalg.norm(landmarks[list(ring)] - landmarks[center], axis=1))
        cv2.circle(mask, tuple(int(round(v)) for v in landmarks[center]), int(np.ceil(radius)), 1, -1)
    return mask > 0


def eyes_mask(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inside the two eye contours (the open eye in the photo)."""
    return (polygon_mask(landmarks[list(idx.RIGHT_EYE)], shape)
            | polygon_mask(landmarks[list(idx.LEFT_EYE)], shape))


def sclera_level(photo: np.ndarray, landmarks: np.ndarray, percentile: float = 50.0) -> float:
    """A percentile of the grey levels of the photo's sclera: inside the eye contours, outside
    the iris (50: its typical level; 99: its brightest, short of a few glints)."""
    region = eyes_mask(landmarks, photo.shape) & ~iris_disc(landmarks, photo.shape)
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    return float(np.percentile(grey[region], percentile)) if region.any() else float("nan")


def lid_skin(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The skin above each eye, inside :func:`eye_region`: what a closed lid is made of."""
    eyes = eyes_mask(landmarks, shape)
    region = eye_region(landmarks, shape) & ~(cv2.dilate(eyes.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    top = np.zeros(shape[:2], bool)
    for contour in (idx.RIGHT_EYE, idx.LEFT_EYE):
        points = landmarks[list(contour)]
        x0, x1 = points[:, 0].min(), points[:, 0].max()
        top[:int(points[:, 1].mean()), max(0, int(x0)):int(x1) + 1] = True
    return region & top


def off_tones(image: np.ndarray, mask: np.ndarray, low: float, high: float) -> float:
    """Share of the ``mask`` pixels whose grey level is outside [low, high] (e.g. the photo's lid
    skin range: in a closed eye, iris or sclera smeared into the lid)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[mask]
    return float(np.mean((grey < low) | (grey > high))) if grey.size else float("nan")


def brighter_than(image: np.ndarray, mask: np.ndarray, level: float) -> int:
    """How many pixels of ``mask`` have a grey level above ``level``."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return int(np.count_nonzero(grey[mask] > level))


# --- one portrait, frame after frame -----------------------------------------------------------

@dataclass
class Reference:
    """What the frames of one portrait are compared with (all masks in the photo's pixels)."""

    photo: np.ndarray
    landmarks: np.ndarray
    background: np.ndarray  # outside the dilated person
    eyes_box: np.ndarray  # eye_region: sharpness
    eyes: np.ndarray  # inside the eye contours: blink brightness
    teeth: np.ndarray
    mouth: np.ndarray
    sclera: float  # median grey level
    sclera_top: float  # 99th percentile
    open_ratio: float  # eye-aspect ratio of the photo
    photo_chroma: float  # the photo's own largest chroma, anywhere
    scale: float  # sharpness_scale
    lid_tones: tuple[float, float]  # 1st and 99th percentile grey level of the photo's lid skin
    grey: np.ndarray  # float32 grey photo, for the fine alignment of the mouth
    lips: np.ndarray  # uint8: the outer lip contour, dilated: where the mouth is aligned finely


def reference_of(photo: np.ndarray, landmarks: np.ndarray, segmentation: np.ndarray) -> Reference:
    shape = photo.shape
    skin = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)[lid_skin(landmarks, shape)]
    low, high = (float(v) for v in np.percentile(skin, [1, 99])) if skin.size else (0.0, 255.0)
    return Reference(
        photo=photo, landmarks=landmarks, background=~person_region(segmentation, landmarks),
        eyes_box=eye_region(landmarks, shape), eyes=eyes_mask(landmarks, shape),
        teeth=teeth_mask(photo, landmarks), mouth=mouth_region(landmarks, shape),
        sclera=sclera_level(photo, landmarks), sclera_top=sclera_level(photo, landmarks, 99.0),
        open_ratio=eye_aspect_ratio(landmarks), photo_chroma=max_chroma(photo), scale=sharpness_scale(landmarks),
        lid_tones=(low, high), grey=cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32),
        lips=cv2.dilate(polygon_mask(landmarks[list(idx.LIPS_OUTER)], shape).astype(np.uint8),
                        np.ones((9, 9), np.uint8)))


def aligned_to_photo(frame: np.ndarray, frame_landmarks: np.ndarray, ref: Reference) -> np.ndarray:
    """The frame moved onto the photo by the similarity transform of the head's stable points
    (head motion undone), for comparing parts of the face that moved with the head."""
    stable = list(idx.STABLE)
    matrix, _ = cv2.estimateAffinePartial2D(frame_landmarks[stable], ref.landmarks[stable], method=cv2.LMEDS)
    if matrix is None:
        return frame
    height, width = ref.photo.shape[:2]
    return cv2.warpAffine(frame, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def rigidly_moved(photo: np.ndarray, photo_landmarks: np.ndarray, frame_landmarks: np.ndarray) -> np.ndarray:
    """The photo moved by a frame's head motion and nothing else (one cubic warp by the similarity
    of the stable points): what a perfect frame would be, to calibrate the measures with."""
    stable = list(idx.STABLE)
    matrix, _ = cv2.estimateAffinePartial2D(photo_landmarks[stable], frame_landmarks[stable], method=cv2.LMEDS)
    if matrix is None:
        return photo.copy()
    height, width = photo.shape[:2]
    return cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


@dataclass
class FrameScores:
    background_psnr: float
    sharpness: float
    teeth_psnr: float  # NaN without teeth in the photo or without a face in the frame
    mouth_chroma: float
    eye_ratio: float  # NaN without a face
    above_sclera: float  # share of the eye-contour pixels brighter than the sclera's median
    above_sclera_top: float  # ... than its 99th percentile
    off_lid_tones: float  # share of the eye-contour pixels outside the lid skin's tones (off_tones)


def score_frame(ref: Reference, frame: np.ndarray, frame_landmarks: Optional[np.ndarray]) -> FrameScores:
    """Every per-frame measure of one frame; ``frame_landmarks`` from the face mesh on it."""
    teeth = float("nan")
    if frame_landmarks is not None and ref.teeth.any():
        # The mesh leaves the teeth a pixel off; ECC on the lips brings them to within a fraction
        # (the photo moved rigidly scores 53-55 dB on the close-up's teeth, 28-29 on the 512 px example's).
        aligned = refine_alignment(aligned_to_photo(frame, frame_landmarks, ref), ref.grey, ref.lips)
        teeth = psnr(aligned, ref.photo, ref.teeth)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[ref.eyes]
    return FrameScores(
        background_psnr=psnr(frame, ref.photo, ref.background) if ref.background.any() else float("nan"),
        sharpness=sharpness_ratio(frame, ref.photo, ref.eyes_box, ref.scale),
        teeth_psnr=teeth, mouth_chroma=max_chroma(frame, ref.mouth),
        eye_ratio=eye_aspect_ratio(frame_landmarks) if frame_landmarks is not None else float("nan"),
        above_sclera=float(np.mean(grey > ref.sclera)), above_sclera_top=float(np.mean(grey > ref.sclera_top)),
        off_lid_tones=off_tones(frame, ref.eyes, *ref.lid_tones))


__all__ = [
    "FrameScores", "PSNR_CAP", "Reference", "aligned_to_photo", "blink_runs", "brighter_than", "chroma", "closeup",
    "eye_aspect_ratio", "eye_region", "eyes_mask", "gallery_portraits", "greyscale", "iris_disc", "laplacian_variance",
    "lid_skin", "max_chroma", "mouth_region", "off_tones", "person_region", "psnr", "reference_of", "rigidly_moved",
    "run_durations_ms", "score_frame", "sclera_level", "segment_person", "sharpness_ratio", "sharpness_scale",
    "teeth_mask", "true_runs", "weight_runs", "worst_and_median",
]
