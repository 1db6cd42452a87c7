"""The person in a portrait: MediaPipe's selfie segmentation, and a soft mask of it.

:func:`person_mask` is 1 deep inside the person (hair, face, neck, shoulders) and falls
smoothly to exactly 0 at the silhouette's edge, so a warp weighted by it leaves every
background pixel where the photo has it (issue 10: the lite engine's still background).
:func:`mask_from_confidence` is the same mask from a confidence map already in hand.
"""

from __future__ import annotations

import cv2
import numpy as np

from genhuman.face import _mediapipe

PERSON_THRESHOLD = 0.5  # selfie-segmentation confidence above which a pixel is the person
PERSON_FEATHER = 0.08  # face heights over which the mask rises from 0 at the edge to 1 inside


def segment_person(image: np.ndarray) -> np.ndarray:
    """Per-pixel person confidence, float32 0..1, HxW, of an HxWx3 RGB uint8 image
    (MediaPipe's general selfie segmentation, bundled with mediapipe)."""
    with _mediapipe.borrow("selfie-segmentation", _mediapipe.selfie_segmentation) as graph:
        result = graph.process(np.ascontiguousarray(image))
    return np.asarray(result.segmentation_mask, np.float32)


def person_mask(image: np.ndarray, landmarks: np.ndarray, *, feather: float = PERSON_FEATHER) -> np.ndarray:
    """Soft person mask, float32 HxW in 0..1: see :func:`mask_from_confidence`.
    ``landmarks``: the face mesh's (478, 2) pixel coordinates in ``image``."""
    return mask_from_confidence(segment_person(image), landmarks, feather=feather)


def mask_from_confidence(confidence: np.ndarray, landmarks: np.ndarray, *,
                         feather: float = PERSON_FEATHER) -> np.ndarray:
    """1 deeper than ``feather`` face heights inside the person, a smoothstep of the distance
    inside it nearer the edge, and exactly 0 outside it: the mask is nonzero on exactly the
    pixels of :func:`person_region`."""
    if not feather >= 0:
        raise ValueError(f"feather must be at least 0 face heights, got {feather}")
    region = person_region(confidence, landmarks)
    ramp = feather * face_height(landmarks)
    if ramp <= 0:
        return region.astype(np.float32)
    # Distance of each person pixel's centre to the nearest background pixel's centre (at
    # least 1); the edge runs half a pixel from both, so the ramp starts at distance 0.5.
    distance = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    t = np.clip((distance - 0.5) / ramp, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def person_region(confidence: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Boolean HxW: (confidence > 0.5) united with the face mesh's convex hull, only the part
    connected to the hull (a stray blob elsewhere is dropped), with its holes filled (gaps in
    the hair show background, but they move with the head)."""
    person = (np.asarray(confidence) > PERSON_THRESHOLD).astype(np.uint8)
    hull = face_hull(landmarks, person.shape)
    person |= hull
    return fill_holes(connected_to(person, hull))


def face_height(landmarks: np.ndarray) -> float:
    """The face mesh's vertical extent in pixels (the unit of ``feather``)."""
    return float(landmarks[:, 1].max() - landmarks[:, 1].min())


def face_hull(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 HxW, 1 inside the convex hull of the landmarks (clipped to the image)."""
    hull = np.zeros(shape[:2], np.uint8)
    points = np.round(np.asarray(landmarks, np.float64)[:, :2]).astype(np.int32)
    cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
    return hull


def connected_to(mask: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """The 8-connected components of ``mask`` that share a pixel with ``anchor``; all of
    ``mask`` when ``anchor`` has no pixel in the image (landmarks off the picture)."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    kept = np.zeros(count, bool)
    kept[labels[(anchor > 0) & (mask > 0)]] = True
    if not kept.any():
        return mask > 0
    return kept[labels]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` plus every background pocket that does not reach the image border
    (4-connected, the complement of the mask's 8-connectivity)."""
    count, labels = cv2.connectedComponents((~mask).astype(np.uint8), connectivity=4)
    outside = np.zeros(count, bool)
    outside[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
    outside[0] = False  # label 0 is the mask itself
    return ~outside[labels]
