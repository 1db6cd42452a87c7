"""The inside of the mouth where the lips part: a cavity, a tongue hint and teeth.

Painted after the warp, column by column between the warped upper and lower inner-lip
contours, with soft anti-aliased edges (a pixel's coverage by the gap, over a width chosen
so that no edge is steeper than the photo's own edges around the mouth), inside the
mouth's bounding box only. Every colour comes from the photo: teeth from its own visible
teeth when it shows them, else from the skin (lighter, with a quarter of its chroma); the
cavity and tongue from the lips, darkened. A grey photo gets a grey mouth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from genhuman.engines.lite.deform import (
    CHIN, FACE_OVAL, FOREHEAD, LOWER_INNER_LIP, LOWER_OUTER_LIP, UPPER_INNER_LIP, UPPER_OUTER_LIP, curve_at,
)
from genhuman.face.landmark_indices import NOSE_TIP

TOOTH_WIDTH = 0.14  # a front tooth, as a share of the mouth width
TEETH_MIN_VALUE = 140  # HSV value (0..255): the photo's teeth are bright ...
TEETH_MAX_SATURATION = 90  # ... and nearly colourless (lips and gums are saturated)
TEETH_MIN_SHARE = 0.02  # of the mouth's width x height: below this the photo "shows no teeth"
GREY_CHROMA = 0.5  # CIELAB a, b below which a colour is grey
MAX_EDGE_SOFTNESS = 0.02  # face heights: the softest a painted edge gets


@dataclass
class MouthColors:
    lip: np.ndarray  # (3,) float32 RGB
    skin: np.ndarray
    face_height: float
    teeth: np.ndarray  # (3,) float32 RGB, lit as in the photo
    cavity: np.ndarray  # deep inside the mouth
    tongue: np.ndarray
    photo_teeth: bool  # the photo shows its own teeth (they are kept, not painted)
    edge: float = 1.0  # pixels over which a painted edge rises: no steeper than the photo's mouth edges

    def array(self) -> np.ndarray:
        """Everything but the flag as one (5, 3) array, for the avatar's state."""
        return np.stack([self.lip, self.skin, self.teeth, self.cavity, self.tongue]).astype(np.float32)

    @classmethod
    def from_array(cls, colors: np.ndarray, face_height: float, photo_teeth: bool, edge: float) -> "MouthColors":
        lip, skin, teeth, cavity, tongue = (np.asarray(c, np.float32) for c in colors)
        return cls(lip, skin, face_height, teeth, cavity, tongue, photo_teeth, edge)


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.asarray(rgb, np.float32).reshape(1, 1, 3) / 255.0, cv2.COLOR_RGB2LAB)[0, 0]


def _rgb(lab: np.ndarray) -> np.ndarray:
    lab = np.asarray(lab, np.float32)
    if abs(float(lab[1])) < GREY_CHROMA and abs(float(lab[2])) < GREY_CHROMA:
        lab = np.array([lab[0], 0.0, 0.0], np.float32)  # grey stays exactly grey (no rounding tint)
    rgb = cv2.cvtColor(lab.reshape(1, 1, 3), cv2.COLOR_LAB2RGB)[0, 0]
    if lab[1] == 0.0 and lab[2] == 0.0:
        rgb = np.full(3, float(rgb.mean()), np.float32)
    return np.clip(rgb * 255.0, 0.0, 255.0).astype(np.float32)


def _shade(color: np.ndarray, lightness: float, chroma: float) -> np.ndarray:
    """``color`` with its CIELAB lightness x ``lightness`` and chroma x ``chroma`` (hue kept)."""
    lab = _lab(color)
    return _rgb(np.array([lab[0] * lightness, lab[1] * chroma, lab[2] * chroma], np.float32))


