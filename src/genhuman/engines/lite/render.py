"""One frame = one remap of the photo's head region + the painted mouth interior.

Every frame is a single cubic resampling of the original photo: the head motion, the face
deformation and (for ``expression="neutral"``) the lip sealing are composed as maps first.
The head moves only inside the person (``person``: a soft mask that is exactly 0 outside),
so the background stays exactly still; each eye moves by whole pixels, so it stays as sharp
as in the photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from typing import Optional

from genhuman.request import EXPRESSIONS  # the photo's own mouth at rest, or lips closed

from genhuman.engines.lite.deform import (
    CHIN, EYES, FACE_OVAL, Basis, face_frame,
    jaw_open_basis, lift_basis, mouth_geometry, pout_basis, press_basis, region_box, round_basis, seal_field,
    sealed_landmarks, smoothstep, widen_basis,
)
from genhuman.engines.lite.eyelids import EyeLids
from genhuman.engines.lite.mouth_interior import MouthColors, mouth_colors, paint_mouth_interior

INTERPOLATION = cv2.INTER_CUBIC
EYE_SNAP_MARGIN = 0.45  # eye widths around each eye moved by whole pixels ...
EYE_SNAP_FADE = 0.35  # ... fading over this many eye widths into the smooth head motion
MOUTH_BASES = ("open", "widen", "round", "press", "lift", "pout")

LIP_SAMPLES = 33  # points along each inner-lip contour for the mouth interior
# Contours are tracked this far off the lip line (a share of the lip's thickness, at least
# 1.5 pixels), where the field is smooth: at the line itself the jaw's edge is.
LIP_PROBE = 0.35
HEAD_STEP = 4  # pixels between the samples of the (smooth) head motion


def _sample(basis: Basis, points: np.ndarray) -> np.ndarray:
    """A basis field at photo points ((N, 2) x, y), bilinear, 0 outside its box."""
    local = (points - [basis.x0, basis.y0]).astype(np.float32)
    return cv2.remap(basis.data, local[None, :, 0], local[None, :, 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)[0].astype(np.float64)


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
    seal: float = 0.0  # lips parted in the photo close (m, b, p); "neutral" is always sealed
    lift: float = 0.0  # the upper lip lifts off the lower one, teeth on the lip (f, v)
    pout: float = 0.0  # rounded lips push forward (o, u, w)


class Renderer:
    """Built once per portrait (a few milliseconds); then :meth:`render` per frame."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, *, expression: str = "keep",
                 person: Optional[np.ndarray] = None):
        """``expression``: "keep" (the photo's mouth at rest: a smile with teeth stays one) or
        "neutral" (parted lips are closed at rest). ``person``: HxW 0..1, exactly 0 where the
        head must not move (genhuman.face.person_mask); None: the head region alone."""
        if expression not in EXPRESSIONS:
            raise ValueError(f"expression must be one of {EXPRESSIONS}, got {expression!r}")
        self.base = image
        self.neutral = expression == "neutral"
        self.colors = mouth_colors(image, landmarks)
        lm = sealed_landmarks(landmarks) if self.neutral else landmarks
        self.seal = seal_field(landmarks, image.shape)
        frame = face_frame(lm)
        geo = mouth_geometry(frame, lm)
        shape = image.shape
        self.face_height = geo.face_height
        self.mouth_bases: dict[str, Basis] = {
            "open": jaw_open_basis(frame, geo, lm, shape),
            "widen": widen_basis(frame, geo, shape),
            "round": round_basis(frame, geo, shape),
            "press": press_basis(frame, geo, shape),
            "lift": lift_basis(frame, geo, shape),
            "pout": pout_basis(frame, geo, shape),
        }
        self.eyelids = EyeLids(frame, lm, shape)
        fh = geo.face_height
        self.head_center = lm[FACE_OVAL].mean(0)
        self.head_axes = np.array([0.75 * fh, 0.95 * fh])
        self.pivot = (lm[CHIN] + frame.ev * 0.3 * fh).astype(np.float32)  # the neck turns the head
        # Inner-lip contours just above and below the gap that opens, in photo coordinates:
        # the jaw drops below the lower lip's inner edge; above it the upper lip, or the
        # photo's own teeth when they show (they are kept, the painting starts below them).
        u = np.linspace(-geo.half_width, geo.half_width, LIP_SAMPLES)
        self.probe = max(LIP_PROBE * min(geo.upper_lip, geo.lower_lip), 1.5)
        keep_teeth = self.colors.photo_teeth and not self.neutral
        v_top = geo.line(u) if keep_teeth else geo.top_line(u)
        self.lip_upper = frame.origin + np.outer(u, frame.eu) + np.outer(v_top - self.probe, frame.ev)
        self.lip_lower = frame.origin + np.outer(u, frame.eu) + np.outer(geo.line(u) + self.probe, frame.ev)
        if self.neutral and self.seal is not None:
            # Those points are on the sealed mouth: where the photo shows them.
            self.lip_upper = self.lip_upper + _sample(self.seal, self.lip_upper)
            self.lip_lower = self.lip_lower + _sample(self.seal, self.lip_lower)
        self.lip_normal = frame.ev.astype(np.float32)
        self.eye_centers = np.stack([landmarks[upper + lower].mean(0) for upper, lower, _ in EYES])
        self.eye_widths = np.array([float(np.ptp(landmarks[upper][:, 0])) for upper, _, _ in EYES])
        self.person = None if person is None else np.asarray(person, np.float32)
        if self.person is not None:
            # The face moves only inside the person too (the jaw's fade reaches past the face oval).
            for b in [*self.mouth_bases.values(), *([self.seal] if self.seal is not None else [])]:
                b.data *= self.person[b.y0:b.y1, b.x0:b.x1, None]
        self._derive()

    def _derive(self) -> None:
        """Everything that follows from the portrait-specific values (also after from_state)."""
        shape = self.base.shape
        # Head region: an ellipse over face and hair that moves rigidly, feathered out to
        # nothing inside the region box (r = 1.5 < 1.6).
        y0, y1, x0, x1 = region_box(self.head_center, 1.6 * self.head_axes[0], 1.6 * self.head_axes[1], shape)
        boxes = [(b.y0, b.y1, b.x0, b.x1) for b in self.mouth_bases.values()] + list(self.eyelids.boxes)
        for by0, by1, bx0, bx1 in boxes:
            y0, y1, x0, x1 = min(y0, by0), max(y1, by1), min(x0, bx0), max(x1, bx1)
        self.roi = (y0, y1, x0, x1)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self.grid = np.dstack([xs, ys])
        # The head motion is affine where it is not faded: computed on a coarse grid placed
        # so that cv2.resize's bilinear upsampling reproduces it exactly, then faded per pixel.
        h, w = y1 - y0, x1 - x0
        hc, wc = -(-h // HEAD_STEP), -(-w // HEAD_STEP)
        cys = y0 + (np.arange(hc) + 0.5) * h / hc - 0.5
        cxs = x0 + (np.arange(wc) + 0.5) * w / wc - 0.5
        self.coarse = np.dstack(np.meshgrid(cxs, cys)).astype(np.float32)
        # Every offset fades out inside the person's edge, 0 outside it: the head's here, the
        # face's in its bases (a point outside the person does not move, so it samples them there).
        weight = self._head_mask(xs, ys, shape)
        if self.person is not None:
            weight *= self.person[y0:y1, x0:x1]
        self.head_weight = weight[..., None].astype(np.float32)
        # Each eye moves by whole pixels (the head's motion at its centre, rounded): resampled
        # at integer positions, it keeps every pixel of the photo. The difference from the
        # smooth motion (under a pixel) fades out around it.
        self.eye_snaps: list[tuple[tuple[slice, slice], np.ndarray]] = []
        for center, width in zip(self.eye_centers, self.eye_widths):
            inner = EYE_SNAP_MARGIN * width + 0.5 * width
            reach = inner + EYE_SNAP_FADE * width
            box = region_box(center, reach, reach, shape)
            by0, by1, bx0, bx1 = max(box[0], y0), min(box[1], y1), max(box[2], x0), min(box[3], x1)
            if by1 <= by0 or bx1 <= bx0:
                continue
            gy, gx = np.mgrid[by0:by1, bx0:bx1].astype(np.float32)
            distance = np.maximum(np.abs(gx - center[0]), np.abs(gy - center[1]))  # a square around the eye
            snap = (1.0 - smoothstep((distance - inner) / (EYE_SNAP_FADE * width))).astype(np.float32)
            rows, cols = slice(by0 - y0, by1 - y0), slice(bx0 - x0, bx1 - x0)
            # Fading with the head's weight: nothing outside the person moves, whole pixels or not.
            self.eye_snaps.append(((rows, cols), snap[..., None] * self.head_weight[rows, cols]))
        # Lids the person's edge runs through (an eye at the picture's edge, a hand) fade with it.
        self.lid_person = [None if self.person is None or self.person[ly0:ly1, lx0:lx1].min() >= 1.0
                           else self.person[ly0:ly1, lx0:lx1, None] for ly0, ly1, lx0, lx1 in self.eyelids.boxes]
        # The face deformation lives in a smaller box; the margin covers the head motion.
        margin = int(np.ceil(0.15 * self.face_height))
        self.face_box = (max(min(b[0] for b in boxes) - margin, y0), min(max(b[1] for b in boxes) + margin, y1),
                         max(min(b[2] for b in boxes) - margin, x0), min(max(b[3] for b in boxes) + margin, x1))
        fy0, fy1, fx0, fx1 = self.face_box
        self.field = np.zeros((fy1 - fy0, fx1 - fx0, 2), np.float32)
        self.active = (0, 0, 0, 0)  # the part of the field that is not zero, in its own pixels
        ends = np.minimum(np.arange(LIP_SAMPLES), np.arange(LIP_SAMPLES)[::-1]) / (0.12 * (LIP_SAMPLES - 1))
        self.corner_taper = np.sqrt(np.clip(ends, 0.0, 1.0))[:, None]

    def state(self) -> dict[str, np.ndarray]:
        """The portrait-specific arrays; :meth:`from_state` rebuilds an identical renderer."""
        out = {"base": self.base, "head_center": np.asarray(self.head_center, np.float64),
               "head_axes": np.asarray(self.head_axes, np.float64), "pivot": self.pivot,
               "scalars": np.array([self.face_height, self.probe, self.colors.face_height, self.colors.edge],
                                   np.float64),
               "flags": np.array([self.neutral, self.colors.photo_teeth], np.uint8),
               "lip_upper": self.lip_upper, "lip_lower": self.lip_lower, "lip_normal": self.lip_normal,
               "colors": self.colors.array(), "eye_centers": self.eye_centers, "eye_widths": self.eye_widths}
        if self.person is not None:
            out["person"] = self.person
        out.update({f"eyelids_{k}": v for k, v in self.eyelids.state().items()})
        named = list(self.mouth_bases.items())
        if self.seal is not None:
            named.append(("seal", self.seal))
        for name, basis in named:
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
        face_height, probe, color_height, edge = (float(v) for v in arrays["scalars"])
        neutral, photo_teeth = (bool(v) for v in arrays["flags"])
        self.face_height, self.probe, self.neutral = face_height, probe, neutral
        self.mouth_bases = {name: basis(name) for name in MOUTH_BASES}
        self.seal = basis("seal") if "basis_seal" in arrays else None
        prefix = "eyelids_"
        self.eyelids = EyeLids.from_state({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
        self.colors = MouthColors.from_array(np.asarray(arrays["colors"]), color_height, photo_teeth, edge)
        self.head_center = np.asarray(arrays["head_center"])
        self.head_axes = np.asarray(arrays["head_axes"])
        self.pivot = np.asarray(arrays["pivot"])
        self.lip_upper, self.lip_lower = np.asarray(arrays["lip_upper"]), np.asarray(arrays["lip_lower"])
        self.lip_normal = np.asarray(arrays["lip_normal"])
        self.eye_centers, self.eye_widths = np.asarray(arrays["eye_centers"]), np.asarray(arrays["eye_widths"])
        self.person = np.asarray(arrays["person"], np.float32) if "person" in arrays else None
        self._derive()
        return self

    @property
    def expression(self) -> str:
        return "neutral" if self.neutral else "keep"

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
            top, left = basis.y0 - fy0, basis.x0 - fx0
            self.field[top:top + h, left:left + w] += np.float32(weight) * basis.data
            a = self.active
            self.active = ((top, top + h, left, left + w) if a[0] == a[1]
                           else (min(a[0], top), max(a[1], top + h), min(a[2], left), max(a[3], left + w)))

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
        constant = (self.pivot - np.array([[c, s], [-s, c]]) @ (self.pivot + shift)).astype(np.float32)
        coarse = self.coarse @ affine.T + constant
        y0, y1, x0, x1 = self.roi
        offset = cv2.resize(coarse, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        offset *= self.head_weight
        for (rows, cols), snap in self.eye_snaps:
            patch = offset[rows, cols]
            whole = np.round(patch[patch.shape[0] // 2, patch.shape[1] // 2])
            patch += snap * (whole - patch)
        return offset

    def _mouth_field(self, weights: FrameWeights) -> None:
        y0, y1, x0, x1 = self.active
        self.field[y0:y1, x0:x1] = 0.0
        self.active = (0, 0, 0, 0)
        mouth = {"open": weights.open, "widen": weights.widen, "round": weights.round,
                 "press": weights.press, "lift": weights.lift, "pout": weights.pout}
        for name, basis in self.mouth_bases.items():
            self._add(basis, mouth[name])
        for basis, person in zip(self.eyelids.fields(weights.blink), self.lid_person):
            if person is not None:  # (the lids are not linear in the weight: the edge moves)
                basis = Basis(basis.y0, basis.x0, basis.data * person)
            self._add(basis, 1.0)

    def backward_map(self, weights: FrameWeights) -> np.ndarray:
        """Absolute photo coordinates (h, w, 2) for every pixel of the head region."""
        self._mouth_field(weights)
        head = self._head_offset(weights)
        source = self.grid.copy() if head is None else self.grid + head
        y0, _, x0, _ = self.roi
        fy0, fy1, fx0, fx1 = self.face_box
        inner = source[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
        ay0, ay1, ax0, ax1 = self.active
        if ay1 > ay0 and head is None:
            inner[ay0:ay1, ax0:ax1] += self.field[ay0:ay1, ax0:ax1]
        elif ay1 > ay0 and head is not None:
            # Compose: the head moves first, the face deforms in the head's own coordinates. Only
            # pixels that the head brings onto the non-zero field need it.
            reach = int(np.ceil(np.abs(head).max())) + 2
            rows = slice(max(ay0 - reach, 0), min(ay1 + reach, fy1 - fy0))
            cols = slice(max(ax0 - reach, 0), min(ax1 + reach, fx1 - fx0))
            part = inner[rows, cols]
            part += cv2.remap(self.field, part[..., 0] - np.float32(fx0), part[..., 1] - np.float32(fy0),
                              cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        seal = max(weights.seal, 1.0 if self.neutral else 0.0)
        if self.seal is not None and seal > 0.0:
            # Then the photo's own parted lips close (in photo coordinates): one map, one resampling.
            # Pixels whose source can reach the seal's box: within the largest offset of it.
            reach = int(np.ceil(np.abs(source - self.grid).max())) + 2 if head is not None or ay1 > ay0 else 2
            sb = self.seal
            rows = slice(max(sb.y0 - reach - fy0, 0), max(min(sb.y1 + reach - fy0, fy1 - fy0), 0))
            cols = slice(max(sb.x0 - reach - fx0, 0), max(min(sb.x1 + reach - fx0, fx1 - fx0), 0))
            part = inner[rows, cols]
            sealed = cv2.remap(sb.data, part[..., 0] - np.float32(sb.x0), part[..., 1] - np.float32(sb.y0),
                               cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            part += np.float32(min(seal, 1.0)) * sealed
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
                                        INTERPOLATION, borderMode=cv2.BORDER_REFLECT)
        if weights.open > 0.0 or weights.lift > 0.0:
            # Contours were tracked off the lips' edges: move them back onto them, and never
            # let the upper one cross below the lower one.
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
            paint_mouth_interior(frame, upper, lower, weights.teeth, self.colors,
                                 upper_teeth=self.neutral or not self.colors.photo_teeth,
                                 labiodental=weights.lift)
        return frame
