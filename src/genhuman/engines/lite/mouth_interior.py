"""The inside of the mouth where the lips part: a dark cavity and a hint of teeth.

Painted after the warp, column by column between the warped upper and lower inner-lip
contours, with analytic anti-aliasing (coverage of each pixel by the gap), inside the
mouth's bounding box only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genhuman.engines.lite.deform import (
    CHIN, FACE_OVAL, FOREHEAD, LOWER_INNER_LIP, LOWER_OUTER_LIP, curve_at,
)
from genhuman.face.landmark_indices import NOSE_TIP

TOOTH_WIDTH = 0.14  # a front tooth, as a share of the mouth width
TEETH_WHITE = np.array([236.0, 230.0, 218.0], np.float32)
THROAT = np.array([52.0, 18.0, 20.0], np.float32)  # deep inside the mouth
TONGUE = np.array([150.0, 62.0, 64.0], np.float32)


@dataclass
class MouthColors:
    lip: np.ndarray  # (3,) float32 RGB
    skin: np.ndarray
    face_height: float


def mouth_colors(image: np.ndarray, landmarks: np.ndarray) -> MouthColors:
    h, w = image.shape[:2]

    def sample(points: np.ndarray) -> np.ndarray:
        xy = np.round(points).astype(int)
        xy[:, 0] = xy[:, 0].clip(0, w - 1)
        xy[:, 1] = xy[:, 1].clip(0, h - 1)
        return np.median(image[xy[:, 1], xy[:, 0]].astype(np.float32), axis=0)

    lower_lip = (landmarks[LOWER_OUTER_LIP[2:-2]] + landmarks[LOWER_INNER_LIP[2:-2]]) / 2.0
    cheeks = (landmarks[FACE_OVAL] * 0.6 + landmarks[NOSE_TIP] * 0.4)  # between the nose and the oval
    face_height = float(np.linalg.norm(landmarks[CHIN] - landmarks[FOREHEAD]))
    return MouthColors(sample(lower_lip), sample(cheeks), face_height)


def _tooth_seams(xs: np.ndarray, half: float) -> np.ndarray:
    """Per column: 1 on a tooth, a little darker where two teeth meet. Teeth look narrower
    towards the corners, where the dental arch turns away."""
    center = (xs[0] + xs[-1]) / 2.0
    width = TOOTH_WIDTH * 2.0 * half
    offset = (xs - center) / half
    phase = offset * half / width * (1.0 + 0.6 * np.abs(offset))
    distance = np.abs(phase - np.round(phase))  # in tooth widths, to the nearest seam
    sigma = max(0.06, 0.6 / max(width, 1e-3))  # never thinner than about a pixel
    return 1.0 - 0.12 * np.exp(-(distance / sigma) ** 2)


def paint_mouth_interior(frame: np.ndarray, upper: np.ndarray, lower: np.ndarray, teeth: float,
                         colors: MouthColors) -> None:
    """Fill between the warped inner-lip contours ``upper`` and ``lower`` ((N, 2) each)."""
    h, w = frame.shape[:2]
    x0 = max(int(np.floor(min(upper[:, 0].min(), lower[:, 0].min()))), 0)
    x1 = min(int(np.ceil(max(upper[:, 0].max(), lower[:, 0].max()))) + 1, w)
    if x1 <= x0:
        return
    xs = np.arange(x0, x1, dtype=np.float64)
    y_up, y_lo = curve_at(upper, xs), curve_at(lower, xs)
    inside = (xs >= max(upper[:, 0].min(), lower[:, 0].min())) & (xs <= min(upper[:, 0].max(), lower[:, 0].max()))
    gap = np.where(inside, y_lo - y_up, 0.0)
    if gap.max() < 0.3:
        return
    y0 = max(int(np.floor(y_up.min())) - 1, 0)
    y1 = min(int(np.ceil(y_lo.max())) + 2, h)
    if y1 <= y0:
        return
    ys = np.arange(y0, y1, dtype=np.float64)[:, None]
    # Pixel coverage by the gap; a thin gap also fades overall so it does not flicker.
    alpha = np.clip(ys - y_up + 0.5, 0, 1) * np.clip(y_lo - ys + 0.5, 0, 1) * np.clip(gap, 0, 1)
    depth = np.clip((ys - y_up) / np.maximum(gap, 1e-3), 0.0, 1.0)
    half = max((xs[-1] - xs[0]) / 2.0, 1.0)
    across = 1.0 - ((xs - (xs[0] + xs[-1]) / 2.0) / half) ** 2  # 1 at the centre, 0 at corners
    # Cavity: dark red throat, the tongue showing lower down, lit by the skin's exposure;
    # darker towards the corners, where the cheeks shade it.
    exposure = float(np.clip(colors.skin.mean() / 170.0, 0.4, 1.3))
    tongue = np.clip((depth - 0.45) / 0.55, 0.0, 1.0)[..., None] ** 1.5
    light = (0.55 + 0.45 * np.clip(across, 0, 1))[..., None]
    color = (THROAT * (1.0 - tongue) + TONGUE * tongue) * light * exposure
    # Upper teeth: a light band hanging from the upper lip, dimmer towards the corners.
    fh = colors.face_height
    show = 0.35 + 0.65 * float(np.clip(teeth, 0.0, 1.0))  # some teeth show whenever lips part
    band = show * np.minimum(0.45 * gap, 0.07 * fh) * (0.8 + 0.2 * np.clip(across, 0, 1))  # incisors longest
    upper_teeth = np.clip(y_up + band - ys + 0.5, 0, 1) * np.clip(band, 0, 1)
    # A faint lower-teeth edge on wide openings.
    lower_band = float(np.clip(teeth, 0.0, 1.0)) * np.clip(0.18 * (gap - 0.04 * fh), 0.0, 0.02 * fh)
    lower_teeth = 0.6 * np.clip(ys - (y_lo - lower_band) + 0.5, 0, 1) * np.clip(lower_band, 0, 1)
    tooth_light = (0.72 + 0.28 * np.clip(across, 0, 1)) * (1.0 - 0.2 * depth) * _tooth_seams(xs, half)
    tooth = (TEETH_WHITE * 0.8 + colors.skin * 0.2)[None, None, :] * tooth_light[..., None] * min(exposure, 1.0)
    teeth_alpha = np.clip(upper_teeth + lower_teeth, 0.0, 1.0)[..., None]
    color = color * (1.0 - teeth_alpha) + tooth * teeth_alpha
    region = frame[y0:y1, x0:x1].astype(np.float32)
    a = alpha[..., None].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(region * (1.0 - a) + color * a + 0.5, 0, 255).astype(np.uint8)