def photo_teeth_mask(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The photo's visible teeth: inside the inner lip contour, bright and nearly colourless."""
    inner = np.concatenate([landmarks[UPPER_INNER_LIP], landmarks[LOWER_INNER_LIP][::-1]])
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 1)
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    return (mask > 0) & (hsv[:, :, 2] >= TEETH_MIN_VALUE) & (hsv[:, :, 1] <= TEETH_MAX_SATURATION)


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
    lip, skin = sample(lower_lip), sample(cheeks)
    teeth_mask = photo_teeth_mask(image, landmarks)
    lips = landmarks[list(LOWER_OUTER_LIP)]
    mouth_area = max(float(np.ptp(lips[:, 0]) * np.ptp(landmarks[UPPER_INNER_LIP + LOWER_OUTER_LIP][:, 1])), 1.0)
    photo_teeth = bool(teeth_mask.sum() >= TEETH_MIN_SHARE * mouth_area)
    if photo_teeth:
        teeth = np.median(image[teeth_mask].astype(np.float32), axis=0)
    else:
        # Lighter than the skin under the same light, a quarter of its chroma (ivory on warm
        # skin, grey on a grey photo).
        lab = _lab(skin)
        teeth = _rgb(np.array([lab[0] + 0.55 * (97.0 - lab[0]), 0.25 * lab[1], 0.25 * lab[2]], np.float32))
    cavity = _shade(lip, 0.2, 0.9)
    return MouthColors(lip=lip, skin=skin, face_height=face_height, teeth=teeth.astype(np.float32),
                       cavity=cavity, tongue=_shade(lip, 0.62, 1.0), photo_teeth=photo_teeth,
                       edge=edge_width(image, landmarks, [lip, teeth.astype(np.float32)], cavity, face_height))


def edge_width(image: np.ndarray, landmarks: np.ndarray, lights: list[np.ndarray], dark: np.ndarray,
               face_height: float) -> float:
    """Pixels over which the painted interior's edges must rise so that none is steeper than the
    photo's own lip edges (an enlarged photo has soft ones): the largest step the painting makes
    (a lit colour against the cavity) over the steepest slope (99th percentile) on the photo's lips'
    outline."""
    outline = np.concatenate([landmarks[UPPER_OUTER_LIP], landmarks[LOWER_OUTER_LIP][::-1]])
    (x0, y0), (x1, y1) = np.floor(outline.min(0)).astype(int) - 4, np.ceil(outline.max(0)).astype(int) + 5
    x0, y0 = max(x0, 0), max(y0, 0)
    patch = image[y0:max(y1, y0), x0:max(x1, x0)]
    if patch.shape[0] < 5 or patch.shape[1] < 5:
        return 1.0
    ring = np.zeros(patch.shape[:2], np.uint8)
    cv2.polylines(ring, [np.round(outline - [x0, y0]).astype(np.int32)], True, 1, thickness=5)
    grey = cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2GRAY).astype(np.float32)
    gy, gx = np.gradient(grey)
    slope = float(np.percentile(np.hypot(gx, gy)[ring > 0], 99))  # grey levels per pixel
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    step = max(float(c @ weights) for c in lights) - float(dark @ weights)
    return float(np.clip(step / max(slope, 1.0), 1.0, max(1.0, MAX_EDGE_SOFTNESS * face_height)))


def _tooth_seams(xs: np.ndarray, half: float) -> np.ndarray:
    """Per column: 1 on a tooth, a little darker where two teeth meet. Teeth look narrower
    towards the corners, where the dental arch turns away."""
    center = (xs[0] + xs[-1]) / 2.0
    width = TOOTH_WIDTH * 2.0 * half
    offset = (xs - center) / half
    phase = offset * half / width * (1.0 + 0.6 * np.abs(offset))
    distance = np.abs(phase - np.round(phase))  # in tooth widths, to the nearest seam
    sigma = max(0.08, 1.0 / max(width, 1e-3))  # never thinner than about two pixels
    return 1.0 - 0.08 * np.exp(-(distance / sigma) ** 2)


def _ramp(x: np.ndarray, soft: float) -> np.ndarray:
    """Coverage of a pixel by the side x > 0 of an edge, rising over ``soft`` pixels."""
    return np.clip(x / soft + 0.5, 0.0, 1.0)


