"""The official EchoMimic V1 face crop and face mask, on a MediaPipe face box.

Official (infer_audio2vid.py): MTCNN box -> mask = box dilated by 0.1 x its width/height on
each side; crop = box dilated by 0.5 x width/height on each side, clipped to the image,
then a centred square of side min(w, h) (``crop_and_pad``); image and mask are cropped
identically and resized to the generation size.

Box convention: we use the tight box of MediaPipe's 478 landmarks (``Face.box``). It spans
hairline-ish forehead (landmark 10) to chin and cheek to cheek, close to MTCNN's box,
which also runs from the upper forehead to the chin. The dilations are the official ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def dilate(box: Box, ratio: float) -> Box:
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * ratio, (y1 - y0) * ratio
    return x0 - dx, y0 - dy, x1 + dx, y1 + dy


@dataclass(frozen=True)
class FaceCrop:
    """A square crop of the portrait around the face and the face mask inside it."""

    box: tuple[int, int, int, int]  # square crop, integer pixels inside the image
    mask_box: Box  # face mask rectangle, portrait pixels

    @classmethod
    def official(cls, face_box: Box, width: int, height: int, crop_dilation: float = 0.5,
                 mask_dilation: float = 0.1) -> "FaceCrop":
        x0, y0, x1, y1 = dilate(face_box, crop_dilation)
        x0, y0 = max(0, int(x0)), max(0, int(y0))
        x1, y1 = min(width, int(x1)), min(height, int(y1))
        side = min(x1 - x0, y1 - y0)
        cx, cy = x0 + (x1 - x0 - side) // 2, y0 + (y1 - y0 - side) // 2
        return cls((cx, cy, cx + side, cy + side), dilate(face_box, mask_dilation))

    @property
    def side(self) -> int:
        return self.box[2] - self.box[0]

    def crop(self, image: np.ndarray, size: int) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        return cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA
                          if self.side > size else cv2.INTER_LANCZOS4)

    def mask(self, size: int) -> np.ndarray:
        """(size, size) float32 in {0, 1}: the dilated face box inside the crop."""
        scale = size / self.side
        mx0, my0, mx1, my1 = self.mask_box
        out = np.zeros((size, size), np.float32)
        c0 = max(0, int((mx0 - self.box[0]) * scale))
        r0 = max(0, int((my0 - self.box[1]) * scale))
        c1 = min(size, int(np.ceil((mx1 - self.box[0]) * scale)))
        r1 = min(size, int(np.ceil((my1 - self.box[1]) * scale)))
        out[r0:r1, c0:c1] = 1.0
        return out

    def to_crop_pixels(self, points: np.ndarray, size: int) -> np.ndarray:
        """Portrait pixel coordinates -> pixel coordinates in the resized crop."""
        return (points - np.array(self.box[:2], np.float32)) * (size / self.side)

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
