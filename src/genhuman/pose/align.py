"""Reference alignment and pose retargeting for EchoMimic V2.

V2 deforms heads and hands unless the reference photo is framed like its training crops
(issues #35/#36). The official demo notebook computes that framing from body keypoints;
:func:`pose_crop` does the same computation:

* a photo whose short side is under the output's long side is first enlarged to it
  (bilinear), as the notebook enlarges it to 768;
* top = the highest face point, bottom = the lowest of the first 7 body points (nose,
  neck, shoulders, right elbow and wrist, left elbow), over all frames;
* a margin of 25 % of that height: 65 % of it added above, 5 % below (clipped to the image);
* rows ``int(top * H):int(bottom * H)``; a box ``int(bottom * H) - int(top * H) + 1`` wide
  (one column more than the rows, like the notebook) centred on the neck's mean x (left
  edge clipped at 0);
* the crop is resized (bilinear) to fit the output and padded with black (``draw_params``
  says where).

Differences from the notebook, on purpose: points below a confidence of 0.3 are ignored
(the notebook uses them, so a wrist outside the frame could stretch the crop; without a
confident face point the top comes from the upper body instead), the box can
have any aspect ratio (the notebook's is square), and the pose is normalised to the crop
actually taken, so image and drawing always match.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from genhuman.errors import InputError
from genhuman.pose.format import PoseSequence

MARGIN_RATIO = 0.25
TOP_MARGIN, BOTTOM_MARGIN = 0.65, 0.05
CONFIDENT = 0.3
NECK, R_SHOULDER, L_SHOULDER = 1, 2, 5


@dataclass(frozen=True)
class CropBox:
    """A crop in source-image pixels: rows ``y0:y1``, columns ``x0:x1``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def _confident(points: np.ndarray, scores: np.ndarray) -> np.ndarray:
    good = points[scores > CONFIDENT]
    return good if len(good) else points


def pose_crop(pose: PoseSequence, image_height: int, image_width: int, aspect: float = 1.0) -> CropBox:
    """The aligned crop for ``pose`` (normalised to the *source image*), width/height = ``aspect``."""
    tops, bottoms, necks = [], [], []
    for i in range(len(pose)):
        upper = _confident(pose.body[i, :7], pose.body_score[i, :7])
        seen_face = (pose.face_score[i] > CONFIDENT).any()
        tops.append((pose.face[i, pose.face_score[i] > CONFIDENT] if seen_face else upper)[:, 1].min())
        bottoms.append(upper[:, 1].max())
        necks.append(pose.body[i, NECK, 0])
    top, bottom = float(np.min(tops)), float(np.max(bottoms))
    if not bottom > top:
        raise InputError("the body keypoints are too few to align the reference image")
    margin = (bottom - top) * MARGIN_RATIO
    top = max(top - margin * TOP_MARGIN, 0.0)
    bottom = min(bottom + margin * BOTTOM_MARGIN, 1.0)
    y0, y1 = int(top * image_height), int(bottom * image_height)
    width = max(1, int(round((y1 - y0 + 1) * aspect)))  # the notebook's width_new = height_new
    mid = int(float(np.mean(necks)) * image_width)
    x0 = mid - width // 2
    if x0 < 0:  # the notebook narrows the box symmetrically around the neck
        x0, width = 0, max(1, mid * 2)
    return CropBox(x0, y0, min(x0 + width, image_width), y1)


def fit_params(crop_height: int, crop_width: int, out_height: int, out_width: int) -> tuple[int, ...]:
    """Where a crop lands when resized to fit ``out`` and centred: the official
    ``[imh_new, imw_new, rb, re, cb, ce]`` (same values as the notebook for square output)."""
    if crop_height * out_width > crop_width * out_height:  # taller than the output: full height
        imh = out_height
        imw = min(out_width, int(round(crop_width / crop_height * imh)))
        cb = out_width // 2 - imw // 2
        return imh, imw, 0, out_height, cb, cb + imw
    imw = out_width
    imh = min(out_height, int(round(crop_height / crop_width * imw)))
    rb = out_height // 2 - imh // 2
    return imh, imw, rb, rb + imh, 0, out_width


def align_image(image: np.ndarray, box: CropBox, out_height: int, out_width: int) -> np.ndarray:
    """Crop ``image`` to ``box``, resize it to fit ``out`` and pad with black (the notebook's
    ``resize_and_pad``, any aspect ratio)."""
    crop = image[box.y0:box.y1, box.x0:box.x1]
    if crop.size == 0:
        raise InputError("the alignment crop is empty; is the person inside the image?")
    imh, imw, rb, re, cb, ce = fit_params(crop.shape[0], crop.shape[1], out_height, out_width)
    out = np.zeros((out_height, out_width, 3), dtype=np.uint8)
    out[rb:re, cb:ce] = cv2.resize(crop, (imw, imh), interpolation=cv2.INTER_LINEAR)
    return out


