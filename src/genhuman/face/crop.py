"""Square face crops and pasting an edited crop back with a feathered edge.

A crop is an affine map (scale + translation) from image to crop pixels, so landmarks
and pixels move between the two exactly; regions outside the image are edge-replicated.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from genhuman.face.detect import Face


@dataclass(frozen=True)
class CropTransform:
    matrix: np.ndarray  # (2, 3) image -> crop pixels
    size: int  # crop side in pixels
    image_size: tuple[int, int]  # (width, height) of the source image

    @property
    def inverse(self) -> np.ndarray:
        return cv2.invertAffineTransform(self.matrix)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        return points @ self.matrix[:, :2].T + self.matrix[:, 2]

    def to_image(self, points: np.ndarray) -> np.ndarray:
        inverse = self.inverse
        return points @ inverse[:, :2].T + inverse[:, 2]


def face_box_square(face: Face, scale: float = 1.5) -> tuple[int, int, int, int]:
    """Integer square (x0, y0, x1, y1) centred on the face box, side = longer box side x scale.
    It may extend past the image; :func:`crop_with_transform` pads."""
    x0, y0, x1, y1 = face.box
    side = max(1, int(round(max(x1 - x0, y1 - y0) * scale)))
    left = int(round((x0 + x1) / 2 - side / 2))
    top = int(round((y0 + y1) / 2 - side / 2))
    return left, top, left + side, top + side


def crop_with_transform(image: np.ndarray, box: tuple[int, int, int, int],
                        size: int | None = None) -> tuple[np.ndarray, CropTransform]:
    """Cut ``box`` (a square) out of ``image`` resized to ``size`` x ``size`` (default: box side)."""
    x0, y0, x1, y1 = box
    side = x1 - x0
    if side <= 0 or y1 - y0 != side:
        raise ValueError(f"box must be a non-empty square, got {box}")
    size = size or side
    scale = size / side
    matrix = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]], np.float64)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    crop = cv2.warpAffine(image, matrix, (size, size), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
    return crop, CropTransform(matrix, size, (image.shape[1], image.shape[0]))


def paste_back(image: np.ndarray, crop: np.ndarray, transform: CropTransform, feather: float = 0.1) -> np.ndarray:
    """Blend ``crop`` back where it came from; the mask fades to the old image over
    ``feather`` x crop side at the crop's edges, hiding the seam."""
    width, height = transform.image_size
    inverse = transform.inverse
    size = transform.size
    margin = int(round(feather * size))
    mask = np.zeros((size, size), np.float32)
    mask[margin:size - margin, margin:size - margin] = 1.0
    if margin > 0:
        kernel = 2 * margin + 1
        mask = cv2.GaussianBlur(mask, (kernel, kernel), 0)
    back = cv2.warpAffine(crop, inverse, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, inverse, (width, height), flags=cv2.INTER_LINEAR, borderValue=0.0)[:, :, None]
    blended = back.astype(np.float32) * alpha + image.astype(np.float32) * (1.0 - alpha)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)
