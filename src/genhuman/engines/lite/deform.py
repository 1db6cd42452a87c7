"""Basis displacement fields built once per portrait from its 478-point face mesh.

Every field is a *backward* offset: the rendered pixel ``p`` shows the portrait at
``p + field(p)``. Backward mapping means nothing can tear: each output pixel samples
somewhere. A frame's field is a weighted sum of the bases, so rendering is a few
multiply-adds plus one ``cv2.remap``.

Geometry is computed in a face frame: ``u`` along the eye line, ``v`` perpendicular
to it pointing down, origin at the mouth centre, in pixels. That keeps the shapes
right for tilted heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from genhuman.face import landmark_indices as idx


def _halves(contour: tuple[int, ...], split: int) -> tuple[list[int], list[int]]:
    """A closed contour's two halves between its points 0 and ``split``, both in the same order."""
    return list(contour[:split + 1]), [contour[0], *reversed(contour[split + 1:]), contour[split]]


UPPER_OUTER_LIP, LOWER_OUTER_LIP = _halves(idx.LIPS_OUTER, 10)
UPPER_INNER_LIP, LOWER_INNER_LIP = _halves(idx.LIPS_INNER, 10)
FACE_OVAL = list(idx.FACE_OVAL)
# (upper lid, lower lid, brow) per eye, the lids in the same order along the eye.
EYES = [(*_halves(idx.RIGHT_EYE, 8), list(idx.RIGHT_EYEBROW)),
        (*_halves(idx.LEFT_EYE, 8), list(idx.LEFT_EYEBROW))]
FOREHEAD, CHIN = FACE_OVAL[0], idx.CHIN
SUBNASALE = 2  # where the nose meets the upper lip