def crop_pose(pose: PoseSequence, box: CropBox, image_height: int, image_width: int,
              out_height: int, out_width: int) -> PoseSequence:
    """Re-normalise ``pose`` (normalised to the source image) to ``box``; sets ``draw_params``."""
    scale = np.array([image_width / box.width, image_height / box.height])
    offset = np.array([box.x0 / image_width, box.y0 / image_height])
    out = pose.take(range(len(pose)))
    out.body = (pose.body - offset) * scale
    out.hands = (pose.hands - offset) * scale
    out.face = (pose.face - offset) * scale
    out.draw_params = fit_params(box.height, box.width, out_height, out_width)  # type: ignore[assignment]
    return out


def _anchor_and_size(pose: PoseSequence) -> tuple[np.ndarray, float]:
    """Median neck position and shoulder width in drawing pixels' proportions."""
    imh, imw = pose.draw_params[0], pose.draw_params[1]
    px = np.array([imw, imh], dtype=np.float64)
    neck = np.median(pose.body[:, NECK] * px, axis=0)
    shoulders = np.linalg.norm((pose.body[:, R_SHOULDER] - pose.body[:, L_SHOULDER]) * px, axis=-1)
    ok = (pose.body_score[:, R_SHOULDER] > CONFIDENT) & (pose.body_score[:, L_SHOULDER] > CONFIDENT)
    if not ok.any():
        raise InputError("the shoulders are not visible, so the pose cannot be retargeted")
    return neck, float(np.median(shoulders[ok]))


def retarget(driving: PoseSequence, reference: PoseSequence) -> PoseSequence:
    """Move and scale ``driving`` so its body matches ``reference`` (both crop-normalised):
    same median neck position and shoulder width; the motion itself is kept."""
    neck_d, size_d = _anchor_and_size(driving)
    neck_r, size_r = _anchor_and_size(reference)
    scale = size_r / size_d
    px_d = np.array([driving.draw_params[1], driving.draw_params[0]], dtype=np.float64)
    px_r = np.array([reference.draw_params[1], reference.draw_params[0]], dtype=np.float64)

    def move(points: np.ndarray) -> np.ndarray:
        return ((points * px_d - neck_d) * scale + neck_r) / px_r

    out = driving.take(range(len(driving)))
    out.body, out.hands, out.face = move(driving.body), move(driving.hands), move(driving.face)
    out.hands[driving.hands_score <= 0] = 0.0  # unseen hand points stay at the origin (not drawn)
    out.draw_params = reference.draw_params
    return out


def enlarge_to(image: np.ndarray, short_side: int) -> np.ndarray:
    """The notebook's ``get_img_pose`` resize: a photo whose short side is below
    ``short_side`` is scaled up (bilinear, sides truncated) so the crop keeps more pixels."""
    h, w = image.shape[:2]
    ratio = max(short_side / min(h, w), 1.0)
    if ratio == 1.0:
        return image
    return cv2.resize(image, (int(ratio * w), int(ratio * h)), interpolation=cv2.INTER_LINEAR)


@dataclass
class AlignedReference:
    """A reference photo framed for V2, and its pose in that frame (None: no body found)."""

    image: np.ndarray  # (height, width, 3) uint8
    pose: PoseSequence | None
    box: CropBox  # in the pixels of the photo as enlarged by enlarge_to


def align_reference(image: np.ndarray, height: int, width: int, align: bool = True) -> AlignedReference:
    """Frame ``image`` like the V2 training crops (see the module doc). With ``align=False``,
    or when no body is found, the whole photo is fitted into the canvas instead (the
    official code stretches it; fitting keeps its proportions)."""
    import logging

    from genhuman.pose.extract import extract_image_pose

    h, w = image.shape[:2]
    whole = CropBox(0, 0, w, h)
    if not align:
        return AlignedReference(align_image(image, whole, height, width), None, whole)
    image = enlarge_to(image, max(height, width))
    h, w = image.shape[:2]
    try:
        found = extract_image_pose(image)
        box = pose_crop(found, h, w, aspect=width / height)
    except InputError as exc:
        logging.getLogger(__name__).warning("reference not aligned (%s); using the whole photo", exc)
        return AlignedReference(align_image(image, whole, height, width), None, whole)
    return AlignedReference(align_image(image, box, height, width),
                            crop_pose(found, box, h, w, height, width), box)
