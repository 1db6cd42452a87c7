"""Hallo's conditioning inputs from GenHuman's own face mesh, and Hallo2's patch drop.

Array/tensor level, no file I/O. What the official code does (spec hallo.md §1.5, §2.2;
fudan-generative-vision/hallo ``hallo/utils/util.py`` and ``hallo/datasets/image_processor.py``),
reproduced value for value on a portrait and its 478 landmarks:

- face box = bbox of the 36 silhouette points, lip box = bbox of the 20 outer-lip points;
  ``np.round``-ed, then grown by ``expand_region`` (1.2 face, 2.0 lip): the centre is kept,
  the sides scaled, the box shifted back inside the image. Hard 0/255 masks at the portrait's
  resolution.
- soft masks: each hard mask ``cv2.resize`` to 64x64, GaussianBlur (51x51 face, 31x31 lip),
  min-max normalised to 0..255 (uint8). background = the official ``(1 - face/255) * 255``
  truncated to uint8 (1 below 255 - face for 50 of the 256 values), face = the saturating
  ``cv2.subtract(face_blur, lip_blur)``, lip = lip_blur.
- the official passes those uint8 masks, the RGB portrait and the hard face mask as PIL
  images through torchvision ``Resize``; for a PIL image torchvision calls PIL's own
  ``Image.resize(BILINEAR)`` (antialiased: the filter widens with the downscale factor; two
  passes, horizontal then vertical, each rounded to uint8). We call the same PIL function, so
  the result is byte-identical. ``torch.nn.functional.interpolate(mode="bilinear",
  antialias=True)``, rounded after each axis, computes the same filter: equal at the mask
  levels (factors 2, 4, 8), within 1/255 otherwise (PIL's 22-bit coefficients break ties).
- ToTensor (/255); the portrait also Normalize(0.5, 0.5); attention masks flattened to (1, HW).

Differences: box slices start at 0 (official negative starts wrap round and leave a stripe
when the grown box is wider than the image); the landmarks are GenHuman's MediaPipe face
mesh (same topology and pixel convention as the official FaceLandmarker, not the same
numbers).

The model's square constraint: the audio modules' 1x1 zero-convs run on a (sqrt(HW),
sqrt(HW)) grid and the masks are squares of side size/8 ... size/64, so the generation size
must be square and a multiple of 64. The official squashes any input to 512x512 and asks
for square portraits; :func:`square_portrait` keeps a square input whole (official) and cuts
a non-square one to a square around the face, to be pasted back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
import torch
from PIL import Image

from genhuman.errors import InputError
from genhuman.face import landmark_indices as lm
from genhuman.face.crop import CropTransform, crop_with_transform, paste_back

IntBox = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, end exclusive

GENERATION_SIZE = 512
# The official silhouette_ids and lip_ids (hallo/utils/util.py): the face oval in the same
# order; the outer lip contour as the same set in contour order (only their bbox is used).
SILHOUETTE = lm.FACE_OVAL
LIP_BOX_POINTS = lm.LIPS_OUTER
FACE_EXPAND = 1.2  # configs/inference/default.yaml face_expand_ratio
LIP_EXPAND = 2.0  # get_lip_mask's default
MASK_GRID = 64  # the soft masks are made at 64x64 whatever the generation size
FACE_BLUR_KERNEL = 51
LIP_BLUR_KERNEL = 31
LEVEL_DIVISORS = (8, 16, 32, 64)  # attention levels: latent grid, then each downsampling
MOTION_DROP_RATE = 0.25  # Hallo2 configs/inference/long.yaml mask_rate
FACE_FRACTION = 0.6  # README: the face should fill 50-70% of the portrait


# ---------------------------------------------------------------------------------- boxes
def expand_region(box: tuple[float, float, float, float], width: int, height: int, ratio: float) -> IntBox:
    """The official ``expand_region`` on an (x0, y0, x1, y1) box (official order: x0, x1, y0, y1):
    floor centre, sides scaled by ``ratio`` (half side floored), shifted back inside the image."""
    x0, x1 = _expand_span(box[0], box[2], width, ratio)
    y0, y1 = _expand_span(box[1], box[3], height, ratio)
    return x0, y0, x1, y1


def _expand_span(low: float, high: float, limit: int, ratio: float) -> tuple[int, int]:
    mid = (high + low) // 2
    half = ((high - low) * ratio) // 2
    low, high = mid - half, mid + half
    if low < 0:
        low, high = 0.0, high - low
    if high > limit:
        low, high = low - (high - limit), float(limit)
    return round(low), round(high)  # whole numbers already: floors and whole shifts


def landmark_box(landmarks: np.ndarray, ids: tuple[int, ...], width: int, height: int, ratio: float) -> IntBox:
    """The grown bbox of ``landmarks[ids]`` (pixels), as ``get_face_mask``/``get_lip_mask`` make it."""
    points = np.asarray(landmarks, np.float64)[list(ids), :2]
    low, high = np.round(points.min(axis=0)), np.round(points.max(axis=0))
    return expand_region((low[0], low[1], high[0], high[1]), width, height, ratio)


def box_mask(box: IntBox, height: int, width: int) -> np.ndarray:
    """(height, width) uint8, 255 inside ``box``; slices start at 0 (see the module notes)."""
    x0, y0, x1, y1 = box
    mask = np.zeros((height, width), np.uint8)
    mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = 255
    return mask


# ---------------------------------------------------------------------------------- masks
def blur_mask(mask: np.ndarray, kernel: int) -> np.ndarray:
    """The official ``blur_mask``: 64x64 (cv2 bilinear), Gaussian blur, min-max to 0..255, uint8."""
    small = cv2.resize(mask, (MASK_GRID, MASK_GRID))
    blurred = cv2.GaussianBlur(small, (kernel, kernel), 0)
    return cv2.normalize(blurred, None, 0, 255, cv2.NORM_MINMAX)


@dataclass(frozen=True)
class HalloMasks:
    """The official mask images (``get_mask``'s PNGs), as uint8 arrays."""

    face_box: IntBox
    lip_box: IntBox
    face: np.ndarray  # (H, W) hard face box, 0/255: the face locator's input and patch drop's keep
    face_blur: np.ndarray  # (64, 64)
    background: np.ndarray  # (64, 64) "sep_background", the full/pose mask
    face_only: np.ndarray  # (64, 64) "sep_face": face blur minus lip blur, saturating
    lip: np.ndarray  # (64, 64) "sep_lip": the blurred lip box


def hallo_masks(landmarks: np.ndarray, width: int, height: int, face_expand: float = FACE_EXPAND,
                lip_expand: float = LIP_EXPAND) -> HalloMasks:
    """Masks of a ``width`` x ``height`` portrait from its (478, 2) landmarks in pixels."""
    face_box = landmark_box(landmarks, SILHOUETTE, width, height, face_expand)
    lip_box = landmark_box(landmarks, LIP_BOX_POINTS, width, height, lip_expand)
    face = box_mask(face_box, height, width)
    face_blur = blur_mask(face, FACE_BLUR_KERNEL)
    lip_blur = blur_mask(box_mask(lip_box, height, width), LIP_BLUR_KERNEL)
    background = ((1.0 - face_blur / 255.0) * 255).astype(np.uint8)  # official float round trip
    return HalloMasks(face_box, lip_box, face, face_blur, background, cv2.subtract(face_blur, lip_blur), lip_blur)


# ---------------------------------------------------------------------------------- tensors
def pil_resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """torchvision ``Resize((height, width))`` of a PIL image: PIL's antialiased bilinear, uint8."""
    if array.shape[:2] == (height, width):
        return array
    return np.asarray(Image.fromarray(array).resize((width, height), Image.Resampling.BILINEAR))


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """torchvision ``ToTensor`` of a uint8 image: (C, H, W) float32 in [0, 1]."""
    pixels = torch.tensor(array)  # a copy: PIL's arrays are read-only
    pixels = pixels[None] if pixels.ndim == 2 else pixels.permute(2, 0, 1)
    return pixels.float().div(255)


def attention_levels(mask: np.ndarray, size: int = GENERATION_SIZE) -> tuple[torch.Tensor, ...]:
    """A 64x64 uint8 soft mask at each audio-attention level: (1, s*s) in [0, 1] for
    s = size/8, size/16, size/32, size/64."""
    check_generation_size(size)
    return tuple(to_tensor(pil_resize(mask, size // d, size // d)).reshape(1, -1) for d in LEVEL_DIVISORS)


def check_generation_size(size: int) -> None:
    if size <= 0 or size % LEVEL_DIVISORS[-1]:
        raise InputError(f"Hallo generates square frames whose side is a multiple of 64, got {size}")


@dataclass(frozen=True)
class HalloConditions:
    """Everything the Hallo pipeline takes from the portrait, at the generation size S."""

    pixels: torch.Tensor  # (3, S, S) float32 in [-1, 1]: the reference image
    face_region: torch.Tensor  # (3, S, S) float32 in [0, 1]: the hard face box, resized
    full_masks: tuple[torch.Tensor, ...]  # 4 x (1, s*s) background (pose) masks
    face_masks: tuple[torch.Tensor, ...]  # 4 x (1, s*s) face-minus-lip masks
    lip_masks: tuple[torch.Tensor, ...]  # 4 x (1, s*s) lip masks
    masks: HalloMasks

    def face_locator_input(self, frames: int = 16) -> torch.Tensor:
        """(1, 3, frames, S, S): the face region repeated over a clip, the FaceLocator's input."""
        return self.face_region[None, :, None].expand(-1, -1, frames, -1, -1)


def hallo_conditions(image: np.ndarray, landmarks: np.ndarray, size: int = GENERATION_SIZE,
                     face_expand: float = FACE_EXPAND, lip_expand: float = LIP_EXPAND) -> HalloConditions:
    """The official ``ImageProcessor.preprocess`` outputs (without the face embedding) for an
    RGB uint8 portrait and its landmarks in its pixels. A non-square portrait is squashed,
    as the official does; use :func:`square_portrait` first to avoid that."""
    check_generation_size(size)
    height, width = image.shape[:2]
    masks = hallo_masks(landmarks, width, height, face_expand, lip_expand)
    pixels = to_tensor(pil_resize(image, size, size)).sub(0.5).div(0.5)
    face_region = to_tensor(pil_resize(np.repeat(masks.face[:, :, None], 3, axis=2), size, size))
    return HalloConditions(pixels, face_region, attention_levels(masks.background, size),
                           attention_levels(masks.face_only, size), attention_levels(masks.lip, size), masks)


# ---------------------------------------------------------------------------------- square input
def face_square_box(landmarks: np.ndarray, width: int, height: int, face_fraction: float = FACE_FRACTION) -> IntBox:
    """The square inside the image, centred on the face as far as it can be, whose side is the
    face's longer side / ``face_fraction`` (at most the image's shorter side)."""
    points = np.asarray(landmarks, np.float64)[list(SILHOUETTE), :2]
    (fx0, fy0), (fx1, fy1) = points.min(axis=0), points.max(axis=0)
    side = int(min(min(width, height), max(1, round(max(fx1 - fx0, fy1 - fy0) / face_fraction))))
    x0 = int(np.clip(round((fx0 + fx1) / 2 - side / 2), 0, width - side))
    y0 = int(np.clip(round((fy0 + fy1) / 2 - side / 2), 0, height - side))
    return x0, y0, x0 + side, y0 + side


@dataclass(frozen=True)
class SquarePortrait:
    """The square picture Hallo is given, and how its frames go back into the portrait."""

    image: np.ndarray  # (side, side, 3) uint8: the portrait itself or a square cut from it
    landmarks: np.ndarray  # (478, 2) in ``image`` pixels
    transform: Optional[CropTransform]  # portrait -> ``image`` pixels; None: the portrait was square

    @property
    def cropped(self) -> bool:
        return self.transform is not None

    def paste(self, portrait: np.ndarray, frame: np.ndarray, feather: float = 0.1) -> np.ndarray:
        """A generated (S, S, 3) frame in the portrait: blended into the cut it came from, or
        the frame itself when the portrait was square (the official output, S x S)."""
        if self.transform is None:
            return frame
        scale = frame.shape[0] / self.transform.size
        at_frame_size = CropTransform(self.transform.matrix * scale, frame.shape[0], self.transform.image_size)
        return paste_back(portrait, frame, at_frame_size, feather)


def square_portrait(image: np.ndarray, landmarks: np.ndarray, face_fraction: float = FACE_FRACTION,
                    force_crop: bool = False) -> SquarePortrait:
    """A square portrait is used whole (official); a non-square one (or any, with
    ``force_crop``) is cut at its own resolution to :func:`face_square_box`."""
    height, width = image.shape[:2]
    landmarks = np.asarray(landmarks, np.float32)[:, :2]
    if height == width and not force_crop:
        return SquarePortrait(image, landmarks, None)
    crop, transform = crop_with_transform(image, face_square_box(landmarks, width, height, face_fraction))
    return SquarePortrait(crop, transform.to_crop(landmarks).astype(np.float32), transform)


# ---------------------------------------------------------------------------------- Hallo2 patch drop
def patch_drop_keep(face_region: torch.Tensor, generator: torch.Generator,
                    rate: float = MOTION_DROP_RATE) -> torch.Tensor:
    """(H, W) bool, True where motion-frame pixels survive: Hallo2 ``inference_long.py``'s
    ``torch.rand(h, w) > mask_rate`` (one uniform per pixel: the "patches" are pixels),
    OR the face region's nonzero pixels (``face_region.bool()``), shared by every frame and
    channel. ``face_region``: (3, H, W) or (H, W). The official draws from the CPU generator
    that ``torch.manual_seed(42)`` returns, the same one that then draws the clip's latents:
    give that generator and draw before the clip's noise to reproduce its stream."""
    face = face_region.bool()
    face = face.any(dim=0) if face.ndim == 3 else face
    uniform = torch.rand(face.shape, generator=generator, device=generator.device)
    return (uniform > rate).to(face.device) | face


def drop_patches(motion_pixels: torch.Tensor, face_region: torch.Tensor, generator: torch.Generator,
                 rate: float = MOTION_DROP_RATE) -> torch.Tensor:
    """Hallo2's augmentation of the motion frames before they are VAE-encoded, every clip (the
    first clip's copies of the reference too; the reference image itself is never dropped):
    ``motion_pixels`` (..., 3, H, W) in [-1, 1]; dropped pixels become 0 (mid-grey)."""
    keep = patch_drop_keep(face_region, generator, rate).to(motion_pixels.device)
    return motion_pixels * keep.to(motion_pixels.dtype)