# Largest motions at weight 1, as fractions of the face height (forehead to chin) or
# the mouth width; chosen by eye so that full weight still looks like a human face.
JAW_OPEN = 0.15  # face heights the lower lip drops at full opening
UPPER_LIP_LIFT = 0.12  # share of the opening taken by the upper lip moving up
WIDEN = 0.10  # mouth widths each corner moves out
ROUND = 0.14  # mouth widths each corner moves in
PRESS = 0.30  # lip thicknesses the lips roll in
LIP_LIFT = 0.025  # face heights the upper lip lifts for f / v
POUT = 0.12  # how much rounded lips grow (share of their size)


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def curve_at(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """y of the polyline through ``points`` ((N, 2) x, y) at each x, ends held flat."""
    order = np.argsort(points[:, 0], kind="stable")
    return np.interp(xs, points[order, 0], points[order, 1])


@dataclass
class Basis:
    """A field on the box ``[y0:y1, x0:x1]`` of the portrait: ``data`` is (h, w, 2) dx, dy."""

    y0: int
    x0: int
    data: np.ndarray

    @property
    def y1(self) -> int:
        return self.y0 + self.data.shape[0]

    @property
    def x1(self) -> int:
        return self.x0 + self.data.shape[1]


@dataclass
class FaceFrame:
    """The face-aligned coordinate frame: image point = origin + u * eu + v * ev."""

    origin: np.ndarray
    eu: np.ndarray
    ev: np.ndarray

    def to_face(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.asarray(xy, np.float64) - self.origin
        return d @ self.eu, d @ self.ev

    def grid(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dx, dy = xs - np.float32(self.origin[0]), ys - np.float32(self.origin[1])
        return (dx * np.float32(self.eu[0]) + dy * np.float32(self.eu[1]),
                dx * np.float32(self.ev[0]) + dy * np.float32(self.ev[1]))

    def to_image(self, du: np.ndarray, dv: np.ndarray) -> np.ndarray:
        """Face-frame offsets -> (h, w, 2) image offsets."""
        out = np.empty(du.shape + (2,), np.float32)
        out[..., 0] = du * np.float32(self.eu[0]) + dv * np.float32(self.ev[0])
        out[..., 1] = du * np.float32(self.eu[1]) + dv * np.float32(self.ev[1])
        return out


def face_frame(landmarks: np.ndarray) -> FaceFrame:
    left_eye = landmarks[EYES[0][0]].mean(0)
    right_eye = landmarks[EYES[1][0]].mean(0)
    eu = right_eye - left_eye
    eu = eu / max(np.linalg.norm(eu), 1e-6)
    ev = np.array([-eu[1], eu[0]])  # eu rotated +90 degrees: down in image coordinates
    origin = (landmarks[idx.MOUTH_CORNER_RIGHT] + landmarks[idx.MOUTH_CORNER_LEFT]) / 2.0
    return FaceFrame(origin.astype(np.float64), eu.astype(np.float64), ev.astype(np.float64))


def region_box(center_xy: np.ndarray, half_w: float, half_h: float,
               shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x0 = int(np.clip(np.floor(center_xy[0] - half_w), 0, w))
    x1 = int(np.clip(np.ceil(center_xy[0] + half_w), 0, w))
    y0 = int(np.clip(np.floor(center_xy[1] - half_h), 0, h))
    y1 = int(np.clip(np.ceil(center_xy[1] + half_h), 0, h))
    return y0, y1, x0, x1


def seal_field(landmarks: np.ndarray, shape: tuple[int, ...]) -> Optional[Basis]:
    """The backward offsets that close a mouth open in the photo (None when it is closed).

    Per image column, the upper lip (with a little skin above) is stretched down and the
    lower lip up until they meet in the middle of the gap. At weight ``w`` the gap is closed
    by about ``w``: the lips come together over the teeth.
    """
    up_o, lo_o = landmarks[UPPER_OUTER_LIP], landmarks[LOWER_OUTER_LIP]
    up_i, lo_i = landmarks[UPPER_INNER_LIP], landmarks[LOWER_INNER_LIP]
    if float(np.max(lo_i[:, 1] - up_i[:, 1])) < 0.5:
        return None
    x0 = max(int(np.floor(min(up_i[:, 0].min(), lo_i[:, 0].min()))), 0)
    x1 = min(int(np.ceil(max(up_i[:, 0].max(), lo_i[:, 0].max()))) + 1, shape[1])
    xs = np.arange(x0, x1, dtype=np.float32)
    yu_o, yu_i, yl_i, yl_o = (curve_at(p, xs).astype(np.float32) for p in (up_o, up_i, lo_i, lo_o))
    y_mid = (yu_i + yl_i) / 2.0
    top = yu_o - 0.5 * np.maximum(yu_i - yu_o, 1.0)  # spread the stretch into the skin above
    bottom = yl_o + 0.5 * np.maximum(yl_o - yl_i, 1.0)
    # The lips meet a little inside their inner edges: the edge itself is half teeth, and
    # would show as a light seam.
    overlap = np.where(yl_i > yu_i, np.maximum(1.0, 0.1 * (yl_i - yu_i)), 0.0).astype(np.float32)
    yu_i = np.maximum(yu_i - overlap, top + 1.0)
    yl_i = np.minimum(yl_i + overlap, bottom - 1.0)
    y0 = max(int(np.floor(top.min())) - 1, 0)
    y1 = min(int(np.ceil(bottom.max())) + 2, shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    upper = top + (ys - top) * (yu_i - top) / np.maximum(y_mid - top, 1e-3)
    lower = bottom - (bottom - ys) * (bottom - yl_i) / np.maximum(bottom - y_mid, 1e-3)
    map_y = np.where(ys < y_mid, upper, lower)
    map_y = np.where((ys < top) | (ys > bottom) | (yl_i <= yu_i), ys, map_y)
    data = np.zeros((y1 - y0, x1 - x0, 2), np.float32)
    data[..., 1] = map_y - ys
    return Basis(y0, x0, data)


def sealed_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The landmarks with both inner lip contours on the middle line of the photo's gap."""
    out = landmarks.copy()
    mid = (landmarks[UPPER_INNER_LIP] + landmarks[LOWER_INNER_LIP]) / 2.0
    out[UPPER_INNER_LIP] = mid
    out[LOWER_INNER_LIP] = mid
    return out


def seal_lips(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo with its mouth closed by :func:`seal_field` at full weight, and
    :func:`sealed_landmarks`. (The renderer composes the field instead: one resampling.)"""
    basis = seal_field(landmarks, image.shape)
    if basis is None:
        return image, sealed_landmarks(landmarks)
    ys, xs = np.mgrid[basis.y0:basis.y1, basis.x0:basis.x1].astype(np.float32)
    out = image.copy()
    out[basis.y0:basis.y1, basis.x0:basis.x1] = cv2.remap(
        image, xs + basis.data[..., 0], ys + basis.data[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out, sealed_landmarks(landmarks)


@dataclass
class MouthGeometry:
    """The closed lip line in the face frame, and sizes the bases scale with."""

    line_u: np.ndarray  # sorted u of the lip line (the lower lip's inner edge)
    line_v: np.ndarray
    top_u: np.ndarray  # sorted u of the upper lip's inner edge (the lip line when the lips touch)
    top_v: np.ndarray
    half_width: float  # half the mouth width (corner to centre)
    upper_lip: float  # lip thicknesses at the centre
    lower_lip: float
    nose_gap: float  # lip line to the base of the nose
    face_height: float

    def line(self, u: np.ndarray) -> np.ndarray:
        """v of the lip line; beyond the corners it runs down and out, towards the jaw."""
        v = np.interp(u, self.line_u, self.line_v)
        beyond = np.maximum(np.abs(u) - self.half_width, 0.0)
        return (v + 0.6 * beyond).astype(np.float32)

    def top_line(self, u: np.ndarray) -> np.ndarray:
        """v of the upper lip's inner edge (the lip line beyond the corners)."""
        v = np.interp(u, self.top_u, self.top_v)
        beyond = np.maximum(np.abs(u) - self.half_width, 0.0)
        return (v + 0.6 * beyond).astype(np.float32)

    def opening_profile(self, u: np.ndarray) -> np.ndarray:
        """How much of the opening each column gets: 1 at the centre, 0 at the corners."""
        x = np.clip(1.0 - (u / self.half_width) ** 2, 0.0, 1.0)
        return x.astype(np.float32)


def mouth_geometry(frame: FaceFrame, landmarks: np.ndarray) -> MouthGeometry:
    # The jaw opens below the lower lip's inner edge: with lips parted in the photo, what
    # shows between the lips (teeth) stays with the upper jaw.
    u, v = frame.to_face(landmarks[LOWER_INNER_LIP])
    order = np.argsort(u)
    _, v_top = frame.to_face(landmarks[idx.UPPER_LIP_OUTER])
    _, v_bottom = frame.to_face(landmarks[idx.LOWER_LIP_OUTER])
    _, v_line = frame.to_face(landmarks[idx.UPPER_LIP_INNER])
    _, v_lower_line = frame.to_face(landmarks[idx.LOWER_LIP_INNER])
    _, v_nose = frame.to_face(landmarks[SUBNASALE])
    face_height = float(np.linalg.norm(landmarks[CHIN] - landmarks[FOREHEAD]))
    cu, _ = frame.to_face(landmarks[[idx.MOUTH_CORNER_RIGHT, idx.MOUTH_CORNER_LEFT]])
    tu, tv = frame.to_face(landmarks[UPPER_INNER_LIP])
    top_order = np.argsort(tu)
    return MouthGeometry(
        line_u=u[order], line_v=v[order], top_u=tu[top_order], top_v=tv[top_order],
        half_width=float(abs(cu[1] - cu[0]) / 2.0),
        upper_lip=max(float(v_line - v_top), 0.02 * face_height),
        lower_lip=max(float(v_bottom - v_lower_line), 0.03 * face_height),
        nose_gap=max(float(v_line - v_nose), 0.05 * face_height), face_height=face_height)


def _inside_face(shape: tuple[int, ...], landmarks: np.ndarray, box: tuple[int, int, int, int],
                 feather: float) -> np.ndarray:
    """1 inside the face oval, falling smoothly to 0 over ``feather`` pixels outside it."""
    y0, y1, x0, x1 = box
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round(landmarks[FACE_OVAL] - [x0, y0]).astype(np.int32)], 1)
    outside = cv2.distanceTransform(1 - mask, cv2.DIST_L2, 5)
    return (1.0 - smoothstep(outside / max(feather, 1.0))).astype(np.float32)


def _jaw_box(frame: FaceFrame, geo: MouthGeometry, landmarks: np.ndarray, shape) -> tuple[int, int, int, int]:
    pts = landmarks[FACE_OVAL]
    fh = geo.face_height
    lo = np.minimum(pts.min(0), frame.origin) - 0.25 * fh
    hi = np.maximum(pts.max(0), frame.origin) + 0.35 * fh
    lo[1] = frame.origin[1] - 0.35 * fh  # the jaw field does not reach above the nose
    center, half = (lo + hi) / 2.0, (hi - lo) / 2.0
    return region_box(center, half[0], half[1], shape)


def jaw_open_basis(frame: FaceFrame, geo: MouthGeometry, landmarks: np.ndarray, shape) -> Basis:
    """Lower lip, chin, jaw and lower cheeks drop together; the upper lip lifts a little."""
    box = _jaw_box(frame, geo, landmarks, shape)
    u, v = frame.grid(*box)
    fh = geo.face_height
    # Lips parted in the photo are partly open already: the jaw drops less beyond them.
    drop = JAW_OPEN * fh
    below = v - geo.line(u)
    profile = geo.opening_profile(u)
    # Near the lip line the drop follows the opening profile (lens-shaped mouth); a lip
    # thickness lower the whole jaw moves as one. Beyond the corners the cheek stretches.
    # The ramp is long enough that the map never folds (|d offset / dv| < 1).
    ramp = max(geo.lower_lip * 1.5, 2.0 * drop) + 1.2 * np.maximum(np.abs(u) - geo.half_width, 0.0)
    amount = profile + (1.0 - profile) * smoothstep(below / ramp)
    # The jaw hinges near the ears: far from the mouth the drop fades.
    amount *= 1.0 - 0.7 * smoothstep((np.abs(u) - geo.half_width) / (0.45 * fh))
    amount *= np.clip(below + 0.5, 0.0, 1.0)  # anti-aliased step at the lip line
    amount *= _inside_face(shape, landmarks, box, 0.18 * fh)
    dv = -drop * amount
    # Upper lip: lifts with the opening profile, fading to nothing at the base of the nose.
    above = np.maximum(-below, 0.0)
    lift = UPPER_LIP_LIFT * drop * profile * (1.0 - smoothstep(above / geo.nose_gap))
    dv += lift * np.clip(0.5 - below, 0.0, 1.0)
    return Basis(box[0], box[2], frame.to_image(np.zeros_like(dv), dv.astype(np.float32)))


def _mouth_box(frame: FaceFrame, geo: MouthGeometry, shape) -> tuple[int, int, int, int]:
    r = geo.half_width * 2.0 + 0.1 * geo.face_height
    return region_box(frame.origin, r, r, shape)


def _corner_field(frame: FaceFrame, geo: MouthGeometry, shape, amount: float) -> Basis:
    """Horizontal motion of the mouth corners by ``amount`` pixels (positive: outward)."""
    box = _mouth_box(frame, geo, shape)
    u, v = frame.grid(*box)
    hw = geo.half_width
    along = np.clip(u / hw, -1.0, 1.0) * np.exp(-(np.maximum(np.abs(u) - hw, 0.0) / (0.6 * hw)) ** 2)
    across = np.exp(-((v - geo.line(u)) / (0.09 * geo.face_height)) ** 2)
    du = (-amount * along * across).astype(np.float32)
    return Basis(box[0], box[2], frame.to_image(du, np.zeros_like(du)))


def widen_basis(frame: FaceFrame, geo: MouthGeometry, shape) -> Basis:
    return _corner_field(frame, geo, shape, WIDEN * 2.0 * geo.half_width)


def round_basis(frame: FaceFrame, geo: MouthGeometry, shape) -> Basis:
    return _corner_field(frame, geo, shape, -ROUND * 2.0 * geo.half_width)


def press_basis(frame: FaceFrame, geo: MouthGeometry, shape) -> Basis:
    """Lips roll in towards the lip line (closed consonants, pressed lips)."""
    box = _mouth_box(frame, geo, shape)
    u, v = frame.grid(*box)
    below = v - geo.line(u)
    thickness = np.where(below < 0, geo.upper_lip, geo.lower_lip)
    amount = PRESS * thickness * np.exp(-(below / thickness) ** 2)
    amount *= np.exp(-(np.maximum(np.abs(u) - geo.half_width, 0.0) / (0.3 * geo.half_width)) ** 2)
    dv = (np.where(below < 0, -amount, amount) * np.clip(np.abs(below) * 2.0, 0.0, 1.0)).astype(np.float32)
    return Basis(box[0], box[2], frame.to_image(np.zeros_like(dv), dv))


def lift_basis(frame: FaceFrame, geo: MouthGeometry, shape) -> Basis:
    """The upper lip alone lifts off the lower one (f, v: the upper teeth rest on the lower
    lip), fading to nothing at the base of the nose; below its inner edge nothing moves."""
    box = _mouth_box(frame, geo, shape)
    u, v = frame.grid(*box)
    above = geo.top_line(u) - v
    lift = LIP_LIFT * geo.face_height * geo.opening_profile(u) ** 0.5
    lift = np.minimum(lift, 0.8 * geo.nose_gap)  # never folds: the fade below is longer than the lift
    dv = lift * (1.0 - smoothstep(np.maximum(above, 0.0) / geo.nose_gap)) * np.clip(above + 0.5, 0.0, 1.0)
    return Basis(box[0], box[2], frame.to_image(np.zeros_like(dv), dv.astype(np.float32)))


def pout_basis(frame: FaceFrame, geo: MouthGeometry, shape) -> Basis:
    """Rounded lips push forward: the lips grow about their centre (o, u, w)."""
    box = _mouth_box(frame, geo, shape)
    u, v = frame.grid(*box)
    center_v = (float(geo.top_line(np.zeros(1))[0]) - geo.upper_lip + float(geo.line(np.zeros(1))[0])
                + geo.lower_lip) / 2.0
    du, dv = u, v - center_v
    reach_u, reach_v = 1.2 * geo.half_width, 1.3 * (geo.upper_lip + geo.lower_lip)
    fade = 1.0 - smoothstep(np.hypot(du / reach_u, dv / reach_v) / 2.0)  # nothing beyond twice the reach
    # Backward: sample closer to the centre, so the lips look larger; the slope stays well
    # below 1, so the map never folds.
    return Basis(box[0], box[2], frame.to_image((-POUT * du * fade).astype(np.float32),
                                                (-POUT * dv * fade).astype(np.float32)))
