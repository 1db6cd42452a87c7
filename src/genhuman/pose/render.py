"""Pose renderings: the exact V2 hands-only control image, and a full-body debug view.

:func:`render_hands` reproduces the official ``draw_pose_select_v2(pose, H, W, ref_w=800)``
pixel for pixel: a black canvas scaled so its short side is ``ref_w``; the 20 hand edges
drawn 2 px wide in ``hsv(edge/20) * int(s_a * s_b * 255)``, then the 21 points as filled
radius-4 circles of ``int(s * 255)``; points whose *pixel* x or y is not above 0.01 are
skipped; the canvas is drawn as BGR, resized to ``W x H`` (bilinear) and swapped to RGB.
That is why a point appears red and edge colours have red and blue exchanged.

:func:`control_frame` pastes that drawing at ``draw_params`` into the generation canvas.
The official code allocates that canvas as ``(W, H)``, which only works when W == H; here
it is ``(H, W)`` so any aspect ratio works.
"""

from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

from genhuman.pose.format import PoseSequence

HAND_EDGES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
              (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18),
              (18, 19), (19, 20))
# OpenPose-18 limbs (0-based) and colours, for the debug view only.
BODY_LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
              (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
BODY_COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
                (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
                (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))
OFFICIAL_REF_W = 800  # what the official infer.py passes to draw_pose_select_v2
_EPS = 0.01
_EDGE_HUES = tuple(colorsys.hsv_to_rgb(i / len(HAND_EDGES), 1.0, 1.0) for i in range(len(HAND_EDGES)))


def _draw_hands(canvas: np.ndarray, hands: np.ndarray, scores: np.ndarray) -> None:
    """The official hand drawing, on a BGR canvas, in place."""
    h, w = canvas.shape[:2]
    for peaks, score in zip(hands, scores):
        for ie, (a, b) in enumerate(HAND_EDGES):
            x1, y1 = int(peaks[a][0] * w), int(peaks[a][1] * h)
            x2, y2 = int(peaks[b][0] * w), int(peaks[b][1] * h)
            strength = int(score[a] * score[b] * 255)
            if x1 > _EPS and y1 > _EPS and x2 > _EPS and y2 > _EPS:
                colour = tuple(c * strength for c in _EDGE_HUES[ie])
                cv2.line(canvas, (x1, y1), (x2, y2), colour, thickness=2)
        for (px, py), s in zip(peaks, score):
            x, y = int(px * w), int(py * h)
            if x > _EPS and y > _EPS:
                cv2.circle(canvas, (x, y), 4, (0, 0, int(s * 255)), thickness=-1)


def render_hands(pose: PoseSequence, index: int, height: int, width: int,
                 ref_w: int = OFFICIAL_REF_W) -> np.ndarray:
    """``draw_pose_select_v2`` for frame ``index``: an (height, width, 3) uint8 RGB image."""
    short = min(height, width)
    scale = (ref_w / short) if short != ref_w else 1
    canvas = np.zeros((int(height * scale), int(width * scale), 3), dtype=np.uint8)
    _draw_hands(canvas, pose.hands[index], pose.hands_score[index])
    return cv2.cvtColor(cv2.resize(canvas, (width, height)), cv2.COLOR_BGR2RGB)


def control_frame(pose: PoseSequence, index: int, height: int, width: int,
                  draw_params: tuple[int, int, int, int, int, int] | None = None) -> np.ndarray:
    """The control image for one frame: the hand drawing pasted at ``draw_params`` into an
    (height, width, 3) uint8 canvas. Without ``draw_params`` it fills the whole canvas."""
    if draw_params is None:
        draw_params = (height, width, 0, height, 0, width)
    imh, imw, rb, re, cb, ce = draw_params
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    canvas[rb:re, cb:ce] = render_hands(pose, index, imh, imw)
    return canvas


def control_frames(pose: PoseSequence, indices: range | list[int], height: int, width: int,
                   draw_params: tuple[int, int, int, int, int, int] | None = None) -> np.ndarray:
    """Control images for several frames as float32 (3, F, H, W) in [0, 1], the PoseEncoder input."""
    stack = np.stack([control_frame(pose, i, height, width, draw_params) for i in indices])
    return stack.transpose(3, 0, 1, 2).astype(np.float32) / 255.0


def render_debug(pose: PoseSequence, index: int, height: int, width: int,
                 background: np.ndarray | None = None, threshold: float = 0.3) -> np.ndarray:
    """Body, hands and face of one frame over ``background`` (or black), RGB uint8, to inspect
    a pose track by eye. Not a model input."""
    canvas = (np.zeros((height, width, 3), np.uint8) if background is None
              else cv2.resize(background, (width, height)) // 2)
    bgr = np.ascontiguousarray(canvas[..., ::-1])
    body, score = pose.body[index], pose.body_score[index]
    stick = max(2, round(min(height, width) / 200))
    for (a, b), colour in zip(BODY_LIMBS, BODY_COLOURS):
        if score[a] < threshold or score[b] < threshold:
            continue
        (xa, ya), (xb, yb) = body[a] * (width, height), body[b] * (width, height)
        length = math.hypot(xa - xb, ya - yb)
        angle = math.degrees(math.atan2(yb - ya, xb - xa))
        poly = cv2.ellipse2Poly((int((xa + xb) / 2), int((ya + yb) / 2)), (int(length / 2), stick),
                                int(angle), 0, 360, 1)
        cv2.fillConvexPoly(bgr, poly, colour[::-1])
    for i, colour in enumerate(BODY_COLOURS):
        if score[i] >= threshold:
            cv2.circle(bgr, (int(body[i][0] * width), int(body[i][1] * height)), stick + 2, colour[::-1], -1)
    for (x, y), s in zip(pose.face[index], pose.face_score[index]):
        if s >= threshold:
            cv2.circle(bgr, (int(x * width), int(y * height)), 2, (255, 255, 255), -1)
    _draw_hands(bgr, pose.hands[index], np.clip(pose.hands_score[index], 0, 1))
    return np.ascontiguousarray(bgr[..., ::-1])


def scale_draw_params(draw_params: tuple[int, ...], height: int, width: int) -> tuple[int, int, int, int, int, int]:
    """``draw_params`` made for another canvas (e.g. the official 768x768), moved to (height, width).
    The original canvas is ``rb + re`` by ``cb + ce`` (the drawing is centred in it)."""
    imh, imw, rb, re, cb, ce = draw_params
    sy, sx = height / max(1, rb + re), width / max(1, cb + ce)
    h, w = min(height, max(1, int(imh * sy + 0.5))), min(width, max(1, int(imw * sx + 0.5)))  # never empty
    top, left = min(height - h, int(rb * sy + 0.5)), min(width - w, int(cb * sx + 0.5))
    return h, w, top, top + h, left, left + w
