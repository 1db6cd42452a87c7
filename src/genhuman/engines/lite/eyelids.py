"""Blinks as an upper lid that descends over the eye: one backward field per eye per frame.

At closure ``w`` (0 open .. 1 closed) the lid EDGE lies ``w`` of the way from the photo's
upper lid margin to a little below its lower lid (the visible lower margin sits below the
mesh points), following the lid curve and narrowing to the eye corners. Above the edge the
lid is made of what lies above the eye: the lashes just above the margin move down as a band
and the skin between them and the crease stretches to follow; the brow above the crease never
moves. Below the edge the eye is unmoved (field exactly 0): a half-closed eye shows the lower
half of the real eye, not a compressed eye.

Geometry is in the face frame of :mod:`deform` (``v`` down, perpendicular to the eye line) and
the field only moves along ``v``. The per-pixel geometry is computed once per portrait, so a
frame's fields are a dozen numpy operations on two small boxes.
"""

from __future__ import annotations

import cv2
import numpy as np

from genhuman.engines.lite.deform import EYES, Basis, FaceFrame, curve_at, region_box, smoothstep

# The closed edge passes this share of the eye's height below the lower mesh points (at least
# a pixel and a half): the upper lashes meet the lower ones, not the sclera between.
LID_DROP = 0.15
# The crease, where the lid skin starts, is this share of the way from the upper lid margin
# to the brow's lower edge; above it nothing moves.
LID_SKIN = 0.8
# The edge shows the photo's lashes this share of the eye height (at least a pixel) above the
# mesh's upper lid points, which lie on the lashes' lower side, against the sclera.
LASH_INSET = 0.12
# The lashes above the margin, this share of the eye height, move down as one band (stretched
# like the skin, their strands would streak the lid).
LASH_BAND = 0.4
# The edge is anti-aliased over this share of the eye height, at least a pixel.
EDGE_SOFTNESS = 0.04
CORNER_FADE = 0.08  # eye widths beyond each corner over which the lid fades out

# Channels of the per-eye geometry (h, w, GEOMETRY_CHANNELS) float32 arrays, in pixels along
# v: how far the pixel is below the crease; the lid skin between crease and lash band; how far
# the pixel is below the upper lid margin; the edge's travel at closure 1; the corner taper
# (1 over the eye, 0 beyond the fades).
BELOW_CREASE, SKIN, BELOW_MARGIN, TRAVEL, TAPER = range(5)
GEOMETRY_CHANNELS = 5


class EyeLids:
    """Built once per portrait; :meth:`fields` gives the lid fields of one closure.

    ``geometry`` (per eye, see GEOMETRY_CHANNELS), ``origins`` (per eye, the box's y0, x0),
    ``scalars`` (per eye: lash inset and edge softness in pixels) and ``direction`` (the image
    direction of +v) are all that is kept; :meth:`state` / :meth:`from_state` save them.
    """

    def __init__(self, frame: FaceFrame, landmarks: np.ndarray, shape: tuple[int, ...]):
        self.direction = np.asarray(frame.ev, np.float32)
        self.origins: list[tuple[int, int]] = []
        self.geometry: list[np.ndarray] = []
        self.scalars: list[tuple[float, float]] = []
        for upper_ids, lower_ids, brow_ids in EYES:
            box, geometry, scalars = _eye_geometry(frame, landmarks, upper_ids, lower_ids, brow_ids, shape)
            self.origins.append((box[0], box[2]))
            self.geometry.append(geometry)
            self.scalars.append(scalars)

    @property
    def boxes(self) -> list[tuple[int, int, int, int]]:
        """Per eye ``(y0, y1, x0, x1)``: the portrait box outside which its field is 0."""
        return [(y0, y0 + g.shape[0], x0, x0 + g.shape[1]) for (y0, x0), g in zip(self.origins, self.geometry)]

    def fields(self, weight: float) -> list[Basis]:
        """One backward field per eye (portrait pixel ``p`` shows ``p + field(p)``) for closure
        ``weight``: 0 or less (open) gives no fields, 1 closes the eye."""
        w = np.float32(min(float(weight), 1.0))
        if w <= 0.0:
            return []
        return [Basis(y0, x0, self._offsets(g, scalars, w))
                for (y0, x0), g, scalars in zip(self.origins, self.geometry, self.scalars)]

    def offsets_at(self, weight: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """The lid's backward offset (``xs.shape + (2,)`` dx, dy) at any portrait points, e.g.
        where a head motion takes the frame's pixels. The smooth geometry is interpolated and
        the edge drawn there, so the edge stays as sharp as in :meth:`fields`; interpolating
        :meth:`fields` itself between a lid pixel and an eye pixel would sample the eye between."""
        xs, ys = np.asarray(xs, np.float32), np.asarray(ys, np.float32)
        out = np.zeros(xs.shape + (2,), np.float32)
        w = np.float32(min(float(weight), 1.0))
        if w <= 0.0:
            return out
        x_range, y_range = (float(xs.min()), float(xs.max())), (float(ys.min()), float(ys.max()))
        for (y0, y1, x0, x1), geometry, scalars in zip(self.boxes, self.geometry, self.scalars):
            if x_range[1] < x0 or x_range[0] > x1 - 1 or y_range[1] < y0 or y_range[0] > y1 - 1:
                continue
            # The field is 0 along the box's border (above the crease, below the edge, beyond
            # the corner fades), so the border's geometry held outside the box gives 0 there.
            at = cv2.remap(geometry, xs - np.float32(x0), ys - np.float32(y0), cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
            out += self._offsets(at, scalars, w)
        return out

    def _offsets(self, geometry: np.ndarray, scalars: tuple[float, float], w: np.float32) -> np.ndarray:
        below_crease, skin, below_margin, travel, taper = (geometry[..., c] for c in range(GEOMETRY_CHANNELS))
        moved = w * travel  # how far the edge has come down from the margin
        # As the lid starts to move it reaches the lashes above the margin gradually (no jump).
        inset = np.minimum(np.float32(scalars[0]), moved)
        # The lash band moves down as one (by moved + inset); the skin between crease and band
        # stretches evenly to follow it.
        offset = np.clip(below_crease / (skin + moved), 0.0, 1.0) * -(moved + inset)
        # A pixel the edge crosses samples between the lashes and the photo's own lid margin,
        # whose blend of lash and eye anti-aliases the curve. (Blending the offset towards 0
        # would sample the middle of the eye: a bright line under a closed lid.)
        cover = np.clip((moved - below_margin) / np.float32(scalars[1]) + np.float32(0.5), 0.0, 1.0)
        offset += (np.float32(1.0) - cover) * inset
        dv = offset * (taper * (cover > 0.0))
        out = np.empty(dv.shape + (2,), np.float32)
        np.multiply(dv, self.direction[0], out=out[..., 0])
        np.multiply(dv, self.direction[1], out=out[..., 1])
        return out

    def state(self) -> dict[str, np.ndarray]:
        """The arrays :meth:`from_state` rebuilds an identical object from."""
        out = {"direction": self.direction, "scalars": np.asarray(self.scalars, np.float64)}
        for i, (origin, geometry) in enumerate(zip(self.origins, self.geometry)):
            out[f"eye{i}"] = geometry
            out[f"eye{i}_at"] = np.asarray(origin, np.int64)
        return {k: np.ascontiguousarray(v) for k, v in out.items()}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray]) -> "EyeLids":
        self = cls.__new__(cls)
        self.direction = np.asarray(arrays["direction"], np.float32)
        scalars = np.asarray(arrays["scalars"], np.float64).reshape(-1, 2)
        self.scalars = [(float(a), float(b)) for a, b in scalars]
        self.geometry = [np.ascontiguousarray(arrays[f"eye{i}"], np.float32) for i in range(len(scalars))]
        self.origins = [(int(arrays[f"eye{i}_at"][0]), int(arrays[f"eye{i}_at"][1])) for i in range(len(scalars))]
        return self


