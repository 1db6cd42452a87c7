"""The official EchoMimic V1 face crop and face mask, on a MediaPipe face box.

Official (infer_audio2vid*.py), all in integer pixels: the detector box is rounded; the mask
is the box grown by int(0.1 x height) rows and int(0.1 x width) columns on each side; the
crop is the box grown by int(0.5 x height/width), clipped to the image, then
``crop_and_pad``: a square of side min(w, h) starting at centre // 2 - side // 2. Image
and a 0/255 uint8 mask are cut identically and resized with cv2's default bilinear
interpolation; the mask is then divided by 255 (so its edge has in-between values).
Differences: the mask rectangle is clipped at 0 (official negative slice starts wrap
around) and a portrait without a face is an error (official: whole-image mask, no crop).

Box convention: we use the tight box of MediaPipe's 478 landmarks (``Face.box``), not
MTCNN's. It spans hairline-ish forehead (landmark 10) to chin and cheek to cheek, close
to MTCNN's box, which also runs from the upper forehead to the chin.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
IntBox = tuple[int, int, int, int]


def dilate(box: IntBox, ratio: float) -> IntBox:
    """Grow an integer box by int(ratio x width) columns and int(ratio x height) rows per side."""
    x0, y0, x1, y1 = box
    dx, dy = int((x1 - x0) * ratio), int((y1 - y0) * ratio)
    return x0 - dx, y0 - dy, x1 + dx, y1 + dy


def square_inside(box: IntBox, width: int, height: int) -> IntBox:
    """The official ``crop_and_pad`` square: side min(w, h) around the integer centre."""
    x0, y0 = max(0, box[0]), max(0, box[1])
    x1, y1 = min(width, box[2]), min(height, box[3])
    side = min(x1 - x0, y1 - y0)
    sx0, sy0 = max(0, (x0 + x1) // 2 - side // 2), max(0, (y0 + y1) // 2 - side // 2)
    side = min(min(width, sx0 + side) - sx0, min(height, sy0 + side) - sy0)
    return sx0, sy0, sx0 + side, sy0 + side


@dataclass(frozen=True)
class FaceCrop:
    """A square crop of the portrait around the face and the face mask inside it."""

    box: IntBox  # square crop, integer pixels inside the image
    mask_box: IntBox  # face mask rectangle, portrait pixels, clipped at 0

    @classmethod
    def official(cls, face_box: Box, width: int, height: int, crop_dilation: float = 0.5,
                 mask_dilation: float = 0.1) -> "FaceCrop":
        x0, y0, x1, y1 = (int(v) for v in np.round(np.asarray(face_box, np.float64)))
        rounded = (x0, y0, x1, y1)
        mx0, my0, mx1, my1 = dilate(rounded, mask_dilation)
        mask_box = (max(0, mx0), max(0, my0), mx1, my1)
        return cls(square_inside(dilate(rounded, crop_dilation), width, height), mask_box)

    @property
    def side(self) -> int:
        return self.box[2] - self.box[0]

    def crop(self, image: np.ndarray, size: int) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        return cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_LINEAR)

    def mask(self, size: int) -> np.ndarray:
        """(size, size) float32 in [0, 1]: the 0/255 face-box mask cut like the image,
        resized bilinearly in uint8, divided by 255 (official)."""
        x0, y0, x1, y1 = self.box
        mx0, my0, mx1, my1 = self.mask_box
        cut = np.zeros((self.side, self.side), np.uint8)
        cut[max(0, my0 - y0):max(0, my1 - y0), max(0, mx0 - x0):max(0, mx1 - x0)] = 255
        return cv2.resize(cut, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0

    def to_crop_pixels(self, points: np.ndarray, size: int) -> np.ndarray:
        """Portrait pixel coordinates -> pixel coordinates in the resized crop."""
        return np.asarray((points - np.array(self.box[:2], np.float32)) * (size / self.side))

    def paste_weights(self, feather: float = 0.08) -> np.ndarray:
        """(side, side, 1) blend weights: 1 inside, a smooth ramp over ``feather`` x side at the edges."""
        ramp_px = max(1, int(self.side * feather))
        ramp = np.clip(np.minimum(np.arange(self.side), np.arange(self.side)[::-1]) / ramp_px, 0, 1)
        ramp = 0.5 - 0.5 * np.cos(np.pi * ramp)  # smooth at both ends of the ramp
        return (ramp[:, None] * ramp[None, :])[..., None].astype(np.float32)

    def paste(self, portrait: np.ndarray, generated: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The portrait with the generated crop blended back where it was cut out."""
        x0, y0, x1, y1 = self.box
        face = cv2.resize(generated, (self.side, self.side), interpolation=cv2.INTER_LINEAR)
        out = portrait.copy()
        region = out[y0:y1, x0:x1].astype(np.float32)
        out[y0:y1, x0:x1] = np.round(region + weights * (face.astype(np.float32) - region)).astype(np.uint8)
        return out
