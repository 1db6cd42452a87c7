"""One frame = one remap of the portrait's head region + the painted mouth interior.

The head region (face, hair, a margin) is the only part that ever changes: pixels
outside it are copied from the portrait, so the background stays exactly still.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from genhuman.engines.lite.deform import (
    CHIN, FACE_OVAL, Basis, blink_basis, face_frame, jaw_open_basis, mouth_geometry, press_basis,
    region_box, round_basis, seal_lips, smoothstep, widen_basis,
)
from genhuman.engines.lite.mouth_interior import MouthColors, mouth_colors, paint_mouth_interior

LIP_SAMPLES = 33  # points along each inner-lip contour for the mouth interior
# Contours are tracked this far off the lip line (a share of the lip's thickness, at least
# 1.5 pixels), where the field is smooth: at the line itself the jaw's edge is.
LIP_PROBE = 0.35
HEAD_STEP = 4  # pixels between the samples of the (smooth) head motion


@dataclass
class FrameWeights:
    """Everything one frame needs. Mouth weights are 0..1 (``widen`` -1..1)."""

    open: float = 0.0
    widen: float = 0.0
    round: float = 0.0
    press: float = 0.0
    teeth: float = 0.0
    blink: float = 0.0
    roll: float = 0.0  # degrees
    shift_x: float = 0.0  # face heights
    shift_y: float = 0.0


class Renderer:
    """Built once per portrait (a few milliseconds); then :meth:`render` per frame."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray):
        self.base, lm = seal_lips(image, landmarks)
        frame = face_frame(lm)
        geo = mouth_geometry(frame, lm)
        shape = image.shape
        self.face_height = geo.face_height
        self.mouth_bases: dict[str, Basis] = {
            "open": jaw_open_basis(frame, geo, lm, shape),
            "widen": widen_basis(frame, geo, shape),
            "round": round_basis(frame, geo, shape),
            "press": press_basis(frame, geo, shape),
        }
        self.blink_bases = blink_basis(frame, lm, shape)
        self.colors = mouth_colors(self.base, lm)
        fh = geo.face_height
        self.head_center = lm[FACE_OVAL].mean(0)
        self.head_axes = np.array([0.75 * fh, 0.95 * fh])
        self.pivot = (lm[CHIN] + frame.ev * 0.3 * fh).astype(np.float32)  # the neck turns the head
        # Inner-lip contour just above and below the closed line, in portrait coordinates.
        u = np.linspace(-geo.half_width, geo.half_width, LIP_SAMPLES)
        v = geo.line(u)
        self.probe = max(LIP_PROBE * min(geo.upper_lip, geo.lower_lip), 1.5)
        self.lip_upper = frame.origin + np.outer(u, frame.eu) + np.outer(v - self.probe, frame.ev)
        self.lip_lower = frame.origin + np.outer(u, frame.eu) + np.outer(v + self.probe, frame.ev)
        self.lip_normal = frame.ev.astype(np.float32)
        self._derive()

    def _derive(self) -> None:
        """Everything that follows from the portrait-specific values (also after from_state)."""
        shape = self.base.shape
        # Head region: an ellipse over face and hair that moves rigidly, feathered out to
        # nothing inside the region box (r = 1.5 < 1.6).
        y0, y1, x0, x1 = region_box(self.head_center, 1.6 * self.head_axes[0], 1.6 * self.head_axes[1], shape)
        bases = [*self.mouth_bases.values(), *self.blink_bases]
        for b in bases:
            y0, y1, x0, x1 = min(y0, b.y0), max(y1, b.y1), min(x0, b.x0), max(x1, b.x1)
        self.roi = (y0, y1, x0, x1)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self.grid = np.dstack([xs, ys])
        # The head motion is smooth: computed on a coarse grid placed so that cv2.resize's
        # bilinear upsampling reproduces it exactly where it is affine.
        h, w = y1 - y0, x1 - x0
        hc, wc = -(-h // HEAD_STEP), -(-w // HEAD_STEP)
        cys = y0 + (np.arange(hc) + 0.5) * h / hc - 0.5
        cxs = x0 + (np.arange(wc) + 0.5) * w / wc - 0.5
        self.coarse = np.dstack(np.meshgrid(cxs, cys)).astype(np.float32)
        self.coarse_mask = self._head_mask(self.coarse[..., 0], self.coarse[..., 1], shape)[..., None]
        # The face deformation lives in a smaller box; the margin covers the head motion.
        margin = int(np.ceil(0.15 * self.face_height))
        self.face_box = (max(min(b.y0 for b in bases) - margin, y0), min(max(b.y1 for b in bases) + margin, y1),
                         max(min(b.x0 for b in bases) - margin, x0), min(max(b.x1 for b in bases) + margin, x1))
        fy0, fy1, fx0, fx1 = self.face_box
        self.field = np.zeros((fy1 - fy0, fx1 - fx0, 2), np.float32)
        ends = np.minimum(np.arange(LIP_SAMPLES), np.arange(LIP_SAMPLES)[::-1]) / (0.12 * (LIP_SAMPLES - 1))
        self.corner_taper = np.sqrt(np.clip(ends, 0.0, 1.0))[:, None]

    def state(self) -> dict[str, np.ndarray]:
        """The portrait-specific arrays; :meth:`from_state` rebuilds an identical renderer."""
        out = {"base": self.base, "head_center": np.asarray(self.head_center, np.float64),
               "head_axes": np.asarray(self.head_axes, np.float64), "pivot": self.pivot,
               "scalars": np.array([self.face_height, self.probe, self.colors.face_height], np.float64),
               "lip_upper": self.lip_upper, "lip_lower": self.lip_lower, "lip_normal": self.lip_normal,
               "color_lip": self.colors.lip, "color_skin": self.colors.skin}
        for name, basis in [*self.mouth_bases.items(), *((f"blink{i}", b) for i, b in enumerate(self.blink_bases))]:
            out[f"basis_{name}"] = basis.data
            out[f"basis_{name}_at"] = np.array([basis.y0, basis.x0], np.int64)
        return {k: np.ascontiguousarray(v) for k, v in out.items()}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray]) -> "Renderer":
        self = cls.__new__(cls)

        def basis(name: str) -> Basis:
            y0, x0 = (int(v) for v in arrays[f"basis_{name}_at"])
            return Basis(y0, x0, np.asarray(arrays[f"basis_{name}"]))

        self.base = np.asarray(arrays["base"])
        face_height, probe, color_height = (float(v) for v in arrays["scalars"])
        self.face_height, self.probe = face_height, probe
        self.mouth_bases = {name: basis(name) for name in ("open", "widen", "round", "press")}
        blinks = sorted((k for k in arrays if k.startswith("basis_blink") and not k.endswith("_at")),
                        key=lambda k: int(k[len("basis_blink"):]))
        self.blink_bases = [basis(k[len("basis_"):]) for k in blinks]
        self.colors = MouthColors(lip=np.asarray(arrays["color_lip"]), skin=np.asarray(arrays["color_skin"]),
                                  face_height=color_height)
        self.head_center = np.asarray(arrays["head_center"])
        self.head_axes = np.asarray(arrays["head_axes"])
        self.pivot = np.asarray(arrays["pivot"])
        self.lip_upper, self.lip_lower = np.asarray(arrays["lip_upper"]), np.asarray(arrays["lip_lower"])
        self.lip_normal = np.asarray(arrays["lip_normal"])
        self._derive()
        return self

    def _head_mask(self, xs: np.ndarray, ys: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """1 on the head, 0 outside the region. Where the head reaches the picture's edge it
        stays pinned there (hair stretches) instead of pulling in mirrored pixels."""
        r = np.hypot((xs - self.head_center[0]) / self.head_axes[0], (ys - self.head_center[1]) / self.head_axes[1])
        to_edge = np.minimum(np.minimum(xs, shape[1] - 1 - xs), np.minimum(ys, shape[0] - 1 - ys))
        pinned = smoothstep((to_edge - HEAD_STEP) / (0.25 * self.face_height))
        return ((1.0 - smoothstep((r - 1.0) / 0.5)) * pinned).astype(np.float32)

    def _add(self, basis: Basis, weight: float) -> None:
        if weight != 0.0:
            fy0, _, fx0, _ = self.face_box
            h, w = basis.data.shape[:2]
            self.field[basis.y0 - fy0:basis.y0 - fy0 + h, basis.x0 - fx0:basis.x0 - fx0 + w] += (
                np.float32(weight) * basis.data)

    def _head_offset(self, weights: FrameWeights) -> np.ndarray | None:
        """Backward offset of the head motion over the region, or None when still."""
        if weights.roll == 0.0 and weights.shift_x == 0.0 and weights.shift_y == 0.0:
            return None
        angle = np.deg2rad(weights.roll)
        c, s = np.cos(angle), np.sin(angle)
        shift = np.array([weights.shift_x, weights.shift_y]) * self.face_height
        # Forward: p' = R (p - pivot) + pivot + shift, so the source of p' is
        # R^T (p' - pivot - shift) + pivot; the offset is affine in p'.
        affine = np.array([[c - 1.0, s], [-s, c - 1.0]], np.float32)
        constant = self.pivot - np.array([[c, s], [-s, c]]) @ (self.pivot + shift)
        coarse = (self.coarse @ affine.T + constant.astype(np.float32)) * self.coarse_mask
        y0, y1, x0, x1 = self.roi
        return cv2.resize(coarse, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)

    def backward_map(self, weights: FrameWeights) -> np.ndarray:
        """Absolute source coordinates (h, w, 2) for every pixel of the head region."""
        self.field.fill(0.0)
        mouth = {"open": weights.open, "widen": weights.widen, "round": weights.round,
                 "press": weights.press}
        for name, basis in self.mouth_bases.items():
            self._add(basis, mouth[name])
        for basis in self.blink_bases:
            self._add(basis, weights.blink)
        head = self._head_offset(weights)
        source = self.grid.copy() if head is None else self.grid + head
        y0, _, x0, _ = self.roi
        fy0, fy1, fx0, fx1 = self.face_box
        inner = source[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
        if head is None:
            inner += self.field
        else:
            # Compose: the head moves first, the face deforms in the head's own coordinates.
            inner += cv2.remap(self.field, inner[..., 0] - np.float32(fx0), inner[..., 1] - np.float32(fy0),
                               cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return source

    def _head_forward(self, points: np.ndarray, weights: FrameWeights) -> np.ndarray:
        """Where the head motion alone carries portrait points (the mouth moves rigidly)."""
        angle = np.deg2rad(weights.roll)
        c, s = np.cos(angle), np.sin(angle)
        shift = np.array([weights.shift_x, weights.shift_y]) * self.face_height
        return (points - self.pivot) @ np.array([[c, -s], [s, c]]).T + self.pivot + shift

    def _to_output(self, points: np.ndarray, source_map: np.ndarray, weights: FrameWeights) -> np.ndarray:
        """Where portrait points appear in the frame: solve map(y) = point by fixed point,
        from a first-order guess (undo the face field, then move with the head) that is on
        the right side of the lips; a start near the lip line could converge to the copy of
        the upper lip that the open jaw leaves under the cavity."""
        y0, _, x0, _ = self.roi
        fy0, _, fx0, _ = self.face_box
        local = (points - [fx0, fy0]).astype(np.float32)
        face = cv2.remap(self.field, local[None, :, 0], local[None, :, 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)[0]
        out = self._head_forward(points - face, weights).astype(np.float32)
        for _ in range(3):
            local = (out - [x0, y0]).astype(np.float32)
            sampled = cv2.remap(source_map, local[None, :, 0], local[None, :, 1], cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)[0]
            out = (points - (sampled - out)).astype(np.float32)
        return out

    def render(self, weights: FrameWeights) -> np.ndarray:
        """The frame as HxWx3 uint8 RGB (a new array)."""
        source_map = self.backward_map(weights)
        y0, y1, x0, x1 = self.roi
        frame = self.base.copy()
        frame[y0:y1, x0:x1] = cv2.remap(self.base, source_map[..., 0], source_map[..., 1],
                                        cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if weights.open > 0.0:
            # Contours were tracked off the line: move them back onto it, and never let
            # the upper one cross below the lower one.
            probe = (self.probe - 0.5) * self.lip_normal
            upper = self._to_output(self.lip_upper, source_map, weights) + probe
            lower = self._to_output(self.lip_lower, source_map, weights) - probe
            crossed = ((upper - lower) @ self.lip_normal)[:, None] > 0
            upper = np.where(crossed, lower, upper)
            # The bases add up in the frame rather than compose, so with rounded lips the
            # corners can stay a little open: close the painted gap there.
            middle = (upper + lower) / 2.0
            upper = middle + (upper - middle) * self.corner_taper
            lower = middle + (lower - middle) * self.corner_taper
            paint_mouth_interior(frame, upper, lower, weights.teeth, self.colors)
        return frame
