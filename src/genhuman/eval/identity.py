"""Does the face outside the mouth and jaw stay the person in the portrait?

Per video frame: estimate the similarity transform (rotation, uniform scale,
translation) that maps the frame's stable landmarks (eye corners, nose bridge,
forehead, inner brows) onto the portrait's, refine it on the pixels of the upper
face (ECC image alignment: mesh landmarks shift by a few pixels as the mouth opens),
warp the frame into the portrait's coordinates, and take the PSNR over an upper-face mask: brows, eyes, forehead and
nose, above the nose tip, so the mouth and jaw are excluded. Blinks change the
eyelids on purpose, so PSNR is reported both without and with the eye regions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from genhuman.errors import InputError
from genhuman.face import Face, FaceTracker, face_landmarks
from genhuman.face import landmark_indices as idx
from genhuman.media import iter_video_frames, load_image
from genhuman.media.images import ImageInput


ECC_ITERATIONS = 30


@dataclass
class IdentityReport:
    frames: int
    face_frames: int
    mean_psnr: float  # dB, upper face without the eyes
    min_psnr: float
    mean_psnr_with_eyes: float
    min_psnr_with_eyes: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def to_text(self) -> str:
        return "\n".join([
            f"frames              {self.frames} ({self.face_frames} with a face)",
            f"upper-face PSNR     mean {self.mean_psnr:.2f} dB, min {self.min_psnr:.2f} dB (eyes excluded)",
            f"with the eyes       mean {self.mean_psnr_with_eyes:.2f} dB, min {self.min_psnr_with_eyes:.2f} dB",
        ])


def upper_face_masks(face: Face, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(without eyes, with eyes) boolean masks of the upper face in the face's image."""
    points = face.landmarks
    nose_tip_y = points[idx.NOSE_TIP, 1]
    region = [i for i in idx.FACE_OVAL + idx.NOSE + idx.RIGHT_EYEBROW + idx.LEFT_EYEBROW
              if points[i, 1] <= nose_tip_y]
    with_eyes = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(with_eyes, cv2.convexHull(points[region].astype(np.int32)), 1)
    eyes = np.zeros(shape, np.uint8)
    for contour in (idx.RIGHT_EYE, idx.LEFT_EYE):
        cv2.fillPoly(eyes, [points[list(contour)].astype(np.int32)], 1)
    eye_width = np.linalg.norm(points[idx.RIGHT_EYE_CORNERS[0]] - points[idx.RIGHT_EYE_CORNERS[1]])
    margin = max(1, int(round(0.25 * eye_width)))  # lids and lashes move beyond the contour
    eyes = cv2.dilate(eyes, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    return (with_eyes > 0) & (eyes == 0), with_eyes > 0


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    diff = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    mse = float(np.mean(diff * diff)) if diff.size else 0.0
    return 100.0 if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def refine_alignment(aligned: np.ndarray, gray_portrait: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Residual affine alignment of an already roughly aligned frame onto the portrait,
    maximising the correlation of the masked pixels (on the mask's bounding box only,
    for speed); unchanged if it does not converge."""
    x, y, w, h = cv2.boundingRect(mask)
    pad = 8
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(mask.shape[1], x + w + pad), min(mask.shape[0], y + h + pad)
    gray = cv2.cvtColor(aligned, cv2.COLOR_RGB2GRAY).astype(np.float32)
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, 1e-4)
    try:
        _, warp = cv2.findTransformECC(gray_portrait[y0:y1, x0:x1], gray[y0:y1, x0:x1], warp, cv2.MOTION_AFFINE,
                                       criteria, mask[y0:y1, x0:x1], 3)
    except cv2.error:
        return aligned
    # The warp maps crop coordinates; shift it to full-image coordinates.
    offset = np.array([x0, y0], np.float32)
    warp[:, 2] += offset - warp[:, :2] @ offset
    return cv2.warpAffine(aligned, warp, (gray.shape[1], gray.shape[0]),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def upper_face_psnr(portrait: ImageInput, video: str | Path, face_index: int = 0) -> IdentityReport:
    """PSNR of the upper face in each frame against the portrait, head motion undone."""
    image = load_image(portrait)
    reference = face_landmarks(image, face_index, name="the portrait")
    height, width = image.shape[:2]
    without_eyes, with_eyes = upper_face_masks(reference, (height, width))
    anchors = reference.landmarks[list(idx.STABLE)]
    gray_portrait = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    ecc_mask = with_eyes.astype(np.uint8)
    scores, scores_eyes, frames = [], [], 0
    with FaceTracker() as tracker:
        for frame in iter_video_frames(video):
            frames += 1
            face = tracker.track(frame)
            if face is None:
                continue
            matrix, _ = cv2.estimateAffinePartial2D(face.landmarks[list(idx.STABLE)], anchors, method=cv2.LMEDS)
            if matrix is None:
                continue
            aligned = cv2.warpAffine(frame, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
            aligned = refine_alignment(aligned, gray_portrait, ecc_mask)
            scores.append(psnr(aligned, image, without_eyes))
            scores_eyes.append(psnr(aligned, image, with_eyes))
    if not scores:
        raise InputError(f"no face could be tracked in {str(video)!r}")
    return IdentityReport(frames=frames, face_frames=len(scores), mean_psnr=float(np.mean(scores)),
                          min_psnr=float(np.min(scores)), mean_psnr_with_eyes=float(np.mean(scores_eyes)),
                          min_psnr_with_eyes=float(np.min(scores_eyes)))