def paint_mouth_interior(frame: np.ndarray, upper: np.ndarray, lower: np.ndarray, teeth: float,
                         colors: MouthColors, *, upper_teeth: bool = True, labiodental: float = 0.0) -> None:
    """Fill between the warped inner-lip contours ``upper`` and ``lower`` ((N, 2) each).

    ``upper_teeth``: paint upper teeth hanging from the upper contour (False when the photo's
    own teeth show above it). ``labiodental`` (0..1): the upper teeth rest on the lower lip (f, v),
    filling the gap."""
    h, w = frame.shape[:2]
    x0 = max(int(np.floor(min(upper[:, 0].min(), lower[:, 0].min()))), 0)
    x1 = min(int(np.ceil(max(upper[:, 0].max(), lower[:, 0].max()))) + 1, w)
    if x1 <= x0:
        return
    xs = np.arange(x0, x1, dtype=np.float64)
    y_up, y_lo = curve_at(upper, xs), curve_at(lower, xs)
    left, right = max(upper[:, 0].min(), lower[:, 0].min()), min(upper[:, 0].max(), lower[:, 0].max())
    gap = np.where((xs >= left) & (xs <= right), y_lo - y_up, 0.0)
    if gap.max() < 0.3:
        return
    fh = colors.face_height
    soft = colors.edge
    y0 = max(int(np.floor(y_up.min() - 1.5 * soft)) - 1, 0)
    y1 = min(int(np.ceil(y_lo.max() + 1.5 * soft)) + 2, h)
    if y1 <= y0:
        return
    ys = np.arange(y0, y1, dtype=np.float64)[:, None]
    # Pixel coverage by the gap; a thin gap also fades overall so it does not flicker.
    # The upper edge fades in below the upper contour (over the warp's copy of what is just above
    # it: the teeth seem to continue into the dark); the lower one is centred on the lower lip's
    # edge. (Placed over the lips instead, the dark reads to the face mesh as a wider opening at
    # every consonant, and lip sync drops: r 0.596 against 0.675 on the demo.)
    fv = float(np.clip(labiodental, 0.0, 1.0))
    # (teeth on the lip fill the gap to its top: centred there)
    alpha = _ramp(ys - y_up - 0.5 * soft * (1.0 - fv), soft) * _ramp(y_lo - ys, soft) * np.clip(gap / 2.0, 0, 1)
    alpha = alpha * (_ramp(xs - left, soft) * _ramp(right - xs, soft))[None, :]  # soft at the corners too
    depth = np.clip((ys - y_up) / np.maximum(gap, 1e-3), 0.0, 1.0)
    half = max((xs[-1] - xs[0]) / 2.0, 1.0)
    across = np.clip(1.0 - ((xs - (xs[0] + xs[-1]) / 2.0) / half) ** 2, 0, 1)  # 1 at the centre, 0 at corners
    # Cavity: darkest in the middle of the gap and towards the corners (the cheeks shade it),
    # the tongue showing lower down.
    rise = np.maximum(0.55 * gap, 2.0 * soft)  # never a steeper edge than the lips'
    tongue = np.clip((ys - y_up - 0.45 * gap) / rise, 0.0, 1.0)[..., None] ** 1.2 * (0.3 + 0.7 * across[None, :, None])
    light = (0.55 + 0.45 * across)[None, :, None] * (0.75 + 0.25 * depth[..., None])  # shadow under the lip
    color = (colors.cavity * (1.0 - tongue) + colors.tongue * tongue) * light
    # Upper teeth: a band hanging from the upper lip, incisors longest, in the lip's shadow at
    # the top; labiodentals fill the gap with them.
    show = (0.35 + 0.65 * float(np.clip(teeth, 0.0, 1.0))) if upper_teeth else 0.0
    band = np.minimum(0.45 * gap, 0.07 * fh) * (0.8 + 0.2 * across) * show
    band = band + (gap + soft - band) * fv
    upper_alpha = _ramp(y_up + band - ys, soft) * np.clip(band / soft, 0, 1)
    # The lower teeth's edges above the lower lip on wide openings, in the middle of the arch.
    lower_band = (float(np.clip(teeth, 0.0, 1.0)) * np.clip(0.25 * (gap - 0.03 * fh), 0.0, 0.03 * fh)
                  * across ** 0.5)
    lower_alpha = 0.7 * _ramp(ys - (y_lo - lower_band), soft) * np.clip(lower_band / soft, 0, 1)
    within = np.clip((ys - y_up) / np.maximum(band, 1.0), 0.0, 1.0)  # 0 at the lip, 1 at the tooth edge
    tooth_light = ((0.75 + 0.25 * across) * (0.78 + 0.22 * np.sqrt(within)) * _tooth_seams(xs, half))
    tooth = colors.teeth[None, None, :] * tooth_light[..., None]
    teeth_alpha = np.clip(upper_alpha + lower_alpha, 0.0, 1.0)[..., None]
    color = color * (1.0 - teeth_alpha) + tooth * teeth_alpha
    region = frame[y0:y1, x0:x1].astype(np.float32)
    a = alpha[..., None].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(region * (1.0 - a) + color * a + 0.5, 0, 255).astype(np.uint8)
