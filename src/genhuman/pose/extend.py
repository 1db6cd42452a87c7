"""Pose for any audio length.

The official V2 caps the video at the length of the pose folder (its most reported
confusion: 50 s of audio, a 13 s video). :func:`extend_pose` makes a track of any length:

* ``pingpong`` (default): 0, 1, ..., T-1, T-2, ..., 1, 0, 1, ... Every step is a step of the
  source played forwards or backwards, so no jump can exceed the source's largest step.
* ``loop``: the source repeated, each seam a cross-fade of the last ``k`` frames into the
  first ``k``. ``k`` grows until no seam step exceeds the source's largest step; if even the
  longest fade cannot manage that, it falls back to ping-pong.
"""

from __future__ import annotations

import logging

import numpy as np

from genhuman.errors import InputError
from genhuman.pose.format import PoseSequence

log = logging.getLogger(__name__)
MODES = ("pingpong", "loop")
CONFIDENT = 0.3


def max_step(pose: PoseSequence) -> float:
    """The largest frame-to-frame displacement of any body or hand point that is confident
    in both frames (normalised units); 0 for a single frame."""
    if len(pose) < 2:
        return 0.0
    points = np.concatenate([pose.body, pose.hands.reshape(len(pose), -1, 2)], axis=1)
    scores = np.concatenate([pose.body_score, pose.hands_score.reshape(len(pose), -1)], axis=1)
    steps = np.linalg.norm(np.diff(points, axis=0), axis=-1)
    both = (scores[1:] > CONFIDENT) & (scores[:-1] > CONFIDENT)
    return float(steps[both].max()) if both.any() else 0.0


def pingpong_indices(length: int, n_frames: int) -> np.ndarray:
    if length == 1:
        return np.zeros(n_frames, dtype=np.int64)
    cycle = np.concatenate([np.arange(length), np.arange(length - 2, 0, -1)])
    return cycle[np.arange(n_frames) % len(cycle)]


def _blend(a: PoseSequence, b: PoseSequence, weights: np.ndarray) -> PoseSequence:
    """Per-frame cross-fade from ``a`` to ``b``; a point unseen on one side takes the other's
    position so nothing slides in from the origin."""
    out = a.take(range(len(a)))
    for pos, score in (("body", "body_score"), ("hands", "hands_score"), ("face", "face_score")):
        pa, pb = getattr(a, pos), getattr(b, pos)
        sa, sb = getattr(a, score), getattr(b, score)
        w = weights.reshape((-1,) + (1,) * (pa.ndim - 1))
        pa = np.where((sa <= CONFIDENT)[..., None], pb, pa)
        pb = np.where((sb <= CONFIDENT)[..., None], pa, pb)
        setattr(out, pos, (1 - w) * pa + w * pb)
        setattr(out, score, (1 - w[..., 0]) * sa + w[..., 0] * sb)
    return out


def _concat(parts: list[PoseSequence]) -> PoseSequence:
    first = parts[0]
    fields = ("body", "body_score", "hands", "hands_score", "face", "face_score")
    stacked = {f: np.concatenate([getattr(p, f) for p in parts]) for f in fields}
    return PoseSequence(**stacked, fps=first.fps, draw_params=first.draw_params, extra=dict(first.extra))


def _loop(pose: PoseSequence, n_frames: int, fade: int) -> PoseSequence:
    t = len(pose)
    weights = np.arange(1, fade + 1) / (fade + 1)
    seam = _blend(pose.take(range(t - fade, t)), pose.take(range(fade)), weights)
    cycle = _concat([seam, pose.take(range(fade, t - fade))])
    parts, total = [pose.take(range(t - fade))], t - fade
    while total < n_frames:
        parts.append(cycle)
        total += len(cycle)
    return _concat(parts).take(range(n_frames))


def extend_pose(pose: PoseSequence, n_frames: int, mode: str = "pingpong", fade: int = 12) -> PoseSequence:
    """A track of exactly ``n_frames`` frames: the source cut, or extended by ``mode``."""
    if mode not in MODES:
        raise InputError(f"unknown pose extension mode {mode!r}; choose one of: {', '.join(MODES)}")
    if n_frames < 1:
        raise InputError("the pose track must have at least one frame")
    if n_frames <= len(pose):
        return pose.take(range(n_frames))
    if mode == "loop":
        limit = max_step(pose)
        for k in range(min(fade, (len(pose) - 1) // 2), (len(pose) - 1) // 2 + 1):
            if k < 1:
                continue
            looped = _loop(pose, n_frames, k)
            if max_step(looped) <= limit + 1e-9:
                return looped
        log.info("no cross-fade keeps the loop seam smooth; using ping-pong instead")
    return pose.take(pingpong_indices(len(pose), n_frames))