def _line(u: np.ndarray, pu: np.ndarray, pv: np.ndarray) -> np.ndarray:
    """v of the polyline through the points (pu, pv) at each u, held flat beyond its ends."""
    return curve_at(np.stack([pu, pv], 1), u).astype(np.float32)


def _eye_geometry(frame: FaceFrame, landmarks: np.ndarray, upper_ids: list[int], lower_ids: list[int],
                  brow_ids: list[int], shape: tuple[int, ...]
                  ) -> tuple[tuple[int, int, int, int], np.ndarray, tuple[float, float]]:
    uu, uv = frame.to_face(landmarks[upper_ids])
    lu, lv = frame.to_face(landmarks[lower_ids])
    bu, bv = frame.to_face(landmarks[brow_ids])
    half = len(brow_ids) // 2  # the brow's lower and upper lines, in either order

    def brow_low(u: np.ndarray) -> np.ndarray:
        return np.maximum(_line(u, bu[:half], bv[:half]), _line(u, bu[half:], bv[half:]))

    left, right = float(min(uu.min(), lu.min())), float(max(uu.max(), lu.max()))
    samples = np.linspace(left, right, 64)
    height = float(np.max(_line(samples, lu, lv) - _line(samples, uu, uv)))
    inset = max(LASH_INSET * height, 1.0)
    softness = max(EDGE_SOFTNESS * height, 1.0)
    past_lower = max(LID_DROP * height, 0.5 * softness + 1.0)  # the closed eye wholly covered
    fade = max(CORNER_FADE * (right - left), 1.5)

    # The box: the eye and its fades, from the highest crease to below the closed edge.
    span = np.linspace(left - fade, right + fade, 64)
    top = _line(span, uu, uv) - LID_SKIN * np.maximum(_line(span, uu, uv) - brow_low(span), 0.0) - 2.0
    bottom = _line(span, lu, lv) + past_lower + softness + 2.0
    outline = np.concatenate([np.stack([span, top], 1), np.stack([span, bottom], 1)])
    points = frame.origin + outline[:, :1] * frame.eu + outline[:, 1:] * frame.ev
    lo, hi = points.min(0), points.max(0)
    box = region_box((lo + hi) / 2.0, (hi[0] - lo[0]) / 2.0 + 1.0, (hi[1] - lo[1]) / 2.0 + 1.0, shape)

    u, v = frame.grid(*box)
    upper = _line(u, uu, uv)
    travel = _line(u, lu, lv) + np.float32(past_lower) - upper
    # Never above the brow's lower edge, and a pixel of skin at least to stretch above the lashes.
    lid = np.maximum(LID_SKIN * np.maximum(upper - brow_low(u), 0.0), inset + 2.0)
    lash = np.minimum(np.float32(LASH_BAND * height), lid - inset - 1.0)
    beyond = np.maximum(np.maximum(left - u, u - right) - 0.5, 0.0)  # the corners stay fully covered
    taper = smoothstep(1.0 - beyond / fade)
    geometry = np.stack([v - (upper - lid), lid - lash, v - upper, travel, taper], axis=-1).astype(np.float32)
    return box, np.ascontiguousarray(geometry), (float(inset), float(softness))
